//! Draining a backlog: N plants are written while the one sink is disabled, so N deliveries wait in
//! the outbox; then the sink is enabled and the clock runs until all are acknowledged. Peak resident
//! memory (VmHWM) is read before and after the drain: a worker holds one round of deliveries at a
//! time, so memory must not grow with the backlog.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use plant_monitor::service::Service;
use plant_monitor::store;
use sqlx::any::AnyPoolOptions;

use crate::database::Database;
use crate::e2e::start_receiver;
use crate::process::peak_rss_kib;

/// What to measure.
#[derive(Debug)]
pub struct Setup {
    pub deliveries: u32,
    pub batch_max: u32,
    pub max_in_flight: u32,
    pub postgres: Option<String>,
}

pub async fn run(setup: Setup) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let received = Arc::new(AtomicU64::new(0));
    let receiver = start_receiver(received.clone()).await?;
    let dir = tempfile::tempdir()?;
    let database = Database::open(setup.postgres.as_deref(), dir.path(), "drain.db").await?;
    let config = database.service_config(
        dir.path(),
        "out",
        serde_json::json!({
            "url": format!("http://{receiver}/out"),
            "batch_max": setup.batch_max,
            "max_in_flight": setup.max_in_flight,
        }),
    )?;
    let store = store::connect(&config.database).await?;
    store.migrate().await?;
    store.disable_sink("out", "held for the benchmark").await?;
    let service = Service::start(&config).await?;

    let pool = AnyPoolOptions::new().connect(database.url()).await?;
    let mut tx = pool.begin().await?;
    for i in 0..setup.deliveries {
        sqlx::query(
            "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ($1, 'north', 'wind', 10)",
        )
        .bind(format!("plant {i}"))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let expected = u64::from(setup.deliveries);
    loop {
        let pending = store
            .sink_stats()
            .await?
            .into_iter()
            .find(|(name, _)| name == "out")
            .map_or(0, |(_, stats)| stats.pending);
        if pending >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = peak_rss_kib()?;
    let started = Instant::now();
    store.enable_sink("out").await?;
    while received.load(Ordering::Relaxed) < expected {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not drained after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let after = peak_rss_kib()?;
    println!(
        "{expected} pending deliveries drained to one sink on {}, batch_max {}, max_in_flight {}: \
         {:.2} s, {:.0} events/s; \
         peak RSS {} MiB with the backlog queued, {} MiB after the drain",
        database.name(),
        setup.batch_max,
        setup.max_in_flight,
        elapsed.as_secs_f64(),
        expected as f64 / elapsed.as_secs_f64(),
        before / 1024,
        after / 1024,
    );
    service.shutdown().await?;
    store.close().await;
    pool.close().await;
    // Dropping the database (a PostgreSQL one is dropped from the server) comes last.
    drop(database);
    Ok(())
}
