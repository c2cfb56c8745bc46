//! End-to-end throughput: N journal entries written by raw SQL in one transaction, fed through the three
//! example plugins and delivered to an in-process HTTP receiver (sinks green, grid and alerts), on
//! SQLite. The clock runs from the commit to the moment every entry is processed and every delivery
//! acknowledged by the receiver.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use plant_monitor::config::Config;
use plant_monitor::service::Service;

pub async fn run(events: u32, max_in_flight: u32, batch_size: u32) -> anyhow::Result<()> {
    let received = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver = listener.local_addr()?;
    let counter = received.clone();
    tokio::spawn(async move {
        let app = Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                StatusCode::NO_CONTENT
            }
        });
        axum::serve(listener, app).await
    });

    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}", db.display());
    config.server.listen = "127.0.0.1:0".parse()?;
    config.plugins.dir = super::dist();
    config.plugins.cache_dir = dir.path().join("cache");
    config.feed.batch_size = batch_size;
    for name in ["green", "grid", "alerts"] {
        config.sinks.insert(
            name.into(),
            serde_json::from_value(serde_json::json!({
                "url": format!("http://{receiver}/{name}"),
                "max_in_flight": max_in_flight,
            }))?,
        );
    }
    let service = Service::start(&config).await?;
    let pool = sqlx::SqlitePool::connect(&config.database.url).await?;

    let fuels = ["hydro", "wind", "gas", "coal", "solar", "nuclear"];
    let mut tx = pool.begin().await?;
    for i in 0..events {
        // One plant in ten reports more than its capacity: an alert that fans out to two sinks.
        let output = if i % 10 == 0 { 150.0 } else { 80.0 };
        sqlx::query(
            "INSERT INTO power_plants (name, region, fuel, capacity_mw, output_mw) VALUES (?1, ?2, ?3, 100, ?4)",
        )
        .bind(format!("plant {i}"))
        .bind(format!("region-{}", i % 4))
        .bind(fuels[i as usize % fuels.len()])
        .bind(output)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let started = Instant::now();
    let expected = u64::from(events) + u64::from(events).div_ceil(10);

    loop {
        let unprocessed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM plant_changes WHERE processed_at IS NULL")
                .fetch_one(&pool)
                .await?;
        if unprocessed == 0 && received.load(Ordering::Relaxed) >= expected {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not done after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    println!(
        "{events} events ({} deliveries) journal → plugins → HTTP on SQLite, batch_size {batch_size}, max_in_flight {max_in_flight}: {:.2} s, {:.0} events/s, {:.0} deliveries/s",
        received.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        f64::from(events) / elapsed.as_secs_f64(),
        received.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
    );
    service.shutdown().await?;
    Ok(())
}
