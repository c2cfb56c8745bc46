//! The naive approach the original plant-monitor notes describe, written as plainly as it would be:
//! every interval, select the plants whose `updated_at` is past the last one seen, and POST each
//! changed row in a request of its own. It needs no triggers and no journal; what it cannot see is
//! what the journal exists for (deletes, rows committed out of `updated_at` order, all but the last of
//! several updates between two polls).

use std::time::Duration;

use serde_json::json;
use sqlx::AnyPool;
use sqlx::Row;
use tokio::sync::watch;

/// The poll, per backend: PostgreSQL compares timestamps, SQLite the RFC 3339 text it stores.
fn poll_sql(postgres: bool) -> (&'static str, &'static str) {
    if postgres {
        (
            "SELECT id, name, region, fuel, capacity_mw, output_mw, status, version, \
                    CAST(updated_at AS text) AS updated_at \
             FROM power_plants WHERE updated_at > CAST($1 AS timestamptz) \
             ORDER BY power_plants.updated_at",
            "-infinity",
        )
    } else {
        (
            "SELECT id, name, region, fuel, capacity_mw, output_mw, status, version, updated_at \
             FROM power_plants WHERE updated_at > $1 ORDER BY updated_at",
            "",
        )
    }
}

/// Polls `pool` every `interval` and POSTs each new or changed row to `url`, until `stop` turns true.
pub async fn run(
    pool: AnyPool,
    postgres: bool,
    url: String,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (sql, start) = poll_sql(postgres);
    let mut cursor = start.to_owned();
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return Ok(()),
        }
        let rows = sqlx::query(sql)
            .bind(cursor.clone())
            .fetch_all(&pool)
            .await?;
        for row in rows {
            let body = json!({
                "kind": "row",
                "plant_id": row.try_get::<String, _>("id")?,
                "name": row.try_get::<String, _>("name")?,
                "region": row.try_get::<String, _>("region")?,
                "fuel": row.try_get::<String, _>("fuel")?,
                "capacity_mw": row.try_get::<f64, _>("capacity_mw")?,
                "output_mw": row.try_get::<Option<f64>, _>("output_mw")?,
                "status": row.try_get::<String, _>("status")?,
                "version": row.try_get::<i64, _>("version")?,
                "updated_at": row.try_get::<String, _>("updated_at")?,
            });
            client
                .post(&url)
                .json(&body)
                .send()
                .await?
                .error_for_status()?;
            cursor = row.try_get("updated_at")?;
        }
    }
}
