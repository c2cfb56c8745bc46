//! The SQLite migrations, embedded in the binary so that `plant-monitor migrate` needs no files beside it.

use std::borrow::Cow;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType};

/// (version, description, SQL), in order; an applied migration is never edited, only followed by a new one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "plants and journal",
        include_str!("../../../../migrations/sqlite/0001_plants_and_journal.sql"),
    ),
    (
        2,
        "feed and outbox",
        include_str!("../../../../migrations/sqlite/0002_feed_and_outbox.sql"),
    ),
];

/// The newest schema version this build knows.
pub(super) const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

#[derive(Debug)]
pub(super) struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send>> {
        Box::pin(async {
            Ok(MIGRATIONS
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
