//! Backfills on PostgreSQL: created with the count of the plants they match, stepped a batch of
//! snapshot entries per transaction, read with their progress. A step locks its backfill's row first,
//! so two replicas stepping one backfill take turns, the second reading where the first left off.

use async_trait::async_trait;

use super::{CHANNEL, PostgresStore};
use crate::decode::decode_backfill;
use crate::{Backfill, BackfillFilter, BackfillStep, BackfillStore, StoreError, shared};

/// Whether plant `p` matches the filter of backfill `b`.
const MATCHES: &str = "(b.filter ->> 'region' IS NULL OR p.region = b.filter ->> 'region') \
     AND (b.filter ->> 'fuel' IS NULL OR p.fuel = b.filter ->> 'fuel') \
     AND (b.filter ->> 'status' IS NULL OR p.status = b.filter ->> 'status') \
     AND (b.filter ->> 'ids' IS NULL \
          OR p.id IN (SELECT jsonb_array_elements_text(b.filter -> 'ids')))";

/// The columns [`decode_backfill`] reads, of backfill `b`: what is done is what was journaled less
/// what still waits for the feed, which retention never prunes.
const BACKFILL_COLUMNS: &str = "b.id, b.filter::text AS filter, b.sinks::text AS sinks, b.state, \
     b.total, b.emitted, \
     b.emitted - (SELECT count(*) FROM plant_changes c \
                  WHERE c.backfill_id = b.id AND c.processed_at IS NULL) AS done, \
     plant_time(b.created_at) AS created_at, plant_time(b.finished_at) AS finished_at";

#[async_trait]
impl BackfillStore for PostgresStore {
    async fn create_backfill(
        &self,
        filter: &BackfillFilter,
        sinks: &[String],
    ) -> Result<Backfill, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO backfills (filter, sinks, total) \
             SELECT b.filter, $2::jsonb, (SELECT count(*) FROM power_plants p WHERE {MATCHES}) \
             FROM (SELECT $1::jsonb AS filter) b \
             RETURNING id, filter::text AS filter, sinks::text AS sinks, state, total, emitted, \
               0::bigint AS done, plant_time(created_at) AS created_at, \
               plant_time(finished_at) AS finished_at"
        ))
        .bind(serde_json::json!(filter).to_string())
        .bind(serde_json::json!(sinks).to_string())
        .fetch_one(&self.pool)
        .await?;
        decode_backfill(&row)
    }

    async fn get_backfill(&self, id: i64) -> Result<Option<Backfill>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {BACKFILL_COLUMNS} FROM backfills b WHERE b.id = $1"
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
            "SELECT {BACKFILL_COLUMNS} FROM backfills b WHERE $1::bigint IS NULL OR b.id < $1 \
             ORDER BY b.id DESC LIMIT $2"
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
        // A step that waited for this lock reads, in its next statement, where the one before left off.
        let running: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM backfills WHERE id = $1 AND state = 'running' FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if running.is_none() {
            return Ok(BackfillStep::NotRunning);
        }
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM plant_changes WHERE backfill_id = $1 AND processed_at IS NULL",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if waiting >= i64::from(limit) {
            return Ok(BackfillStep::Waiting);
        }
        // FOR SHARE waits for writers of these plants and reads what they committed, so no entry
        // carries an image older than a change journaled before it (as in the region snapshot). The
        // greatest id is taken by the database, in the order its collation gives `>`.
        let (last, entries): (Option<String>, i64) = sqlx::query_as(&format!(
            "WITH batch AS (SELECT p.id, p.region, plant_image(p) AS image \
                            FROM backfills b, power_plants p \
                            WHERE b.id = $1 AND p.id > coalesce(b.last_plant_id, '') AND {MATCHES} \
                            ORDER BY p.id LIMIT $2 FOR SHARE OF p), \
                  journaled AS (INSERT INTO plant_changes (plant_id, region, kind, before, after, \
                                                           changed_fields, backfill_id) \
                                SELECT id, region, 'snapshot', NULL, image, '[]', $1 FROM batch \
                                ORDER BY id RETURNING plant_id) \
             SELECT max(plant_id), count(*) FROM journaled"
        ))
        .bind(id)
        .bind(i64::from(limit))
        .fetch_one(&mut *tx)
        .await?;
        let finished = entries < i64::from(limit);
        sqlx::query(
            "UPDATE backfills SET last_plant_id = coalesce($2, last_plant_id), \
               emitted = emitted + $3, \
               total = CASE WHEN $4 THEN emitted + $3 ELSE greatest(total, emitted + $3) END, \
               state = CASE WHEN $4 THEN 'done' ELSE 'running' END, \
               finished_at = CASE WHEN $4 THEN now() END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(last)
        .bind(entries)
        .bind(finished)
        .execute(&mut *tx)
        .await?;
        if entries > 0 {
            // Wakes the feed of every replica, as the journal trigger does for other writes.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(BackfillStep::Emitted {
            entries: entries as u64,
            finished,
        })
    }

    async fn backfill_sinks(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<String>)>, StoreError> {
        let rows = sqlx::query_as("SELECT id, sinks::text FROM backfills WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        shared::sink_lists(rows)
    }
}
