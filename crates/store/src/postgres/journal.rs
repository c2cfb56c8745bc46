//! The journal on PostgreSQL: listing, the unprocessed entries of led regions, recording what the feed
//! made of them with their deliveries, and region snapshots, each write fenced by the region leases.

use std::time::Duration;

use async_trait::async_trait;

use super::{PostgresStore, check_fences};
use crate::decode::{decode_change, decode_recorded};
use crate::{Fence, JournalStore, Processed, Recorded, StoreError, shared};
use plant_monitor_core::domain::Change;

/// The columns [`decode_change`] reads, as text in the contract's format.
const CHANGE_COLUMNS: &str = "seq, plant_id, region, kind, before::text AS before, after::text AS after, \
     changed_fields::text AS changed_fields, plant_time(committed_at) AS committed_at, \
     plant_time(processed_at) AS processed_at, outcome, outcome_plugin, outcome_reason, outcome_pipeline";

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
        rows.iter().map(decode_change).collect()
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
        rows.iter().map(decode_recorded).collect()
    }

    async fn wait_for_changes(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.written.notified()).await;
    }

    async fn unprocessed_changes(
        &self,
        regions: &[String],
        limit: u32,
    ) -> Result<Vec<Change>, StoreError> {
        let query = format!(
            "SELECT {CHANGE_COLUMNS} FROM plant_changes c \
             WHERE c.processed_at IS NULL AND c.region = ANY($1) \
               AND NOT EXISTS (SELECT 1 FROM plant_changes e \
                               WHERE e.plant_id = c.plant_id AND e.seq < c.seq \
                                 AND e.processed_at IS NULL AND e.region <> ALL($1) \
                               OFFSET 0) \
             ORDER BY c.seq LIMIT $2"
        );
        let rows = sqlx::query(&shared::within_read_budget(
            &query,
            "coalesce(length(q.before), 0) + coalesce(length(q.after), 0)",
            "seq",
        ))
        .bind(regions)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_change).collect()
    }

    async fn record_processed(
        &self,
        batch: &[Processed],
        fences: &[Fence],
    ) -> Result<(), StoreError> {
        // Set-based, as in the SQLite store: two statements per batch however large.
        let (outcomes, deliveries) = shared::batch_json(batch);
        let mut tx = self.pool.begin().await?;
        check_fences(&mut tx, fences).await?;
        sqlx::query(
            "UPDATE plant_changes c SET processed_at = now(), outcome = o ->> 1, \
             outcome_plugin = o ->> 2, outcome_reason = o ->> 3, event = o ->> 4, \
             outcome_pipeline = o ->> 5 \
             FROM jsonb_array_elements($1::jsonb) AS o \
             WHERE c.seq = (o ->> 0)::bigint AND c.processed_at IS NULL",
        )
        .bind(outcomes)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO deliveries (seq, sink, plant_id, region, status, last_error) \
             SELECT (d ->> 0)::bigint, d ->> 1, d ->> 2, d ->> 3, d ->> 4, d ->> 5 \
             FROM jsonb_array_elements($1::jsonb) AS d",
        )
        .bind(deliveries)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
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
        // still to be fed is left out: that change brings its state anyway.
        let added = sqlx::query(
            "INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields) \
             SELECT id, region, 'snapshot', NULL, plant_image(p), '[]' FROM power_plants p \
             WHERE region = $1 AND NOT EXISTS (SELECT 1 FROM plant_changes c \
                                               WHERE c.plant_id = p.id AND c.processed_at IS NULL) \
             ORDER BY id FOR SHARE OF p",
        )
        .bind(region)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(added.rows_affected())
    }
}
