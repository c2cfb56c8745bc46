//! The statistics on SQLite: a window's buckets read from the per-minute tables by their primary key's
//! range of minutes, summed per bucket in the query.

use async_trait::async_trait;

use super::{MINUTE_NOW, SqliteStore};
use crate::stats::{self, Rows, Stats};
use crate::{StatsStore, StoreError};

/// Each table's window, summed per bucket: `?1` the first minute, `?2` the step, `?3` the end.
const EVENTS: &str = "SELECT (minute - ?1) / ?2 AS point, region, kind, outcome, sum(count) \
     FROM stats_events WHERE minute >= ?1 AND minute < ?3 GROUP BY point, region, kind, outcome";
const DELIVERIES: &str = "SELECT (minute - ?1) / ?2 AS point, sink, outcome, sum(count) \
     FROM stats_deliveries WHERE minute >= ?1 AND minute < ?3 GROUP BY point, sink, outcome";
const LATENCY: &str = "SELECT (minute - ?1) / ?2 AS point, sink, bucket, sum(count) \
     FROM stats_latency WHERE minute >= ?1 AND minute < ?3 GROUP BY point, sink, bucket";

#[async_trait]
impl StatsStore for SqliteStore {
    async fn stats(&self, step: u32, points: u32) -> Result<Stats, StoreError> {
        let now: i64 = sqlx::query_scalar(&format!("SELECT {MINUTE_NOW}"))
            .fetch_one(&self.pool)
            .await?;
        let from = stats::from_minute(now, step, points);
        let to = from + i64::from(step) * i64::from(points);
        let events = sqlx::query_as(EVENTS)
            .bind(from)
            .bind(step)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        let deliveries = sqlx::query_as(DELIVERIES)
            .bind(from)
            .bind(step)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        let latency = sqlx::query_as(LATENCY)
            .bind(from)
            .bind(step)
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

#[cfg(test)]
mod tests {
    use sqlx::migrate::Migrator;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

    use super::*;
    use crate::migrations::{self, Embedded};

    /// The read's cost is its window's: each table is searched by the range of minutes its primary
    /// key starts with, never scanned, so neither older minutes nor the journal and the outbox (which
    /// it does not touch) make it slower.
    #[tokio::test]
    async fn a_read_searches_each_table_by_its_range_of_minutes() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("stats.db"))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.expect("opened");
        Migrator::new(Embedded(migrations::SQLITE))
            .await
            .expect("list")
            .run(&pool)
            .await
            .expect("migrated");
        for (query, table) in [
            (EVENTS, "stats_events"),
            (DELIVERIES, "stats_deliveries"),
            (LATENCY, "stats_latency"),
        ] {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {query}"))
                    .bind(100)
                    .bind(1)
                    .bind(160)
                    .fetch_all(&pool)
                    .await
                    .expect("planned");
            let steps: Vec<&str> = plan.iter().map(|(.., detail)| detail.as_str()).collect();
            assert!(
                steps.contains(
                    &format!("SEARCH {table} USING PRIMARY KEY (minute>? AND minute<?)").as_str()
                ),
                "{steps:?}"
            );
            assert!(
                !steps.iter().any(|step| step.starts_with("SCAN")),
                "{steps:?}"
            );
        }
    }
}
