//! Hot swaps of a plugin in a live folder. First the swap itself, in process: the time from a new
//! version's file being renamed into the watched folder to the new pipeline snapshot being in force and
//! its first event handled, for a version never compiled before (its bytes made unique by a custom
//! section) and for one in the compiled cache. Then under load: 1,000 plants a second written by raw
//! SQL through a running service and its one sink, with a never-compiled version swapped in half-way;
//! deliveries per 100 ms window before, around and after the swap.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use plant_monitor::config::{Config, PluginsConfig, RoutingConfig};
use plant_monitor::domain::Event;
use plant_monitor::pipeline::{Folder, LivePipeline, Watcher};
use plant_monitor::plugins::Runtime;
use plant_monitor::service::Service;
use sqlx::any::AnyPoolOptions;
use tokio::sync::watch;

pub const PLUGIN: &str = "output-alert-enricher";

pub async fn run(runs: u32) -> anyhow::Result<()> {
    let original = std::fs::read(super::dist().join(format!("{PLUGIN}.wasm")))?;
    in_process(&original, runs).await?;
    under_load(&original).await
}

/// `original` made a new version that no cache holds: a custom section with `nonce` appended.
fn unique(original: &[u8], nonce: u64) -> Vec<u8> {
    use wasm_encoder::{ComponentSection, CustomSection, Encode};
    let mut bytes = original.to_vec();
    let section = CustomSection {
        name: "bench-nonce".into(),
        data: nonce.to_le_bytes().to_vec().into(),
    };
    bytes.push(ComponentSection::id(&section));
    section.encode(&mut bytes);
    bytes
}

/// Writes `bytes` beside the plugin and renames it into place, as deployment tools do.
fn land(dir: &Path, bytes: &[u8]) -> anyhow::Result<Instant> {
    let staging = dir.join(format!("{PLUGIN}.wasm.partial"));
    std::fs::write(&staging, bytes)?;
    let landed = Instant::now();
    std::fs::rename(&staging, dir.join(format!("{PLUGIN}.wasm")))?;
    Ok(landed)
}

/// The medians of file landed → snapshot in force, never compiled and cached.
#[derive(Debug, Clone, Copy)]
pub struct Swaps {
    pub never_compiled: Duration,
    pub cached: Duration,
}

/// The swap alone, in process, `runs` times of each kind; prints them and returns the medians.
pub async fn in_process(original: &[u8], runs: u32) -> anyhow::Result<Swaps> {
    let folder_dir = tempfile::tempdir()?;
    let cache = tempfile::tempdir()?;
    std::fs::write(folder_dir.path().join(format!("{PLUGIN}.wasm")), original)?;
    let config = PluginsConfig {
        dir: folder_dir.path().to_path_buf(),
        cache_dir: cache.path().to_path_buf(),
        ..PluginsConfig::default()
    };
    let mut folder = Folder::new(
        Runtime::new(&config)?,
        &config,
        &RoutingConfig::default(),
        Vec::new(),
    );
    folder.reconcile();
    let live = Arc::new(LivePipeline::from_pointee(folder.pipeline()));
    let (stop, stopping) = watch::channel(false);
    let watcher = tokio::spawn(
        Watcher {
            folder,
            live: live.clone(),
            debounce: config.watch_debounce,
        }
        .run(stopping),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let event: Event = serde_json::from_value(serde_json::json!({
        "seq": 1, "kind": "created", "plant_id": "p", "region": "us-west", "before": null,
        "after": {"id": "p", "name": "P", "region": "us-west", "fuel": "wind", "capacity_mw": 100.0,
                  "output_mw": 150.0, "status": "operational", "latitude": null, "longitude": null,
                  "attributes": {}, "version": 1, "created_at": "2026-12-01T00:00:00.000Z",
                  "updated_at": "2026-12-01T00:00:00.000Z"},
        "changed_fields": [], "committed_at": "2026-12-01T00:00:00.000Z", "labels": {}
    }))?;
    let (mut compiled, mut cached) = (Vec::new(), Vec::new());
    for run in 0..runs {
        for (bytes, into) in [
            (unique(original, u64::from(run) + 1), &mut compiled),
            (original.to_vec(), &mut cached),
        ] {
            let before = live.load_full();
            let landed = land(folder_dir.path(), &bytes)?;
            let live = live.clone();
            let event = event.clone();
            let (in_force, handled) = tokio::task::spawn_blocking(move || {
                while Arc::ptr_eq(&live.load_full(), &before) {
                    std::thread::sleep(Duration::from_micros(100));
                }
                let in_force = landed.elapsed();
                live.load().run(event);
                (in_force, landed.elapsed())
            })
            .await?;
            into.push((in_force, handled));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let _ = stop.send(true);
    watcher.await?;
    let mut medians = Vec::new();
    for (what, mut times) in [
        ("never compiled", compiled),
        ("in the compiled cache", cached),
    ] {
        times.sort();
        let median = times[times.len() / 2];
        let worst = times[times.len() - 1];
        println!(
            "swap of {PLUGIN}, {what}, {runs} runs: file landed → snapshot in force median {:.2} ms \
             (worst {:.2}), → first event handled median {:.2} ms (worst {:.2})",
            ms(median.0),
            ms(worst.0),
            ms(median.1),
            ms(worst.1)
        );
        medians.push(median.0);
    }
    Ok(Swaps {
        never_compiled: medians[0],
        cached: medians[1],
    })
}

async fn under_load(original: &[u8]) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let arrivals = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let receiver = start_receiver(arrivals.clone()).await?;
    let dir = tempfile::tempdir()?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins)?;
    std::fs::write(plugins.join(format!("{PLUGIN}.wasm")), original)?;
    let mut config = Config::default();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    config.database.url = url.parse().map_err(anyhow::Error::msg)?;
    config.server.listen = "127.0.0.1:0".parse()?;
    config.plugins.dir = plugins.clone();
    config.plugins.cache_dir = dir.path().join("cache");
    config.feed.snapshot = plant_monitor::config::SnapshotMode::Never;
    config.sinks.insert(
        "all".into(),
        serde_json::from_value(serde_json::json!({ "url": format!("http://{receiver}/all") }))?,
    );
    let service = Service::start(&config).await?;
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;

    // 10 plants every 10 ms for 6 s; the new version lands at 3 s.
    let started = Instant::now();
    let mut landed = None;
    for tick in 0..600u32 {
        let rows: Vec<String> = (0..10)
            .map(|n| format!("('p{tick}-{n}', 'P', 'us-west', 'wind', 100)"))
            .collect();
        sqlx::query(&format!(
            "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) VALUES {}",
            rows.join(", ")
        ))
        .execute(&pool)
        .await?;
        if tick == 300 {
            landed = Some(land(&plugins, &unique(original, u64::MAX))?);
        }
        let next = started + Duration::from_millis(10 * u64::from(tick + 1));
        tokio::time::sleep_until(next.into()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .len()
        < 6000
    {
        anyhow::ensure!(Instant::now() < deadline, "not every event was delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.shutdown().await?;
    let landed = landed.expect("landed at tick 300");
    let arrivals = arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    // The feed works in batches, so deliveries come in bursts; what a swap could cost shows as a
    // longer gap between deliveries or fewer deliveries in the second it happens.
    let at = |offset: f64| started + Duration::from_secs_f64(offset);
    let per_second: Vec<usize> = (1..6)
        .map(|s| {
            let (from, to) = (at(f64::from(s)), at(f64::from(s + 1)));
            arrivals.iter().filter(|t| **t >= from && **t < to).count()
        })
        .collect();
    let gaps = |from: Instant, to: Instant| {
        let mut times: Vec<&Instant> = arrivals
            .iter()
            .filter(|t| **t >= from && **t < to)
            .collect();
        times.sort();
        times
            .windows(2)
            .map(|pair| pair[1].duration_since(*pair[0]))
            .max()
            .unwrap_or_default()
    };
    let around = (
        landed - Duration::from_millis(500),
        landed + Duration::from_millis(1500),
    );
    println!(
        "under 1,000 events/s, a never-compiled version landed at {:.2} s: deliveries per second \
         from 1 s to 6 s {per_second:?}; longest gap between deliveries from 0.5 s to 2.5 s {:.0} ms, \
         from 0.5 s before the swap to 1.5 s after it {:.0} ms",
        landed.duration_since(started).as_secs_f64(),
        ms(gaps(at(0.5), at(2.5))),
        ms(gaps(around.0, around.1)),
    );
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// An HTTP receiver that notes when each request arrived.
async fn start_receiver(
    arrivals: Arc<Mutex<Vec<Instant>>>,
) -> anyhow::Result<std::net::SocketAddr> {
    let app = Router::new().fallback(move || {
        let arrivals = arrivals.clone();
        async move {
            if let Ok(mut arrivals) = arrivals.lock() {
                arrivals.push(Instant::now());
            }
            StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}
