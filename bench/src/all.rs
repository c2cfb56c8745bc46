//! `bench all`: every figure of issue 15 and its ceiling, measured in one run on SQLite and (given an
//! admin URL) PostgreSQL, printed as one markdown table for BENCHMARKS.md, headed by the date and the
//! commit. `--quick` shrinks every phase so the whole run is a smoke test (CI runs it on the debug
//! build, without timing assertions); its figures are not for the record.

use std::path::PathBuf;
use std::time::Duration;

use plant_monitor::config::CaptureMode;

use crate::capture::{self, Scenario};
use crate::failover::Lease;
use crate::http_ceiling::{self, Posts};
use crate::paced::{self, Consumer, Workload};
use crate::report::{Ceiling, Figure, Table, grouped};
use crate::{crud, e2e, failover, leader, misses, plugin_calls, process, swap};

/// What `bench all` was asked for.
#[derive(Debug)]
pub struct Options {
    pub quick: bool,
    pub postgres: Option<String>,
    pub markdown: Option<PathBuf>,
}

/// How much each phase measures.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    capture: capture::Sizes,
    events: u32,
    rate_seconds: Duration,
    http_seconds: Duration,
    plugin_calls: u32,
    swaps: u32,
    failovers: u32,
    crud_seconds: Duration,
    crud_plants: u32,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                capture: capture::Sizes {
                    seconds: Duration::from_millis(500),
                    bulk_rows: 2_000,
                },
                events: 2_000,
                rate_seconds: Duration::from_secs(1),
                http_seconds: Duration::from_millis(500),
                plugin_calls: 5_000,
                swaps: 2,
                failovers: 1,
                crud_seconds: Duration::from_millis(500),
                crud_plants: 200,
            }
        } else {
            Sizes {
                capture: capture::Sizes {
                    seconds: Duration::from_secs(6),
                    bulk_rows: 20_000,
                },
                events: 20_000,
                rate_seconds: Duration::from_secs(5),
                http_seconds: Duration::from_secs(3),
                plugin_calls: 100_000,
                swaps: 5,
                failovers: 3,
                crud_seconds: Duration::from_secs(3),
                crud_plants: 2_000,
            }
        }
    }
}

/// The fixed write rates the end-to-end latency is measured at.
const RATES: [u32; 2] = [1_000, 5_000];

/// The sinks' `batch_max` of the full-speed end-to-end runs.
const E2E_BATCH_MAX: [u32; 2] = [1, 100];

/// The concurrent writers of the end-to-end run that commits one row at a time.
const E2E_WRITERS: u32 = 8;

/// The concurrent API clients CRUD is measured with, and the HTTP ceiling beside it.
const CRUD_CONNECTIONS: u32 = 16;

const HOST: &str = "host";

pub async fn run(options: Options) -> anyhow::Result<()> {
    // From a clean clone the example plugins are not built yet; the tests' helper builds them once.
    plant_monitor_tests::component("fuel-router");
    let sizes = Sizes::new(options.quick);
    let mut table = Table::default();

    let http = [
        http_ceiling::measure(1, sizes.http_seconds).await?,
        http_ceiling::measure(8, sizes.http_seconds).await?,
        http_ceiling::measure(CRUD_CONNECTIONS, sizes.http_seconds).await?,
    ];
    for posts in &http {
        table.measured(
            HOST,
            format!(
                "HTTP POSTs, sink's client → minimal receiver, {} in flight",
                posts.in_flight
            ),
            Figure::PerSecond(posts.per_second, "requests"),
            Ceiling::None("the delivery ceiling".into()),
        );
    }
    plugins(&mut table, sizes).await?;

    for admin in [None]
        .into_iter()
        .chain(options.postgres.as_deref().map(Some))
    {
        backend(&mut table, admin, sizes, &http[0]).await?;
        api(&mut table, admin, sizes, &http[2]).await?;
    }

    let markdown = table.markdown(&heading(&options)?);
    println!("\n{markdown}");
    if let Some(file) = &options.markdown {
        std::fs::write(file, &markdown)?;
    }
    let unmeasured = table.unmeasured();
    anyhow::ensure!(
        unmeasured.is_empty(),
        "figures without a value: {unmeasured:?}"
    );
    Ok(())
}

/// Plugin call costs and hot-swap latency: the same on either backend.
async fn plugins(table: &mut Table, sizes: Sizes) -> anyhow::Result<()> {
    let calls = sizes.plugin_calls;
    let costs = tokio::task::spawn_blocking(move || plugin_calls::run(calls)).await??;
    table.measured(
        HOST,
        "plugin call, fixed part (filter, event without images)",
        Figure::Micros(costs.bare_filter),
        Ceiling::None("goal ≤ 1 µs".into()),
    );
    for (role, cost) in ["filter", "enrich", "route"].iter().zip(costs.full) {
        table.measured(
            HOST,
            format!("plugin call, {role}, full update event"),
            Figure::Micros(cost),
            Ceiling::Measured(Figure::Micros(costs.bare_filter), "the fixed part".into()),
        );
    }
    table.measured(
        HOST,
        "three-plugin chain per event",
        Figure::Micros(costs.chain),
        Ceiling::Measured(
            Figure::Micros(costs.full.iter().sum()),
            "the three calls alone".into(),
        ),
    );
    let original = std::fs::read(super::dist().join(format!("{}.wasm", swap::PLUGIN)))?;
    let swaps = swap::in_process(&original, sizes.swaps).await?;
    table.measured(
        HOST,
        "hot swap, never compiled: landed → in force (median)",
        Figure::Time(swaps.never_compiled),
        Ceiling::None("goal ≤ 150 ms".into()),
    );
    table.measured(
        HOST,
        "hot swap, cached: landed → in force (median)",
        Figure::Time(swaps.cached),
        Ceiling::None("goal ≤ 5 ms".into()),
    );
    Ok(())
}

/// Every figure that depends on the database, on one backend.
async fn backend(
    table: &mut Table,
    admin: Option<&str>,
    sizes: Sizes,
    http: &Posts,
) -> anyhow::Result<()> {
    let name = backend_name(admin);

    let rates = capture::measure(admin, sizes.capture).await?;
    let (mut raw_insert, mut single_rows) = (f64::NAN, f64::NAN);
    for rates in &rates {
        match rates.scenario {
            Scenario::OneTransaction => raw_insert = rates.captured,
            Scenario::SingleRow { writers } if writers == E2E_WRITERS => {
                single_rows = rates.captured;
            }
            _ => {}
        }
    }
    for mode in 0..capture::Rates::MODES {
        for rates in &rates {
            let Some((which, on, off)) = rates.modes()[mode] else {
                continue;
            };
            let unit = rates.scenario.unit();
            table.measured(
                name,
                format!(
                    "writers into power_plants, {which}: {}",
                    rates.scenario.describe(sizes.capture)
                ),
                Figure::PerSecond(on, unit),
                Ceiling::Measured(Figure::PerSecond(off, unit), "capture off".into()),
            );
        }
    }

    // One event per request, as the sinks are configured by default, and batches of up to 100 (the
    // issue's two columns): the first is bound by each sink's one request at a time, the second by
    // the feed.
    let mut full_speed = f64::NAN;
    for batch_max in E2E_BATCH_MAX {
        let events = end_to_end(
            table,
            admin,
            sizes.events,
            batch_max,
            0,
            format!(
                "end to end, {} rows in one transaction → 3 plugins → HTTP, batch_max {batch_max}",
                grouped(f64::from(sizes.events))
            ),
            Ceiling::Measured(
                Figure::PerSecond(raw_insert, "rows"),
                "raw insert rate, the one-transaction write above".into(),
            ),
        )
        .await?;
        if batch_max == 1 {
            full_speed = events;
        }
    }

    // The first scenario: the writers commit one row at a time while the service runs, and
    // the clock stops at the last arrival, so this is the writers' pace or the service's, whichever is
    // slower; the ceiling is the same writers' commit rate measured above.
    end_to_end(
        table,
        admin,
        sizes.events,
        1,
        E2E_WRITERS,
        format!(
            "end to end, {} single-row commits from {E2E_WRITERS} writers → 3 plugins → HTTP",
            grouped(f64::from(sizes.events))
        ),
        Ceiling::Measured(
            Figure::PerSecond(single_rows, "commits"),
            format!("{E2E_WRITERS} writers' single-row commits with capture on, above"),
        ),
    )
    .await?;

    let mut ours_paced = Vec::new();
    for rate in RATES {
        let outcome = paced::measure(
            admin,
            Workload::Rate {
                per_second: rate,
                seconds: sizes.rate_seconds,
            },
            Consumer::PlantMonitor {
                capture: CaptureMode::Trigger,
                max_in_flight: 1,
            },
        )
        .await?;
        let what = format!(
            "end to end at {} rows/s → 3 plugins → HTTP",
            grouped(f64::from(rate))
        );
        table.measured(
            name,
            format!("{what}: throughput"),
            Figure::PerSecond(outcome.per_second, "events"),
            Ceiling::Measured(Figure::PerSecond(f64::from(rate), "rows"), "offered".into()),
        );
        for ((label, latency), (_, round_trip)) in outcome
            .latency
            .labelled()
            .into_iter()
            .zip(http.round_trip.labelled())
        {
            table.measured(
                name,
                format!("{what}: commit → receipt {label}"),
                Figure::Time(latency),
                Ceiling::Measured(
                    Figure::Time(round_trip),
                    format!("one POST's round trip, {label}"),
                ),
            );
        }
        if let Some(stages) = outcome.stages {
            for (half, latency) in [
                ("commit → the feed's record", stages.to_feed),
                ("the feed's record → receipt", stages.to_receipt),
            ] {
                for (label, time) in [("p50", latency.p50), ("p99", latency.p99)] {
                    table.measured(
                        name,
                        format!("{what}: {half} {label}"),
                        Figure::Time(time),
                        Ceiling::None(
                            "where commit → receipt goes (journal's processed_at)".into(),
                        ),
                    );
                }
            }
        }
        table.measured(
            name,
            format!("{what}: events that never arrived"),
            Figure::Count(outcome.lost),
            Ceiling::None("must be 0".into()),
        );
        usage_rows(table, name, &what, outcome.usage);
        ours_paced.push(outcome);
    }

    baseline(table, admin, sizes, full_speed, ours_paced.first().copied()).await?;

    match (admin, failover::binary()) {
        (None, _) => table.not_measured(
            name,
            "failover: signal → lease taken, → first event",
            "PostgreSQL only: SQLite allows one process",
        ),
        (Some(_), Err(missing)) => table.not_measured(
            name,
            "failover: signal → lease taken, → first event",
            format!("skipped: {missing}"),
        ),
        (Some(admin), Ok(_)) => {
            for lease in [Lease::Region, Lease::Capture] {
                for (signal, runs) in [("TERM", sizes.failovers), ("KILL", sizes.failovers)] {
                    let medians = failover::run(failover::Setup {
                        runs,
                        signal: signal.into(),
                        lease_ttl: "2s".into(),
                        postgres: admin.into(),
                        lease,
                    })
                    .await?;
                    let whose = match lease {
                        Lease::Region => "failover",
                        Lease::Capture => "failover of the wal capture leader",
                    };
                    table.measured(
                        name,
                        format!("{whose}, kill -{signal}, lease_ttl 2s: lease taken (median)"),
                        Figure::Time(medians.lease),
                        Ceiling::None(format!("{runs} runs")),
                    );
                    table.measured(
                        name,
                        format!(
                            "{whose}, kill -{signal}, lease_ttl 2s: {} (median)",
                            lease.first_work()
                        ),
                        Figure::Time(medians.first_work),
                        Ceiling::None(format!("{runs} runs")),
                    );
                }
            }
            leader_cost(table, name, admin, sizes).await?;
        }
    }
    Ok(())
}

/// What the capture leader of `wal` capture costs, in a process of its own.
async fn leader_cost(
    table: &mut Table,
    name: &'static str,
    admin: &str,
    sizes: Sizes,
) -> anyhow::Result<()> {
    let cost = leader::run(sizes.events, admin).await?;
    for phase in &cost.phases {
        table.measured(
            name,
            format!("wal capture leader alone, {}: journaled", phase.what),
            Figure::PerSecond(phase.per_second, "changes"),
            Ceiling::None("from the first write to the last journaled".into()),
        );
        table.measured(
            name,
            format!(
                "wal capture leader alone, {}: its CPU per change",
                phase.what
            ),
            Figure::Micros(leader::per_change(phase.leader_cpu, phase.changes)),
            Ceiling::Measured(
                Figure::Micros(leader::per_change(phase.decoding_cpu, phase.changes)),
                "PostgreSQL's decoding (walsender) per change".into(),
            ),
        );
    }
    table.measured(
        name,
        "wal capture leader alone: peak RSS",
        Figure::Mib(cost.peak_rss_kib / 1024),
        Ceiling::None("the whole process".into()),
    );
    Ok(())
}

/// CRUD through the API from [`CRUD_CONNECTIONS`] clients, each operation against the same number of
/// clients POSTing to a minimal receiver: what the HTTP stack alone allows.
async fn api(
    table: &mut Table,
    admin: Option<&str>,
    sizes: Sizes,
    http: &Posts,
) -> anyhow::Result<()> {
    let name = backend_name(admin);
    let figures = crud::measure(&crud::Setup {
        connections: CRUD_CONNECTIONS,
        duration: sizes.crud_seconds,
        plants: sizes.crud_plants,
        postgres: admin.map(str::to_owned),
    })
    .await?;
    let ceiling = format!("minimal receiver, {} in flight", http.in_flight);
    for figure in &figures {
        let what = format!(
            "API {}, {CRUD_CONNECTIONS} connections",
            figure.operation.name()
        );
        table.measured(
            name,
            format!("{what}: throughput"),
            Figure::PerSecond(figure.per_second, "requests"),
            Ceiling::Measured(
                Figure::PerSecond(http.per_second, "requests"),
                ceiling.clone(),
            ),
        );
        for (label, latency, round_trip) in [
            ("p50", figure.p50, http.round_trip.p50),
            ("p99", figure.p99, http.round_trip.p99),
        ] {
            table.measured(
                name,
                format!("{what}: {label}"),
                Figure::Time(latency),
                Ceiling::Measured(Figure::Time(round_trip), format!("{ceiling}, {label}")),
            );
        }
    }
    table.measured(
        name,
        format!("API, {CRUD_CONNECTIONS} connections: requests not answered with success"),
        Figure::Count(figures.iter().map(|figure| figure.errors).sum()),
        Ceiling::None("must be 0".into()),
    );
    Ok(())
}

/// The naive poller on the same workloads, and the changes it misses.
async fn baseline(
    table: &mut Table,
    admin: Option<&str>,
    sizes: Sizes,
    ours_full_speed: f64,
    ours_paced: Option<paced::Outcome>,
) -> anyhow::Result<()> {
    let name = backend_name(admin);
    let bulk = paced::measure(
        admin,
        Workload::Bulk { rows: sizes.events },
        Consumer::NaivePoller,
    )
    .await?;
    table.measured(
        name,
        format!(
            "naive poller (1 s, one POST per row), {} rows in one transaction: throughput",
            grouped(f64::from(sizes.events))
        ),
        Figure::PerSecond(bulk.per_second, "events"),
        Ceiling::Measured(
            Figure::PerSecond(ours_full_speed, "events"),
            "plant-monitor, same rows".into(),
        ),
    );
    let paced = paced::measure(
        admin,
        Workload::Rate {
            per_second: RATES[0],
            seconds: sizes.rate_seconds,
        },
        Consumer::NaivePoller,
    )
    .await?;
    if let Some(ours) = ours_paced {
        for ((label, naive), (_, ours)) in paced
            .latency
            .labelled()
            .into_iter()
            .zip(ours.latency.labelled())
            .filter(|((label, _), _)| ["p50", "p99"].contains(label))
        {
            table.measured(
                name,
                format!(
                    "naive poller at {} rows/s: commit → receipt {label}",
                    grouped(f64::from(RATES[0]))
                ),
                Figure::Time(naive),
                Ceiling::Measured(Figure::Time(ours), "plant-monitor, same rate".into()),
            );
        }
    }
    let misses = misses::measure(admin).await?;
    for (what, seen) in [
        ("deletes", misses.deletes),
        (
            "updates of one plant within one poll",
            misses.repeated_updates,
        ),
        (
            "update committed after a younger one was polled",
            misses.out_of_order,
        ),
    ] {
        for (who, got) in [
            ("plant-monitor", seen.plant_monitor),
            ("naive poller", seen.naive),
        ] {
            table.measured(
                name,
                format!("changes received by {who}: {what}"),
                Figure::Count(got),
                Ceiling::Measured(Figure::Count(seen.made), "made".into()),
            );
        }
    }
    Ok(())
}

/// The table's name for the backend `admin` selects.
fn backend_name(admin: Option<&str>) -> &'static str {
    if admin.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

/// One `bench e2e` run on this backend (`writers` 0: the rows in one transaction before the clock
/// starts), recorded as `what`: its throughput against `ceiling`, its CPU seconds and peak RSS.
/// Returns the events per second.
async fn end_to_end(
    table: &mut Table,
    admin: Option<&str>,
    events: u32,
    batch_max: u32,
    writers: u32,
    what: String,
    ceiling: Ceiling,
) -> anyhow::Result<f64> {
    let (per_second, usage) = process::usage_of(e2e::run(e2e::Setup {
        events,
        max_in_flight: 1,
        batch_max,
        batch_size: std::num::NonZeroU32::new(500).expect("500 is not zero"),
        postgres: admin.map(str::to_owned),
        writers,
        capture: CaptureMode::Trigger,
    }))
    .await?;
    let name = backend_name(admin);
    table.measured(
        name,
        format!("{what}: throughput"),
        Figure::PerSecond(per_second, "events"),
        ceiling,
    );
    usage_rows(table, name, &what, usage);
    Ok(per_second)
}

fn usage_rows(table: &mut Table, backend: &'static str, what: &str, usage: process::Usage) {
    table.measured(
        backend,
        format!("{what}: CPU seconds"),
        Figure::Time(usage.cpu),
        Ceiling::None("the bench process: service, receiver and writer".into()),
    );
    table.measured(
        backend,
        format!("{what}: peak RSS"),
        Figure::Mib(usage.peak_rss_kib / 1024),
        Ceiling::None("the same process; not the PostgreSQL server".into()),
    );
}

/// The table's heading: what was run, when, on which commit and build.
fn heading(options: &Options) -> anyhow::Result<String> {
    let output = |program: &str, args: &[&str]| -> anyhow::Result<String> {
        let output = std::process::Command::new(program)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commit = output("git", &["rev-parse", "--short", "HEAD"])?;
    let dirty = !output("git", &["status", "--porcelain"])?.is_empty();
    Ok(format!(
        "### `bench all{}{}` — {}, commit {commit}{}, {} build",
        if options.quick { " --quick" } else { "" },
        if options.postgres.is_some() {
            " --postgres …"
        } else {
            ""
        },
        output("date", &["-u", "+%Y-%m-%d"])?,
        if dirty {
            " with uncommitted changes"
        } else {
            ""
        },
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    ))
}
