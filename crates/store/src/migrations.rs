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
    (
        8,
        "trace context",
        include_str!("../../../migrations/sqlite/0008_trace_context.sql"),
    ),
    (
        9,
        "exact numbers",
        include_str!("../../../migrations/sqlite/0009_exact_numbers.sql"),
    ),
    (
        10,
        "stats",
        include_str!("../../../migrations/sqlite/0010_stats.sql"),
    ),
    (
        11,
        "backfills",
        include_str!("../../../migrations/sqlite/0011_backfills.sql"),
    ),
    (
        12,
        "cheap capture",
        include_str!("../../../migrations/sqlite/0012_cheap_capture.sql"),
    ),
    (
        13,
        "feed latency",
        include_str!("../../../migrations/sqlite/0013_feed_latency.sql"),
    ),
    (
        14,
        "feed read plan",
        include_str!("../../../migrations/sqlite/0014_feed_read_plan.sql"),
    ),
    (
        15,
        "capture modes",
        include_str!("../../../migrations/sqlite/0015_capture_modes.sql"),
    ),
    (
        16,
        "feed read planned once",
        include_str!("../../../migrations/sqlite/0016_feed_read_planned_once.sql"),
    ),
    (
        17,
        "fewer journal indexes",
        include_str!("../../../migrations/sqlite/0017_fewer_journal_indexes.sql"),
    ),
    (
        18,
        "delivery probe index",
        include_str!("../../../migrations/sqlite/0018_delivery_probe_index.sql"),
    ),
    (
        19,
        "trace inlined",
        include_str!("../../../migrations/sqlite/0019_trace_inlined.sql"),
    ),
    (
        20,
        "feed read ahead",
        include_str!("../../../migrations/sqlite/0020_feed_read_ahead.sql"),
    ),
    (
        21,
        "departures index",
        include_str!("../../../migrations/sqlite/0021_departures_index.sql"),
    ),
    (
        22,
        "cheaper journal rows",
        include_str!("../../../migrations/sqlite/0022_cheaper_journal_rows.sql"),
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
    (
        8,
        "trace context",
        include_str!("../../../migrations/postgres/0008_trace_context.sql"),
    ),
    (
        9,
        "exact numbers",
        include_str!("../../../migrations/postgres/0009_exact_numbers.sql"),
    ),
    (
        10,
        "stats",
        include_str!("../../../migrations/postgres/0010_stats.sql"),
    ),
    (
        11,
        "backfills",
        include_str!("../../../migrations/postgres/0011_backfills.sql"),
    ),
    (
        12,
        "cheap capture",
        include_str!("../../../migrations/postgres/0012_cheap_capture.sql"),
    ),
    (
        13,
        "feed latency",
        include_str!("../../../migrations/postgres/0013_feed_latency.sql"),
    ),
    (
        14,
        "feed read plan",
        include_str!("../../../migrations/postgres/0014_feed_read_plan.sql"),
    ),
    (
        15,
        "capture modes",
        include_str!("../../../migrations/postgres/0015_capture_modes.sql"),
    ),
    (
        16,
        "feed read planned once",
        include_str!("../../../migrations/postgres/0016_feed_read_planned_once.sql"),
    ),
    (
        17,
        "fewer journal indexes",
        include_str!("../../../migrations/postgres/0017_fewer_journal_indexes.sql"),
    ),
    (
        18,
        "delivery probe index",
        include_str!("../../../migrations/postgres/0018_delivery_probe_index.sql"),
    ),
    (
        19,
        "trace inlined",
        include_str!("../../../migrations/postgres/0019_trace_inlined.sql"),
    ),
    (
        20,
        "feed read ahead",
        include_str!("../../../migrations/postgres/0020_feed_read_ahead.sql"),
    ),
    (
        21,
        "departures index",
        include_str!("../../../migrations/postgres/0021_departures_index.sql"),
    ),
    (
        22,
        "cheaper journal rows",
        include_str!("../../../migrations/postgres/0022_cheaper_journal_rows.sql"),
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

    /// Writes by a raw SQL client covering every journal case: server-owned columns set by the writer,
    /// REALs that 15 digits would change, UPDATEs that change no own field (the same value again, the
    /// same attributes spelled without spaces: writes 3 and 4), several rows in one statement, deletes.
    const RAW_WRITES: &[&str] = &[
        "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) \
         VALUES ('{p}a', 'A', 'north', 'wind', 0.30000000000000004)",
        "INSERT INTO power_plants (id, name, region, fuel, capacity_mw, output_mw, latitude, longitude, \
           attributes, version, created_at, updated_at) \
         VALUES ('{p}b', 'B', 'north', 'gas', 1.7976931348623157e308, -2.5, 5e-324, -180, \
                 '{ \"k\" : \"v\" }', 7, 'then', 'later')",
        "UPDATE power_plants SET output_mw = 120.5 WHERE id = '{p}a'",
        "UPDATE power_plants SET output_mw = 120.5 WHERE id = '{p}a'",
        "UPDATE power_plants SET attributes = '{\"k\":\"v\"}' WHERE id = '{p}b'",
        "UPDATE power_plants SET attributes = '{\"k\":\"w\"}', region = 'east', latitude = NULL, \
           version = 99, created_at = 'never' WHERE id = '{p}b'",
        "UPDATE power_plants SET name = 'A2', status = 'offline', capacity_mw = 0.1 + 0.2, \
           longitude = 1e-7 WHERE id = '{p}a'",
        "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) \
         SELECT '{p}m' || value, 'M', 'west', 'oil', value * 1.1 FROM json_each('[1, 2]')",
        "UPDATE power_plants SET output_mw = 1 WHERE id LIKE '{p}m%'",
        "DELETE FROM power_plants WHERE id IN ('{p}b', '{p}m1')",
    ];

    async fn old_database(dir: &tempfile::TempDir, before: usize) -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("old.db"))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.expect("opened");
        let list = Migrator::new(Embedded(&SQLITE[..before]))
            .await
            .expect("list");
        list.run(&pool).await.expect("migrated");
        pool
    }

    async fn write(pool: &SqlitePool, prefix: &str) {
        for sql in RAW_WRITES {
            sqlx::raw_sql(&sql.replace("{p}", prefix))
                .execute(pool)
                .await
                .expect("written");
        }
    }

    /// A journal entry as readers see it: kind, before, after, changed_fields.
    type Entry = (String, Option<String>, Option<String>, String);

    async fn entries(pool: &SqlitePool, source: &str, prefix: &str) -> Vec<Entry> {
        sqlx::query_as(&format!(
            "SELECT kind, before, after, changed_fields FROM {source} \
             WHERE plant_id LIKE ?1 || '%' ORDER BY seq"
        ))
        .bind(prefix)
        .fetch_all(pool)
        .await
        .expect("read")
    }

    /// An entry with its plant ids' prefix and its server-set timestamps left out, which two runs
    /// of the same writes share.
    fn comparable(entries: Vec<Entry>, prefix: &str) -> Vec<Entry> {
        let image = |text: Option<String>| {
            text.map(|text| {
                let mut image: serde_json::Value = serde_json::from_str(&text).expect("json");
                let plant = image.as_object_mut().expect("an object");
                plant.remove("created_at");
                plant.remove("updated_at");
                plant["id"] = plant["id"].as_str().expect("id").replace(prefix, "").into();
                image.to_string()
            })
        };
        entries
            .into_iter()
            .map(|(kind, before, after, fields)| (kind, image(before), image(after), fields))
            .collect()
    }

    /// Migration 12 stores changes as rows: what was journaled before it reads the same after it, and
    /// the same writes journal the same entries either way.
    #[tokio::test]
    async fn migration_12_reads_older_entries_unchanged_and_journals_the_same_entries_as_before() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let pool = old_database(&dir, 11).await;
        write(&pool, "old-").await;
        let journaled = entries(&pool, "plant_changes", "old-").await;
        assert_eq!(journaled.len(), 11, "{journaled:#?}");
        Migrator::new(Embedded(SQLITE))
            .await
            .expect("list")
            .run(&pool)
            .await
            .expect("migrated to 12");
        assert_eq!(
            entries(&pool, "plant_change_images", "old-").await,
            journaled
        );
        write(&pool, "new-").await;
        assert_eq!(
            comparable(entries(&pool, "plant_change_images", "new-").await, "new-"),
            comparable(journaled, "old-")
        );
    }

    /// Migration 21 indexes by plant only the entries by which a plant left a region, and a move
    /// journaled as JSON (before migration 12) names the region it left only in its image: the
    /// plant's entry there still holds the move back in the region it entered.
    #[tokio::test]
    async fn a_move_journaled_before_migration_12_still_waits_for_the_plants_entry_in_the_region_it_left()
     {
        use crate::{JournalStore, Store};

        let dir = tempfile::tempdir().expect("temporary folder");
        let pool = old_database(&dir, 11).await;
        sqlx::raw_sql(
            "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) \
               VALUES ('p', 'P', 'north', 'wind', 1); \
             UPDATE power_plants SET region = 'south' WHERE id = 'p';",
        )
        .execute(&pool)
        .await
        .expect("moved at version 11");
        pool.close().await;
        let config = plant_monitor_core::config::DatabaseConfig {
            url: format!("sqlite://{}", dir.path().join("old.db").display())
                .parse()
                .expect("url"),
            ..Default::default()
        };
        let store = crate::sqlite::SqliteStore::connect(&config)
            .await
            .expect("opened");
        store
            .migrate()
            .await
            .expect("migrated to the latest version");
        let (north, south) = (["north".to_owned()], ["south".to_owned()]);
        let waiting = store.unprocessed_changes(&south, 10, &[]).await;
        assert!(waiting.expect("south's read").is_empty());
        let first = store.unprocessed_changes(&north, 10, &[]).await;
        assert_eq!(first.expect("north's read").len(), 1);
    }

    /// The journal's images are the plant as any reader saw it just before and just after the write,
    /// server-owned version and timestamps included, and each entry carries the trace in write_trace
    /// at the time, or a fresh one.
    #[tokio::test]
    async fn every_journal_image_is_the_plant_as_read_around_its_write_with_the_writers_trace() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let pool = old_database(&dir, SQLITE.len()).await;
        let images = |pool: SqlitePool| async move {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT id, image FROM power_plant_images")
                    .fetch_all(&pool)
                    .await
                    .expect("images");
            rows.into_iter()
                .collect::<std::collections::HashMap<_, _>>()
        };
        let trace = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01";
        let mut traces = Vec::new();
        for (i, sql) in RAW_WRITES.iter().enumerate() {
            let before = images(pool.clone()).await;
            let last: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM plant_changes")
                .fetch_one(&pool)
                .await
                .expect("last");
            let mut tx = pool.begin().await.expect("begun");
            if i % 2 == 1 {
                sqlx::query("INSERT INTO write_trace (only, traceparent) VALUES (1, ?1)")
                    .bind(trace)
                    .execute(&mut *tx)
                    .await
                    .expect("traced");
            }
            sqlx::raw_sql(&sql.replace("{p}", ""))
                .execute(&mut *tx)
                .await
                .expect("written");
            sqlx::query("DELETE FROM write_trace")
                .execute(&mut *tx)
                .await
                .expect("untraced");
            tx.commit().await.expect("committed");
            let after = images(pool.clone()).await;
            let written: Vec<(String, Option<String>, Option<String>, String)> = sqlx::query_as(
                "SELECT plant_id, before, after, traceparent FROM plant_change_images \
                 WHERE seq > ?1 ORDER BY seq",
            )
            .bind(last)
            .fetch_all(&pool)
            .await
            .expect("entries");
            assert_eq!(written.is_empty(), i == 3 || i == 4, "{sql}: {written:?}");
            for (plant, old, new, traceparent) in written {
                assert_eq!(old.as_ref(), before.get(&plant), "{sql}: before");
                assert_eq!(new.as_ref(), after.get(&plant), "{sql}: after");
                if i % 2 == 1 {
                    assert_eq!(traceparent, trace, "{sql}");
                } else {
                    traces.push(traceparent);
                }
            }
        }
        let fresh: std::collections::HashSet<_> = traces.iter().collect();
        assert_eq!(
            fresh.len(),
            traces.len(),
            "every untraced entry starts a trace: {traces:?}"
        );
        assert!(
            traces
                .iter()
                .all(|t| t.len() == 55 && t.starts_with("00-") && t != trace)
        );
    }
}
