//! Commit → receipt: plants written by raw SQL at a fixed rate (or all in one transaction), each
//! stamped when its transaction committed, and received by an HTTP receiver that stamps its arrival;
//! consumed either by the service as the end-to-end benchmark runs it (the three example plugins,
//! sinks green, grid and alerts) or by the naive poller of [`crate::baseline`]. The first arrival of a
//! plant's event counts (an alert goes to two sinks). For the service the latency is also split where
//! the journal says the feed recorded the change, to show which half it goes in.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use plant_monitor::config::CaptureMode;
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
    /// The service, its journal written in the given capture mode, each sink sending up to
    /// `max_in_flight` requests at once (one event each).
    PlantMonitor {
        capture: CaptureMode,
        max_in_flight: u32,
    },
    NaivePoller,
}

/// Rows are committed in ticks: a commit per row would measure the database's fsync rate instead of
/// the path to the receiver.
pub const TICK: Duration = Duration::from_millis(5);

/// The regions the plants are spread over.
const REGIONS: u32 = 4;

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
    /// The service's latency in two: commit → the feed's record of the change, and that record → receipt.
    pub stages: Option<Stages>,
    pub usage: Usage,
}

/// Commit → receipt split at the feed's record of the change (the journal's `processed_at`): the wait
/// for the feed, its read and the plugins before it; the outbox's commit, the sink's read and the POST
/// after it. Times of the database's clock and this process's, on one machine, to the millisecond.
#[derive(Debug, Clone, Copy)]
pub struct Stages {
    pub to_feed: Percentiles,
    pub to_receipt: Percentiles,
}

/// `bench paced`: one fixed-rate run through the service, printed.
pub async fn run(
    rate: u32,
    seconds: Duration,
    admin: Option<&str>,
    capture: CaptureMode,
    max_in_flight: u32,
) -> anyhow::Result<()> {
    let workload = Workload::Rate {
        per_second: rate,
        seconds,
    };
    let consumer = Consumer::PlantMonitor {
        capture,
        max_in_flight,
    };
    let outcome = measure(admin, workload, consumer).await?;
    println!(
        "{rate} rows/s for {seconds:?}: {:.0} events/s, {} never arrived, {:.1} CPU s, {} MiB peak",
        outcome.per_second,
        outcome.lost,
        outcome.usage.cpu.as_secs_f64(),
        outcome.usage.peak_rss_kib / 1024,
    );
    let mut halves = vec![("commit → receipt", outcome.latency)];
    if let Some(stages) = outcome.stages {
        halves.push(("commit → the feed's record", stages.to_feed));
        halves.push(("the feed's record → receipt", stages.to_receipt));
    }
    for (what, latency) in halves {
        let figures: Vec<String> = (latency.labelled().iter())
            .map(|(label, time)| format!("{label} {:.1} ms", time.as_secs_f64() * 1000.0))
            .collect();
        println!("{what}: {}", figures.join(", "));
    }
    Ok(())
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
        Consumer::PlantMonitor {
            capture,
            max_in_flight,
        } => {
            let mut config = crate::e2e::config(
                database.url(),
                dir.path(),
                receiver,
                max_in_flight,
                1,
                std::num::NonZeroU32::new(500).expect("500 is not zero"),
            )?;
            config.capture.mode = capture;
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
    warm_up(&pool, &recorder).await?;
    let clock = (Instant::now(), SystemTime::now());
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
    let fed = match service {
        Some(service) => {
            service.shutdown().await?;
            Some(fed(&pool, admin.is_some()).await?)
        }
        None => None,
    };
    pool.close().await;
    drop(database);

    let mut first = HashMap::new();
    for received in recorder.received()? {
        first.entry(received.plant_id).or_insert(received.at);
    }
    let stages = fed.and_then(|fed| stages(&fed, &first, clock));
    let latencies = committed
        .iter()
        .filter_map(|(id, at)| first.get(id).map(|arrived| arrived.duration_since(*at)))
        .collect::<Vec<_>>();
    let last = first.values().max().copied().unwrap_or(started);
    Ok(Outcome {
        per_second: first.len() as f64 / last.duration_since(started).as_secs_f64(),
        lost: committed.len().saturating_sub(first.len()) as u64,
        latency: Percentiles::of(latencies).ok_or_else(|| anyhow::anyhow!("nothing arrived"))?,
        stages,
        usage,
    })
}

/// Writes a plant in each region the run writes to and waits for their events, then forgets them: the
/// clock starts with the consumer in its steady state, its regions led (a new region waits for the
/// service's next discovery, up to `feed.poll_interval`), plugins instantiated, connections open.
async fn warm_up(pool: &sqlx::AnyPool, recorder: &Recorder) -> anyhow::Result<()> {
    for region in 0..REGIONS {
        sqlx::query(
            "INSERT INTO power_plants (id, name, region, fuel, capacity_mw, output_mw) \
             VALUES ($1, $1, $2, 'wind', 100, 80)",
        )
        .bind(format!("warm-up-{region}"))
        .bind(format!("region-{region}"))
        .execute(pool)
        .await?;
    }
    wait_for(recorder, REGIONS as usize).await?;
    recorder.clear()
}

/// Each plant's creation as journaled: committed and processed, in milliseconds since the Unix epoch.
async fn fed(pool: &sqlx::AnyPool, postgres: bool) -> anyhow::Result<HashMap<String, (i64, i64)>> {
    // A timestamp column in milliseconds: SQLite stores its text, PostgreSQL a timestamptz.
    let millis = |column: &str| {
        if postgres {
            format!("(extract(epoch FROM {column}) * 1000)::bigint")
        } else {
            format!("CAST(round((julianday({column}) - 2440587.5) * 86400000) AS INTEGER)")
        }
    };
    let sql = format!(
        "SELECT plant_id, {}, {} FROM plant_changes \
         WHERE kind = 'created' AND processed_at IS NOT NULL",
        millis("committed_at"),
        millis("processed_at")
    );
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(plant, committed, processed)| (plant, (committed, processed)))
        .collect())
}

/// The two halves of each received plant's latency; `clock` pairs this process's monotonic clock with
/// the wall clock the database stamps by.
fn stages(
    fed: &HashMap<String, (i64, i64)>,
    first: &HashMap<String, Instant>,
    clock: (Instant, SystemTime),
) -> Option<Stages> {
    let millis = |at: Instant| -> i64 {
        let wall = clock.1 + at.duration_since(clock.0);
        wall.duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as i64)
    };
    let span = |from: i64, to: i64| Duration::from_millis(to.saturating_sub(from).max(0) as u64);
    let (to_feed, to_receipt) = first
        .iter()
        .filter_map(|(plant, arrived)| {
            let (committed, processed) = fed.get(plant)?;
            Some((
                span(*committed, *processed),
                span(*processed, millis(*arrived)),
            ))
        })
        .unzip();
    Some(Stages {
        to_feed: Percentiles::of(to_feed)?,
        to_receipt: Percentiles::of(to_receipt)?,
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
                        .bind(format!("region-{}", i % REGIONS))
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
