//! The journal on PostgreSQL: listing, the unprocessed entries of led regions, recording what the feed
//! made of them with their deliveries (and counting them in the statistics), and region snapshots,
//! each write fenced by the region leases.

use async_trait::async_trait;
use sqlx::postgres::PgRow;

use super::plant_row::PlantRow;
use super::{FENCES, JOURNAL_WRITERS, MINUTE_NOW, PostgresStore, check_fences, within_read_budget};
use crate::decode::{decode_change, decode_lag, decode_recorded};
use crate::{
    ChangeSignal, Fence, JournalStore, Processed, Recorded, RegionLag, StoreError, shared,
};
use plant_monitor_core::domain::Change;

/// The columns [`decode_change`] reads, as text in the contract's format, and the rows the journal
/// trigger stored as the writer left them (`before_row`, `after_row`), whose images and changed fields
/// [`with_rows`] makes; entries journaled as JSON (before migration 0012, snapshots, backfills) have no
/// rows. A transaction that brought no trace gets one from its id (migration 0022).
const CHANGE_COLUMNS: &str = "seq, plant_id, region, kind, before::text AS before, \
     after::text AS after, changed_fields::text AS changed_fields, before_row, after_row, \
     plant_time(committed_at) AS committed_at, \
     plant_time(processed_at) AS processed_at, outcome, outcome_plugin, outcome_reason, outcome_pipeline, \
     plant_traceparent(traceparent, xact, committed_at) AS traceparent, backfill_id";

/// A journal entry from [`CHANGE_COLUMNS`].
fn decode_journaled(row: &PgRow) -> Result<Change, StoreError> {
    with_rows(row, decode_change(row)?)
}

/// `change` with the images and changed fields of its rows, where the trigger journaled rows.
fn with_rows(row: &PgRow, mut change: Change) -> Result<Change, StoreError> {
    let image = |column: &str| {
        PlantRow::read(row, column, || {
            format!("journal entry {} {column}", change.seq)
        })
    };
    let (before, after) = (image("before_row")?, image("after_row")?);
    if before.is_some() || after.is_some() {
        change.changed_fields = Change::fields_changed(before.as_ref(), after.as_ref());
        change.before = before;
        change.after = after;
    }
    Ok(change)
}

#[async_trait]
impl JournalStore for PostgresStore {
    async fn list_changes(
        &self,
        plant_id: Option<&str>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM plant_changes \
             WHERE seq > $1 AND ($2::text IS NULL OR plant_id = $2) ORDER BY seq LIMIT $3"
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
               (SELECT coalesce(json_agg(sink ORDER BY sink), '[]')::text FROM deliveries d \
                WHERE d.seq = c.seq AND d.sink IS NOT NULL) AS sinks \
             FROM (SELECT * FROM plant_changes WHERE processed_at IS NOT NULL \
                   ORDER BY seq DESC LIMIT $1) c ORDER BY seq"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let recorded = decode_recorded(row)?;
                Ok(Recorded {
                    change: with_rows(row, recorded.change)?,
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
             WHERE seq = ANY($1) AND processed_at IS NOT NULL ORDER BY seq LIMIT $2"
        ))
        .bind(bigints(seqs))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_journaled).collect()
    }

    async fn journal_writers(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(JOURNAL_WRITERS)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn journal_lag(&self) -> Result<Vec<RegionLag>, StoreError> {
        let rows = sqlx::query(
            "SELECT region, count(*) AS entries, \
             extract(epoch FROM now() - min(committed_at))::float8 AS oldest_seconds \
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
        // The entries are chosen by a function of migration 0020, whose plan does not depend on the
        // table's statistics. Of a row, the budget counts the attributes, the one field of unbounded
        // size (its stored size would be compressed).
        let query = format!("SELECT {CHANGE_COLUMNS} FROM plant_changes_to_feed($1, $2, $3) c");
        let rows = sqlx::query(&within_read_budget(
            &query,
            "coalesce(octet_length((q.before_row).attributes::text), octet_length(q.before), 0) \
             + coalesce(octet_length((q.after_row).attributes::text), octet_length(q.after), 0)",
            "seq",
        ))
        .bind(regions)
        .bind(i64::from(limit))
        .bind(bigints(in_flight))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_journaled).collect()
    }

    async fn record_processed(
        &self,
        batch: &[Processed],
        fences: &[Fence],
    ) -> Result<(), StoreError> {
        // One statement, so one round trip and no explicit transaction. The fencing update runs
        // first (the other parts read its count) and locks the batch's lease rows until the commit,
        // so a successor cannot take a region in between; if a fence no longer holds, nothing is
        // written. The statistics count what the update marked, upserted in key order (byte order,
        // as every writer of these rows) so two feeds wait for each other instead of deadlocking.
        // The batch goes as one array per column, which the server takes as it is; as JSON, parsing
        // 500 events took 3.5 ms of a 25 ms write.
        let queued: Vec<_> = shared::queued(batch).collect();
        let touched: Vec<String> = sqlx::query_scalar(&format!(
            "WITH fenced AS ({FENCES}), \
             held AS (SELECT count(*) = $2 AS held FROM fenced), \
             marked AS ( \
               UPDATE plant_changes c SET processed_at = now(), outcome = o.result, \
                 outcome_plugin = o.plugin, outcome_reason = o.reason, event = o.event, \
                 outcome_pipeline = o.pipeline \
               FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], \
                           $8::text[]) AS o (seq, result, plugin, reason, event, pipeline) \
               WHERE c.seq = o.seq AND c.processed_at IS NULL AND (SELECT held FROM held) \
               RETURNING c.region, c.kind, c.outcome), \
             counted AS ( \
               INSERT INTO stats_events (minute, region, kind, outcome, count) \
               SELECT {MINUTE_NOW}, region, kind, outcome, count(*) FROM marked \
               GROUP BY region, kind, outcome \
               ORDER BY region COLLATE \"C\", kind COLLATE \"C\", outcome COLLATE \"C\" \
               ON CONFLICT (minute, region, kind, outcome) \
               DO UPDATE SET count = stats_events.count + excluded.count), \
             queued AS ( \
               INSERT INTO deliveries (seq, sink, plant_id, region, status, last_error) \
               SELECT * FROM unnest($9::bigint[], $10::text[], $11::text[], $12::text[], \
                                    $13::text[], $14::text[]) \
               WHERE (SELECT held FROM held)) \
             SELECT name FROM fenced"
        ))
        .bind(shared::fences_json(fences))
        .bind(fences.len() as i64)
        .bind(column(batch, |p| p.seq as i64))
        .bind(column(batch, |p| p.result.as_str()))
        .bind(column(batch, |p| p.plugin.as_deref()))
        .bind(column(batch, |p| p.reason.as_deref()))
        .bind(column(batch, |p| p.event.as_deref()))
        .bind(column(batch, |p| p.pipeline.as_str()))
        .bind(column(&queued, |q| q.seq as i64))
        .bind(column(&queued, |q| q.sink))
        .bind(column(&queued, |q| q.plant_id))
        .bind(column(&queued, |q| q.region))
        .bind(column(&queued, |q| q.status))
        .bind(column(&queued, |q| q.error.as_deref()))
        .fetch_all(&self.pool)
        .await?;
        shared::fenced(fences, &touched)
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
            "INSERT INTO feed_snapshots (scope, taken_at) VALUES ($1, now()) \
             ON CONFLICT (scope) DO UPDATE SET taken_at = excluded.taken_at WHERE NOT $2",
        )
        .bind(region)
        .bind(only_first)
        .execute(&mut *tx)
        .await?;
        if first.rows_affected() == 0 {
            return Ok(0);
        }
        // FOR SHARE waits for writers of these rows and reads what they committed, so no snapshot
        // entry carries an image older than a change journaled before it. A plant with a change
        // still to be fed is left out: that change brings its state anyway (not a backfill's entry,
        // which goes to the backfill's sinks only).
        let added = sqlx::query(
            "INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields) \
             SELECT id, region, 'snapshot', NULL, plant_image(p), '[]' FROM power_plants p \
             WHERE region = $1 AND id NOT IN (SELECT plant_id FROM plant_changes \
                                              WHERE processed_at IS NULL AND backfill_id IS NULL) \
             ORDER BY id FOR SHARE OF p",
        )
        .bind(region)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(added.rows_affected())
    }
}

/// Journal `seq`s as the server's `bigint`, which every `seq` came from.
fn bigints(seqs: &[u64]) -> Vec<i64> {
    seqs.iter()
        .filter_map(|&seq| i64::try_from(seq).ok())
        .collect()
}

/// One column of `rows`, as the array a parameter binds.
fn column<'a, T, U>(rows: &'a [T], value: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(value).collect()
}
