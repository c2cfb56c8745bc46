//! Backfills on SQLite: created with the count of the plants they match, stepped a batch of snapshot
//! entries per transaction, read with their progress. A step writes before it reads, so it holds the
//! write lock from its first statement: two processes stepping one backfill take turns.

use async_trait::async_trait;

use super::SqliteStore;
use crate::decode::decode_backfill;
use crate::{Backfill, BackfillFilter, BackfillStep, BackfillStore, StoreError, shared};

/// Whether plant `p` (of `power_plants` or `power_plant_images`) matches the filter of backfill `b`.
const MATCHES: &str = "(b.filter ->> 'region' IS NULL OR p.region = b.filter ->> 'region') \
     AND (b.filter ->> 'fuel' IS NULL OR p.fuel = b.filter ->> 'fuel') \
     AND (b.filter ->> 'status' IS NULL OR p.status = b.filter ->> 'status') \
     AND (b.filter ->> 'ids' IS NULL \
          OR p.id IN (SELECT value FROM json_each(b.filter, '$.ids')))";

/// The columns [`decode_backfill`] reads, of backfill `b`: what is done is what was journaled less
/// what still waits for the feed, which retention never prunes.
const BACKFILL_COLUMNS: &str = "b.id, b.filter, b.sinks, b.state, b.total, b.emitted, \
     b.emitted - (SELECT count(*) FROM plant_changes c \
                  WHERE c.backfill_id = b.id AND c.processed_at IS NULL) AS done, \
     b.created_at, b.finished_at";

#[async_trait]
impl BackfillStore for SqliteStore {
    async fn create_backfill(
        &self,
        filter: &BackfillFilter,
        sinks: &[String],
    ) -> Result<Backfill, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO backfills (filter, sinks, total) \
             SELECT b.filter, ?2, (SELECT count(*) FROM power_plants p WHERE {MATCHES}) \
             FROM (SELECT ?1 AS filter) b \
             RETURNING id, filter, sinks, state, total, emitted, 0 AS done, created_at, finished_at"
        ))
        .bind(serde_json::json!(filter).to_string())
        .bind(serde_json::json!(sinks).to_string())
        .fetch_one(&self.pool)
        .await?;
        decode_backfill(&row)
    }

    async fn get_backfill(&self, id: i64) -> Result<Option<Backfill>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {BACKFILL_COLUMNS} FROM backfills b WHERE b.id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_backfill).transpose()
    }

    async fn list_backfills(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Backfill>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {BACKFILL_COLUMNS} FROM backfills b WHERE ?1 IS NULL OR b.id < ?1 \
             ORDER BY b.id DESC LIMIT ?2"
        ))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_backfill).collect()
    }

    async fn running_backfills(&self) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM backfills WHERE state = 'running' ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn step_backfill(&self, id: i64, limit: u32) -> Result<BackfillStep, StoreError> {
        let mut tx = self.pool.begin().await?;
        let running: Option<i64> = sqlx::query_scalar(
            "UPDATE backfills SET state = state WHERE id = ?1 AND state = 'running' RETURNING id",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if running.is_none() {
            return Ok(BackfillStep::NotRunning);
        }
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM plant_changes WHERE backfill_id = ?1 AND processed_at IS NULL",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if waiting >= i64::from(limit) {
            return Ok(BackfillStep::Waiting);
        }
        let journaled: Vec<String> = sqlx::query_scalar(&format!(
            "INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields, \
                                        backfill_id) \
             SELECT p.id, p.region, 'snapshot', NULL, p.image, '[]', b.id \
             FROM backfills b, power_plant_images p \
             WHERE b.id = ?1 AND p.id > coalesce(b.last_plant_id, '') AND {MATCHES} \
             ORDER BY p.id LIMIT ?2 \
             RETURNING plant_id"
        ))
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let entries = journaled.len() as u64;
        let finished = entries < u64::from(limit);
        // SQLite compares text byte by byte, as Rust does: the greatest id is the one to go on after.
        let last = journaled.into_iter().max();
        sqlx::query(
            "UPDATE backfills SET last_plant_id = coalesce(?2, last_plant_id), \
               emitted = emitted + ?3, \
               total = CASE WHEN ?4 THEN emitted + ?3 ELSE max(total, emitted + ?3) END, \
               state = CASE WHEN ?4 THEN 'done' ELSE 'running' END, \
               finished_at = CASE WHEN ?4 THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END \
             WHERE id = ?1",
        )
        .bind(id)
        .bind(last)
        .bind(entries as i64)
        .bind(finished)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if entries > 0 {
            self.written.announce();
        }
        Ok(BackfillStep::Emitted { entries, finished })
    }

    async fn backfill_sinks(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<String>)>, StoreError> {
        let rows = sqlx::query_as(
            "SELECT id, sinks FROM backfills WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(serde_json::json!(ids).to_string())
        .fetch_all(&self.pool)
        .await?;
        shared::sink_lists(rows)
    }
}
