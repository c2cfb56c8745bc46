//! The migrations of each backend, embedded in the binary so that `plant-monitor migrate` needs no files
//! beside it. Both backends carry the same versions with the same meaning.

use std::borrow::Cow;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType};

/// (version, description, SQL), in order; an applied migration is never edited, only followed by a new one.
type List = &'static [(i64, &'static str, &'static str)];

pub const SQLITE: List = &[
    (
        1,
        "plants and journal",
        include_str!("../../../migrations/sqlite/0001_plants_and_journal.sql"),
    ),
    (
        2,
        "feed and outbox",
        include_str!("../../../migrations/sqlite/0002_feed_and_outbox.sql"),
    ),
    (
        3,
        "leases",
        include_str!("../../../migrations/sqlite/0003_leases.sql"),
    ),
    (
        4,
        "dead letters and sink state",
        include_str!("../../../migrations/sqlite/0004_dead_letters_and_sink_state.sql"),
    ),
    (
        5,
        "plugin dead letters without a sink",
        include_str!("../../../migrations/sqlite/0005_plugin_dead_letters_without_a_sink.sql"),
    ),
];

pub const POSTGRES: List = &[
    (
        1,
        "plants and journal",
        include_str!("../../../migrations/postgres/0001_plants_and_journal.sql"),
    ),
    (
        2,
        "feed and outbox",
        include_str!("../../../migrations/postgres/0002_feed_and_outbox.sql"),
    ),
    (
        3,
        "leases",
        include_str!("../../../migrations/postgres/0003_leases.sql"),
    ),
    (
        4,
        "dead letters and sink state",
        include_str!("../../../migrations/postgres/0004_dead_letters_and_sink_state.sql"),
    ),
    (
        5,
        "plugin dead letters without a sink",
        include_str!("../../../migrations/postgres/0005_plugin_dead_letters_without_a_sink.sql"),
    ),
];

/// The newest schema version in `list`.
pub const fn latest(list: List) -> i64 {
    list[list.len() - 1].0
}

/// A migration list as sqlx's migrator reads it.
#[derive(Debug)]
pub struct Embedded(pub List);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_carry_the_same_versions() {
        let versions = |list: List| list.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
    }
}
