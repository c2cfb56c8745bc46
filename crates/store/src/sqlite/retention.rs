//! Retention on SQLite: delivered rows, finished journal entries and old statistics deleted a bounded
//! batch at a time.

use std::time::Duration;

use async_trait::async_trait;

use super::{MINUTE_NOW, SqliteStore};
use crate::{RetentionStore, StoreError};

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn prune(&self, age: Duration, limit: u32) -> Result<(u64, u64), StoreError> {
        let cutoff = format!("-{:.3} seconds", age.as_secs_f64());
        let deliveries = sqlx::query(
            "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
               WHERE status = 'delivered' \
                 AND delivered_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1) LIMIT ?2)",
        )
        .bind(&cutoff)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        let changes = sqlx::query(
            "DELETE FROM plant_changes WHERE seq IN (SELECT seq FROM plant_changes c \
               WHERE c.processed_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1) \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = c.seq) \
               ORDER BY seq LIMIT ?2)",
        )
        .bind(&cutoff)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
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
                   (SELECT minute, {key} FROM {table} WHERE minute < {MINUTE_NOW} - ?1 LIMIT ?2)"
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
