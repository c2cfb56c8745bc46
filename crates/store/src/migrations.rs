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
    (
        6,
        "sink counts",
        include_str!("../../../migrations/sqlite/0006_sink_counts.sql"),
    ),
    (
        7,
        "outcome pipeline",
        include_str!("../../../migrations/sqlite/0007_outcome_pipeline.sql"),
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
    (
        6,
        "sink counts",
        include_str!("../../../migrations/postgres/0006_sink_counts.sql"),
    ),
    (
        7,
        "outcome pipeline",
        include_str!("../../../migrations/postgres/0007_outcome_pipeline.sql"),
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
    use sqlx::migrate::Migrator;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

    use super::*;

    #[test]
    fn both_backends_carry_the_same_versions() {
        let versions = |list: List| list.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
    }

    /// Migration 5 rebuilds SQLite's outbox table; what was in it must come through whole.
    #[tokio::test]
    async fn migration_5_gives_plugin_dead_letters_no_sink_and_keeps_every_row_and_the_id_sequence()
    {
        let dir = tempfile::tempdir().expect("temporary folder");
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("old.db"))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.expect("opened");
        let before_5 = Migrator::new(Embedded(&SQLITE[..4])).await.expect("list");
        before_5.run(&pool).await.expect("migrated to 4");
        sqlx::raw_sql(
            "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) \
               VALUES ('p', 'P', 'north', 'wind', 1); \
             INSERT INTO deliveries (seq, sink, plant_id, region, status, last_error) \
               VALUES (1, '', 'p', 'north', 'dead', 'plugin chaos: failed'), \
                      (1, 'out', 'p', 'north', 'pending', NULL), \
                      (1, 'gone', 'p', 'north', 'delivered', NULL); \
             DELETE FROM deliveries WHERE sink = 'gone';",
        )
        .execute(&pool)
        .await
        .expect("rows of version 4");
        Migrator::new(Embedded(SQLITE))
            .await
            .expect("list")
            .run(&pool)
            .await
            .expect("migrated to 5");
        let rows: Vec<(i64, Option<String>, String)> =
            sqlx::query_as("SELECT id, sink, status FROM deliveries ORDER BY id")
                .fetch_all(&pool)
                .await
                .expect("read");
        assert_eq!(
            rows,
            [
                (1, None, "dead".into()),
                (2, Some("out".into()), "pending".into())
            ]
        );
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO deliveries (seq, sink, plant_id, region) VALUES (1, 'new', 'p', 'north') \
             RETURNING id",
        )
        .fetch_one(&pool)
        .await
        .expect("inserted");
        assert_eq!(next, 4, "the id of the deleted row 3 is not given again");
        let empty = sqlx::query(
            "INSERT INTO deliveries (seq, sink, plant_id, region) VALUES (1, '', 'p', 'north')",
        )
        .execute(&pool)
        .await;
        assert!(empty.is_err(), "no sink is NULL, never the empty string");
    }

    /// Migration 6 starts the per-sink counters from the rows already in the outbox.
    #[tokio::test]
    async fn migration_6_counts_the_outbox_it_finds() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("old.db"))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.expect("opened");
        let before_6 = Migrator::new(Embedded(&SQLITE[..5])).await.expect("list");
        before_6.run(&pool).await.expect("migrated to 5");
        sqlx::raw_sql(
            "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) \
               VALUES ('p', 'P', 'north', 'wind', 1); \
             INSERT INTO deliveries (seq, sink, plant_id, region, status, attempts) \
               VALUES (1, NULL, 'p', 'north', 'dead', 0), (1, 'out', 'p', 'north', 'pending', 2); \
             UPDATE power_plants SET capacity_mw = 2; \
             INSERT INTO deliveries (seq, sink, plant_id, region, status, attempts) \
               VALUES (2, 'out', 'p', 'north', 'delivered', 3), (2, 'other', 'p', 'north', 'dead', 5);",
        )
        .execute(&pool)
        .await
        .expect("rows of version 5");
        Migrator::new(Embedded(SQLITE))
            .await
            .expect("list")
            .run(&pool)
            .await
            .expect("migrated to 6");
        let counts: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT sink, pending, delivered, dead, failed FROM sink_counts ORDER BY sink",
        )
        .fetch_all(&pool)
        .await
        .expect("read");
        assert_eq!(
            counts,
            [("other".into(), 0, 0, 1, 5), ("out".into(), 1, 1, 0, 4)]
        );
    }
}
