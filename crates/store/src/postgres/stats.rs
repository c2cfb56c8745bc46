//! The statistics on PostgreSQL: a window's buckets read from the per-minute tables by their primary
//! key's range of minutes, summed per bucket in the query.

use async_trait::async_trait;

use super::{MINUTE_NOW, PostgresStore};
use crate::stats::{self, Rows, Stats};
use crate::{StatsStore, StoreError};

#[async_trait]
impl StatsStore for PostgresStore {
    async fn stats(&self, step: u32, points: u32) -> Result<Stats, StoreError> {
        let now: i64 = sqlx::query_scalar(&format!("SELECT {MINUTE_NOW}"))
            .fetch_one(&self.pool)
            .await?;
        let from = stats::from_minute(now, step, points);
        let to = from + i64::from(step) * i64::from(points);
        let events = sqlx::query_as(
            "SELECT (minute - $1) / $2 AS point, region, kind, outcome, sum(count)::bigint \
             FROM stats_events WHERE minute >= $1 AND minute < $3 \
             GROUP BY point, region, kind, outcome",
        )
        .bind(from)
        .bind(i64::from(step))
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let deliveries = sqlx::query_as(
            "SELECT (minute - $1) / $2 AS point, sink, outcome, sum(count)::bigint \
             FROM stats_deliveries WHERE minute >= $1 AND minute < $3 \
             GROUP BY point, sink, outcome",
        )
        .bind(from)
        .bind(i64::from(step))
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let latency = sqlx::query_as(
            "SELECT (minute - $1) / $2 AS point, sink, bucket::bigint, sum(count)::bigint \
             FROM stats_latency WHERE minute >= $1 AND minute < $3 \
             GROUP BY point, sink, bucket",
        )
        .bind(from)
        .bind(i64::from(step))
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        stats::shape(
            from,
            points,
            Rows {
                events,
                deliveries,
                latency,
            },
        )
    }
}
