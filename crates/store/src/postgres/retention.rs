//! Retention on PostgreSQL: delivered rows, finished journal entries and old statistics deleted a
//! bounded batch at a time.

use std::time::Duration;

use async_trait::async_trait;

use super::{MINUTE_NOW, PostgresStore};
use crate::{RetentionStore, StoreError};

#[async_trait]
impl RetentionStore for PostgresStore {
    async fn prune(&self, age: Duration, limit: u32) -> Result<(u64, u64), StoreError> {
        let deliveries = sqlx::query(
            "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
               WHERE status = 'delivered' AND delivered_at < now() - make_interval(secs => $1) \
               LIMIT $2)",
        )
        .bind(age.as_secs_f64())
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        let changes = sqlx::query(
            "DELETE FROM plant_changes WHERE seq IN (SELECT seq FROM plant_changes c \
               WHERE c.processed_at < now() - make_interval(secs => $1) \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = c.seq) \
               ORDER BY seq LIMIT $2)",
        )
        .bind(age.as_secs_f64())
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        // The deliveries just deleted were counted out as deltas; fold them with the rest, so the
        // deltas stay few even where nothing reads the figures.
        super::outbox::fold_sink_counts(&self.pool).await?;
        Ok((deliveries.rows_affected(), changes.rows_affected()))
    }

    async fn prune_stats(&self, kept: Duration, limit: u32) -> Result<u64, StoreError> {
        let mut pruned = 0;
        for (table, key) in [
            ("stats_events", "region, kind, outcome"),
            ("stats_deliveries", "sink, outcome"),
            ("stats_latency", "sink, bucket"),
        ] {
            pruned += sqlx::query(&format!(
                "DELETE FROM {table} WHERE (minute, {key}) IN \
                   (SELECT minute, {key} FROM {table} WHERE minute < {MINUTE_NOW} - $1 LIMIT $2)"
            ))
            .bind(i64::try_from(kept.as_secs() / 60).unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(pruned)
    }
}
