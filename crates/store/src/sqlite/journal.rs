//! The journal on SQLite: listing, the unprocessed entries of led regions, recording what the feed made
//! of them with their deliveries (and counting them in the statistics), and region snapshots, each
//! write fenced by the region leases.

use async_trait::async_trait;
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

use super::plant_columns::{AFTER, BEFORE, get, version};
use super::read_budget::fetch_within_read_budget;
use super::{FENCES, MINUTE_NOW, SqliteStore, check_fences};
use crate::decode::{decode_change, decode_lag, decode_recorded};
use crate::{
    ChangeSignal, Fence, JournalStore, Processed, Recorded, RegionLag, StoreError, shared,
};
use plant_monitor_core::domain::Change;

/// The columns [`decode_change`] reads, of `plant_changes` itself, and the plain values the triggers
/// journal a change as (migration 0012), whose images and changed fields [`with_columns`] makes, as
/// PostgreSQL's journal does from its rows. Entries journaled as JSON (before migration 0012,
/// snapshots, backfills) have none. The view `plant_change_images` makes the same in SQL, for SQL
/// readers.
const CHANGE_COLUMNS: &str = "seq, plant_id, region, kind, before, after, changed_fields, committed_at, \
     processed_at, outcome, outcome_plugin, outcome_reason, outcome_pipeline, traceparent, backfill_id, \
     before_name, before_region, before_fuel, before_capacity_mw, before_output_mw, before_status, \
     before_latitude, before_longitude, before_attributes, before_version, before_created_at, \
     before_updated_at, after_name, after_fuel, after_capacity_mw, after_output_mw, after_status, \
     after_latitude, after_longitude, after_attributes";

/// A journal entry from [`CHANGE_COLUMNS`].
fn decode_journaled(row: &SqliteRow) -> Result<Change, StoreError> {
    with_columns(row, decode_change(row)?)
}

/// `change` with the images and changed fields of its columns, where the triggers journaled columns.
/// The image after a change keeps only the plant's own fields: its id and region are the entry's, and
/// the server-owned rest follows from the image before and the commit (migration 0012).
fn with_columns(row: &SqliteRow, mut change: Change) -> Result<Change, StoreError> {
    let seq = change.seq;
    let before_what = || format!("journal entry {seq} before");
    let before = BEFORE
        .draft(row, || get(row, "before_region", &before_what), before_what)?
        .map(|draft| {
            Ok::<_, StoreError>(draft.into_plant(
                change.plant_id.clone(),
                version(row, "before_version", &before_what)?,
                get(row, "before_created_at", &before_what)?,
                get(row, "before_updated_at", &before_what)?,
            ))
        })
        .transpose()?;
    let after = AFTER
        .draft(
            row,
            || Ok(change.region.clone()),
            || format!("journal entry {seq} after"),
        )?
        .map(|draft| {
            let (version, created_at) = match &before {
                Some(before) => (before.version + 1, before.created_at.clone()),
                None => (1, change.committed_at.clone()),
            };
            let updated_at = change.committed_at.clone();
            draft.into_plant(change.plant_id.clone(), version, created_at, updated_at)
        });
    if before.is_some() || after.is_some() {
        change.changed_fields = Change::fields_changed(before.as_ref(), after.as_ref());
        change.before = before;
        change.after = after;
    }
    Ok(change)
}

/// Whether entry `c` of the feed's read waits for an earlier entry of its plant in a region the feed
/// does not lead (`?1`): per-plant order across leaders. A plant's entries lie outside the led regions
/// only if it left one of them, by an update that moved it or by a delete (after which its id may be
/// created elsewhere); only those departures are indexed by plant (migration 0021). A leader never
/// processes an entry while an earlier one of its plant is unprocessed, so a plant's unprocessed
/// entries are the last of its history. The entry waits while a departure up to it is itself outside
/// the led regions, or moved the plant from a region outside them where the plant still has an
/// unprocessed entry before the move: looked for from the move backwards, where it is when it exists
/// (the plant's last entry there). Entries journaled as JSON (before migration 0012) name the region
/// a move left only in their image.
const HELD_BACK: &str = "SELECT 1 FROM plant_changes d INDEXED BY plant_changes_unprocessed_departures \
     WHERE d.plant_id = c.plant_id AND d.seq <= c.seq AND d.processed_at IS NULL \
       AND (d.kind = 'deleted' OR (d.kind = 'updated' AND d.before_region IS NOT d.region)) \
       AND (d.region NOT IN (SELECT value FROM json_each(?1)) \
            OR coalesce(d.before_region, d.before ->> 'region') NOT IN (SELECT value FROM json_each(?1)) \
               AND (SELECT e.seq FROM plant_changes e INDEXED BY plant_changes_unprocessed_by_region \
                    WHERE e.region = coalesce(d.before_region, d.before ->> 'region') \
                      AND e.processed_at IS NULL AND e.seq < d.seq AND e.plant_id = d.plant_id \
                    ORDER BY e.seq DESC LIMIT 1) IS NOT NULL)";

#[async_trait]
impl JournalStore for SqliteStore {
    async fn list_changes(
        &self,
        plant_id: Option<&str>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM plant_changes \
             WHERE seq > ?1 AND (?2 IS NULL OR plant_id = ?2) ORDER BY seq LIMIT ?3"
        ))
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(plant_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_journaled).collect()
    }

    async fn recorded(&self, limit: u32) -> Result<Vec<Recorded>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS}, event, \
               (SELECT json_group_array(sink) FROM deliveries d \
                WHERE d.seq = c.seq AND d.sink IS NOT NULL) AS sinks \
             FROM (SELECT * FROM plant_changes WHERE processed_at IS NOT NULL \
                   ORDER BY seq DESC LIMIT ?1) c ORDER BY seq"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let recorded = decode_recorded(row)?;
                Ok(Recorded {
                    change: with_columns(row, recorded.change)?,
                    ..recorded
                })
            })
            .collect()
    }

    fn change_signal(&self) -> ChangeSignal {
        self.written.signal()
    }

    async fn last_seq(&self) -> Result<u64, StoreError> {
        let last: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM plant_changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(last).unwrap_or(0))
    }

    async fn processed_among(&self, seqs: &[u64], limit: u32) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM plant_changes \
             WHERE seq IN (SELECT value FROM json_each(?1)) AND processed_at IS NOT NULL ORDER BY seq LIMIT ?2"
        ))
        .bind(shared::seqs_json(seqs))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_journaled).collect()
    }

    async fn journal_writers(&self) -> Result<Vec<String>, StoreError> {
        // One writer at a time holds the file, and a seq is taken inside its write: entries become
        // visible in seq order.
        Ok(Vec::new())
    }

    async fn journal_lag(&self) -> Result<Vec<RegionLag>, StoreError> {
        let rows = sqlx::query(
            "SELECT region, count(*) AS entries, \
             (julianday('now') - julianday(min(committed_at))) * 86400.0 AS oldest_seconds \
             FROM plant_changes WHERE processed_at IS NULL GROUP BY region ORDER BY region",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_lag).collect()
    }

    async fn unprocessed_changes(
        &self,
        regions: &[String],
        limit: u32,
        in_flight: &[u64],
    ) -> Result<Vec<Change>, StoreError> {
        let query = format!(
            "SELECT {CHANGE_COLUMNS}, \
               coalesce(octet_length(before_attributes), octet_length(before), 0) \
               + coalesce(octet_length(after_attributes), octet_length(after), 0) AS read_bytes \
             FROM plant_changes c \
             WHERE c.processed_at IS NULL AND c.region IN (SELECT value FROM json_each(?1)) \
               AND c.seq NOT IN (SELECT value FROM json_each(?3)) \
               AND NOT EXISTS ({HELD_BACK}) \
             ORDER BY c.seq LIMIT ?2"
        );
        let query = sqlx::query(&query)
            .bind(shared::regions_json(regions))
            .bind(i64::from(limit))
            .bind(serde_json::Value::from(in_flight).to_string());
        let rows = fetch_within_read_budget(query, &self.pool).await?;
        rows.iter().map(decode_journaled).collect()
    }

    async fn record_processed(
        &self,
        batch: &[Processed],
        fences: &[Fence],
    ) -> Result<(), StoreError> {
        // Two set-based statements per batch rather than two per change: each statement is a round
        // trip to the driver's worker thread, which would otherwise dominate the feed's cost.
        let (outcomes, deliveries) = shared::batch_json(batch);
        let fences = fences.to_vec();
        self.writer
            .run(Box::new(move |conn, before| {
                Box::pin(record_processed(conn, before, fences, outcomes, deliveries))
            }))
            .await
    }

    async fn snapshot(
        &self,
        region: &str,
        only_first: bool,
        fence: &Fence,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        check_fences(&mut tx, std::slice::from_ref(fence)).await?;
        let first = sqlx::query(
            "INSERT INTO feed_snapshots (scope, taken_at) \
             VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
             ON CONFLICT (scope) DO UPDATE SET taken_at = excluded.taken_at WHERE NOT ?2",
        )
        .bind(region)
        .bind(only_first)
        .execute(&mut *tx)
        .await?;
        if first.rows_affected() == 0 {
            return Ok(0);
        }
        // A plant with a change still to be fed is left out: that change brings its state anyway (not
        // a backfill's entry, which goes to the backfill's sinks only).
        let added = sqlx::query(
            "INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields) \
             SELECT id, region, 'snapshot', NULL, image, '[]' FROM power_plant_images p \
             WHERE region = ?1 AND id NOT IN \
               (SELECT plant_id FROM plant_changes INDEXED BY plant_changes_unprocessed_by_region \
                WHERE processed_at IS NULL AND backfill_id IS NULL) \
             ORDER BY id",
        )
        .bind(region)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(added.rows_affected())
    }
}

/// Marks a fed batch processed with its outcomes, counts it in the statistics and queues its
/// deliveries, all under the fences of its regions; inside the writer's transaction, after `before`
/// (see `group_commit`). `outcomes` and `deliveries` are the JSON arrays of `shared::batch_json`.
/// One query of four statements, one round trip: the fences' touch, whose rows say whether every
/// fence held (if not, the writer undoes the savepoint, so nothing of the others stays); the
/// statistics, counted from the entries not yet processed; the entries marked; the deliveries.
/// Its one parameter is a JSON object of the three arrays: sqlx binds `?1` in every statement, but
/// leaves a later statement's `?3` unbound when the statement skips `?1` and `?2`.
async fn record_processed(
    conn: &mut SqliteConnection,
    before: String,
    fences: Vec<Fence>,
    outcomes: String,
    deliveries: String,
) -> Result<(), StoreError> {
    let touched: Vec<String> = sqlx::query_scalar(&format!(
        "{before}{FENCES}; \
         INSERT INTO stats_events (minute, region, kind, outcome, count) \
         SELECT {MINUTE_NOW}, c.region, c.kind, o.value ->> 1, count(*) \
         FROM json_each(?1, '$.outcomes') AS o JOIN plant_changes c ON c.seq = o.value ->> 0 \
         WHERE c.processed_at IS NULL GROUP BY c.region, c.kind, o.value ->> 1 \
         ON CONFLICT (minute, region, kind, outcome) \
         DO UPDATE SET count = stats_events.count + excluded.count; \
         UPDATE plant_changes SET processed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), \
         outcome = o.value ->> 1, outcome_plugin = o.value ->> 2, outcome_reason = o.value ->> 3, \
         event = o.value ->> 4, outcome_pipeline = o.value ->> 5 \
         FROM json_each(?1, '$.outcomes') AS o \
         WHERE plant_changes.seq = o.value ->> 0 AND processed_at IS NULL; \
         INSERT INTO deliveries (seq, sink, plant_id, region, status, last_error) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 \
         FROM json_each(?1, '$.deliveries')"
    ))
    .bind(format!(
        r#"{{"fences":{},"outcomes":{outcomes},"deliveries":{deliveries}}}"#,
        shared::fences_json(&fences)
    ))
    .fetch_all(&mut *conn)
    .await?;
    shared::fenced(&fences, &touched)
}
