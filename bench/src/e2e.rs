//! End-to-end throughput: N plants written by raw SQL, each journaled by the triggers, fed through the
//! three example plugins and delivered to an in-process HTTP receiver (sinks green, grid and alerts), on
//! SQLite or PostgreSQL. Written either in one transaction before the clock starts, or by concurrent
//! writers committing one row at a time while the feed runs. The clock stops when every entry is
//! processed and every delivery acknowledged. The process's CPU time over the same span is printed
//! per event: it is steadier than the rate on these shared cores, and it counts the receiver and the
//! writers too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use plant_monitor::config::Config;
use plant_monitor::service::Service;
use sqlx::any::AnyPoolOptions;

use crate::capture::{insert, write_one_transaction, write_single_rows};
use crate::database::Database;
use crate::process;

/// What to measure.
#[derive(Debug)]
pub struct Setup {
    pub events: u32,
    pub max_in_flight: u32,
    pub batch_max: u32,
    pub batch_size: std::num::NonZeroU32,
    pub postgres: Option<String>,
    pub writers: u32,
    /// Who writes the journal (`wal` on PostgreSQL only).
    pub capture: plant_monitor::config::CaptureMode,
}

/// Runs the measurement and prints it; returns the events per second.
pub async fn run(setup: Setup) -> anyhow::Result<f64> {
    sqlx::any::install_default_drivers();
    let received = Arc::new(AtomicU64::new(0));
    let receiver = start_receiver(received.clone()).await?;
    let dir = tempfile::tempdir()?;
    let database = Database::open(setup.postgres.as_deref(), dir.path(), "bench.db").await?;

    // Without the example plugins every event would go to every sink, and the count of deliveries the
    // run waits for would be reached half-way.
    anyhow::ensure!(
        super::dist().join("fuel-router.wasm").exists(),
        "the example plugins are not built: run plugins/build first"
    );
    let mut config = config(
        database.url(),
        dir.path(),
        receiver,
        setup.max_in_flight,
        setup.batch_max,
        setup.batch_size,
    )?;
    config.capture.mode = setup.capture;
    let service = Service::start(&config).await?;
    let pool = AnyPoolOptions::new()
        .max_connections(setup.writers.max(1))
        .connect(database.url())
        .await?;

    let insert = insert("power_plants");
    // The clock starts after a write in one transaction, and before concurrent writers begin.
    if setup.writers == 0 {
        write_one_transaction(&pool, &insert, setup.events).await?;
    }
    let (started, cpu_before) = (Instant::now(), process::cpu()?);
    if setup.writers > 0 {
        write_single_rows(&pool, &insert, setup.events, setup.writers).await?;
    }
    let expected = u64::from(setup.events) + u64::from(setup.events).div_ceil(10);
    loop {
        // The journal is asked only once every delivery has arrived: a count of its unprocessed
        // entries every 5 ms took 1.2 s of PostgreSQL's time in a run of 4.6 s, from the service measured.
        if received.load(Ordering::Relaxed) >= expected {
            let unprocessed: i64 =
                sqlx::query_scalar("SELECT count(*) FROM plant_changes WHERE processed_at IS NULL")
                    .fetch_one(&pool)
                    .await?;
            if unprocessed == 0 {
                break;
            }
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not done after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let cpu = process::cpu()?.saturating_sub(cpu_before);
    let deliveries = received.load(Ordering::Relaxed);
    println!(
        "{} events ({deliveries} deliveries) {} → plugins → HTTP on {}, batch_size {}, max_in_flight {}, \
         batch_max {}: {:.2} s, {:.0} events/s, {:.0} deliveries/s, CPU {:.2} s ({:.0} µs per event)",
        setup.events,
        match setup.writers {
            0 => "in one transaction".to_owned(),
            n => format!("committed one row at a time by {n} writers"),
        },
        database.name(),
        setup.batch_size,
        setup.max_in_flight,
        setup.batch_max,
        elapsed.as_secs_f64(),
        f64::from(setup.events) / elapsed.as_secs_f64(),
        deliveries as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / f64::from(setup.events),
    );
    service.shutdown().await?;
    pool.close().await;
    // Dropping the database (a PostgreSQL one is dropped from the server) comes last.
    drop(database);
    Ok(f64::from(setup.events) / elapsed.as_secs_f64())
}

/// The service as this benchmark runs it: the example plugins and the sinks `green`, `grid` and
/// `alerts` on `receiver`, its files in `dir`.
pub fn config(
    url: &str,
    dir: &std::path::Path,
    receiver: std::net::SocketAddr,
    max_in_flight: u32,
    batch_max: u32,
    batch_size: std::num::NonZeroU32,
) -> anyhow::Result<Config> {
    let mut config = Config::default();
    config.database.url = url.parse().map_err(anyhow::Error::msg)?;
    config.server.listen = "127.0.0.1:0".parse()?;
    config.plugins.dir = super::dist();
    config.plugins.cache_dir = dir.join("cache");
    config.feed.batch_size = batch_size;
    // The figure is about changes; a snapshot's events would be extra work of another kind.
    config.feed.snapshot = plant_monitor::config::SnapshotMode::Never;
    for name in ["green", "grid", "alerts"] {
        config.sinks.insert(
            name.into(),
            serde_json::from_value(serde_json::json!({
                "url": format!("http://{receiver}/{name}"),
                "max_in_flight": max_in_flight,
                "batch_max": batch_max,
            }))?,
        );
    }
    Ok(config)
}

pub async fn start_receiver(received: Arc<AtomicU64>) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let app = Router::new().fallback(move |body: axum::body::Bytes| {
            let received = received.clone();
            async move {
                // A batch is a JSON array of events; count the events, not the requests.
                let events = match body.first() {
                    Some(b'[') => serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(&body)
                        .map_or(1, |events| events.len() as u64),
                    _ => 1,
                };
                received.fetch_add(events, Ordering::Relaxed);
                StatusCode::NO_CONTENT
            }
        });
        axum::serve(listener, app).await
    });
    Ok(address)
}
