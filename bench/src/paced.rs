//! Commit → receipt: plants written by raw SQL at a fixed rate (or all in one transaction), each
//! stamped when its transaction committed, and received by an HTTP receiver that stamps its arrival;
//! consumed either by the service as the end-to-end benchmark runs it (the three example plugins,
//! sinks green, grid and alerts) or by the naive poller of [`crate::baseline`]. The first arrival of a
//! plant's event counts (an alert goes to two sinks).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use plant_monitor::service::Service;
use tokio::sync::watch;

use crate::database::Database;
use crate::latency::Percentiles;
use crate::process::{Usage, usage_of};
use crate::recorder::Recorder;

/// How the rows are written.
#[derive(Debug, Clone, Copy)]
pub enum Workload {
    /// `per_second` rows for `seconds`, committed every [`TICK`] in one transaction each.
    Rate { per_second: u32, seconds: Duration },
    /// `rows` rows in one transaction; the clock starts at its commit.
    Bulk { rows: u32 },
}

/// Who turns the rows into HTTP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    PlantMonitor,
    NaivePoller,
}

/// Rows are committed in ticks: a commit per row would measure the database's fsync rate instead of
/// the path to the receiver.
pub const TICK: Duration = Duration::from_millis(5);

/// The naive poller's interval, as the notes describe it.
pub const POLL: Duration = Duration::from_secs(1);

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Events received per second, from the first commit to the last arrival.
    pub per_second: f64,
    /// Plants written whose event never arrived.
    pub lost: u64,
    pub latency: Percentiles,
    pub usage: Usage,
}

pub async fn measure(
    admin: Option<&str>,
    workload: Workload,
    consumer: Consumer,
) -> anyhow::Result<Outcome> {
    let recorder = Recorder::default();
    let receiver = recorder.start().await?;
    let dir = tempfile::tempdir()?;
    let database = Database::open(admin, dir.path(), "paced.db").await?;
    let (stop, stopping) = watch::channel(false);
    let (service, poller) = match consumer {
        Consumer::PlantMonitor => {
            let config = crate::e2e::config(
                database.url(),
                dir.path(),
                receiver,
                1,
                1,
                std::num::NonZeroU32::new(500).expect("500 is not zero"),
            )?;
            (Some(Service::start(&config).await?), None)
        }
        Consumer::NaivePoller => {
            database.migrate().await?;
            let poller = crate::baseline::run(
                database.writers(1).await?,
                admin.is_some(),
                format!("http://{receiver}/naive"),
                POLL,
                stopping,
            );
            (None, Some(tokio::spawn(poller)))
        }
    };
    let pool = database.writers(1).await?;
    let ((started, committed), usage) = usage_of(async {
        let written = write(&pool, workload).await?;
        wait_for(&recorder, written.1.len()).await?;
        anyhow::Ok(written)
    })
    .await?;
    let _ = stop.send(true);
    if let Some(poller) = poller {
        poller.await??;
    }
    if let Some(service) = service {
        service.shutdown().await?;
    }
    pool.close().await;
    drop(database);

    let mut first = HashMap::new();
    for received in recorder.received()? {
        first.entry(received.plant_id).or_insert(received.at);
    }
    let latencies = committed
        .iter()
        .filter_map(|(id, at)| first.get(id).map(|arrived| arrived.duration_since(*at)))
        .collect::<Vec<_>>();
    let last = first.values().max().copied().unwrap_or(started);
    Ok(Outcome {
        per_second: first.len() as f64 / last.duration_since(started).as_secs_f64(),
        lost: committed.len().saturating_sub(first.len()) as u64,
        latency: Percentiles::of(latencies).ok_or_else(|| anyhow::anyhow!("nothing arrived"))?,
        usage,
    })
}

/// Rows per INSERT statement: a tick's rows go in one statement, as a writer batching its rows would
/// send them, so that the writer keeps the offered rate on PostgreSQL too (a statement per row took
/// it to half of 1,000 rows/s there while the service ran beside it); a bulk transaction is a
/// statement per chunk, within the parameter limits of both backends.
const ROWS_PER_STATEMENT: usize = 500;

/// Writes the workload; returns when the clock started and each plant with its commit time.
async fn write(
    pool: &sqlx::AnyPool,
    workload: Workload,
) -> anyhow::Result<(Instant, HashMap<String, Instant>)> {
    let fuels = ["hydro", "wind", "gas", "coal", "solar", "nuclear"];
    let mut committed = HashMap::new();
    let mut next = 0u32;
    let mut transaction = |rows: u32| {
        let ids: Vec<(u32, String)> = (next..next + rows).map(|i| (i, format!("p{i}"))).collect();
        next += rows;
        async move {
            let mut tx = pool.begin().await?;
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let values = (0..chunk.len())
                    .map(|row| {
                        let [a, b, c, d, e] = std::array::from_fn(|k| row * 5 + k + 1);
                        format!("(${a}, ${b}, ${c}, ${d}, 100, ${e})")
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let insert = format!(
                    "INSERT INTO power_plants (id, name, region, fuel, capacity_mw, output_mw) \
                     VALUES {values}"
                );
                let mut query = sqlx::query(&insert);
                for (i, id) in chunk {
                    query = query
                        .bind(id)
                        .bind(format!("plant {i}"))
                        .bind(format!("region-{}", i % 4))
                        .bind(fuels[*i as usize % fuels.len()])
                        // One plant in ten reports more than its capacity: an alert for two sinks.
                        .bind(if i.is_multiple_of(10) { 150.0 } else { 80.0 });
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            anyhow::Ok((ids, Instant::now()))
        }
    };
    let started = match workload {
        Workload::Bulk { rows } => {
            let (ids, at) = transaction(rows).await?;
            committed.extend(ids.into_iter().map(|(_, id)| (id, at)));
            at
        }
        Workload::Rate {
            per_second,
            seconds,
        } => {
            let started = Instant::now();
            let ticks = (seconds.as_secs_f64() / TICK.as_secs_f64()) as u32;
            let per_tick = f64::from(per_second) * TICK.as_secs_f64();
            for tick in 0..ticks {
                // Whole rows per tick, carrying the remainder, so the rate is exact over the run.
                let due =
                    (per_tick * f64::from(tick + 1)) as u32 - (per_tick * f64::from(tick)) as u32;
                if due > 0 {
                    let (ids, at) = transaction(due).await?;
                    committed.extend(ids.into_iter().map(|(_, id)| (id, at)));
                }
                tokio::time::sleep_until((started + TICK * (tick + 1)).into()).await;
            }
            started
        }
    };
    Ok((started, committed))
}

/// Waits until `count` plants' events have arrived, or nothing more has for [`STALLED`]: a delivery
/// that ends as a dead letter never arrives, and the run reports it rather than waiting forever.
async fn wait_for(recorder: &Recorder, count: usize) -> anyhow::Result<()> {
    let (mut seen, mut progress) = (0, Instant::now());
    loop {
        let plants = recorder.plants()?;
        if plants >= count || progress.elapsed() > STALLED {
            return Ok(());
        }
        if plants > seen {
            (seen, progress) = (plants, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How long without a new arrival ends the wait.
const STALLED: Duration = Duration::from_secs(30);
