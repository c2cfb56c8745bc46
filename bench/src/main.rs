//! The benchmark programs behind BENCHMARKS.md. Run them in release mode on an otherwise idle machine.
//! `all` measures every figure with its ceiling in one run and prints the table; the others measure
//! one thing each:
//!
//! ```sh
//! cargo build --release -p plant-monitor -p plant-monitor-bench
//! $CARGO_TARGET_DIR/release/bench all --postgres postgres://root@127.0.0.1:5432/postgres
//! plugins/build
//! cargo run --release -p plant-monitor-bench -- plugins
//! cargo run --release -p plant-monitor-bench -- swap --runs 10
//! PLANT_MONITOR=$CARGO_TARGET_DIR/debug/plant-monitor plugins/build-languages
//! cargo run --release -p plant-monitor-bench -- languages --runs 3
//! cargo run --release -p plant-monitor-bench -- e2e --events 50000
//! cargo run --release -p plant-monitor-bench -- crud --connections 16 --seconds 5
//! cargo run --release -p plant-monitor-bench -- capture --postgres postgres://root@127.0.0.1:5432/postgres
//! cargo run --release -p plant-monitor-bench -- e2e --events 50000 --writers 8 \
//!     --postgres postgres://root@127.0.0.1:5432/postgres
//! cargo build --release -p plant-monitor
//! cargo run --release -p plant-monitor-bench -- failover --signal KILL --lease-ttl 2s --runs 10 \
//!     --postgres postgres://root@127.0.0.1:5432/postgres [--capture]
//! cargo run --release -p plant-monitor-bench -- leader --changes 20000 \
//!     --postgres postgres://root@127.0.0.1:5432/postgres
//! ```

// Printing the figures is this program's job.
#![allow(clippy::print_stdout)]

mod all;
mod baseline;
mod capture;
mod crud;
mod database;
mod drain;
mod e2e;
mod failover;
mod http_ceiling;
mod languages;
mod latency;
mod leader;
mod load_client;
mod misses;
mod paced;
mod plain_table;
mod plugin_calls;
mod process;
mod recorder;
mod report;
mod swap;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "plant-monitor benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every figure and its ceiling in one run, on SQLite and (with --postgres) PostgreSQL: capture
    /// cost, end to end at full speed and at fixed rates, the HTTP and insert ceilings, plugin calls,
    /// hot swaps, failover, and the naive poller beside it all; prints a markdown table.
    All {
        /// Small phases: a smoke test of a minute or two; the figures are not for the record.
        #[arg(long)]
        quick: bool,
        /// Also on PostgreSQL: fresh databases are created on the server this admin URL reaches, and
        /// dropped afterwards (e.g. postgres://root@127.0.0.1:5432/postgres).
        #[arg(long, value_name = "ADMIN_URL")]
        postgres: Option<String>,
        /// Also write the table to this file.
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
    },
    /// Per-call cost of each example plugin's role on a reused instance, and of the 3-plugin chain.
    Plugins {
        /// Calls timed per measurement.
        #[arg(long, default_value_t = 200_000)]
        calls: u32,
    },
    /// The example plugins in every language (plugins/dist and plugins/dist-lang): component size,
    /// uncached compile, cached load, new instance, per-call cost and the chain, against Rust's.
    Languages {
        /// Uncached compiles and cached loads timed per language.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// New instances timed per language.
        #[arg(long, default_value_t = 50)]
        instances: u32,
        /// Calls timed per measurement.
        #[arg(long, default_value_t = 20_000)]
        calls: u32,
    },
    /// Events per second from the journal to an HTTP receiver, through the example plugins, on SQLite.
    E2e {
        /// Journal entries to feed.
        #[arg(long, default_value_t = 50_000)]
        events: u32,
        /// `max_in_flight` of every sink.
        #[arg(long, default_value_t = 1)]
        max_in_flight: u32,
        /// `batch_max` of every sink: events per request.
        #[arg(long, default_value_t = 1)]
        batch_max: u32,
        /// `feed.batch_size`.
        #[arg(long, default_value = "500")]
        batch_size: std::num::NonZeroU32,
        /// Run on PostgreSQL: a fresh database is created on the server this admin URL reaches, and
        /// dropped afterwards (e.g. postgres://root@127.0.0.1:5432/postgres).
        #[arg(long, value_name = "ADMIN_URL")]
        postgres: Option<String>,
        /// Write the plants from this many concurrent writers, one committed row at a time, while the
        /// feed runs; 0 writes them all in one transaction before the clock starts.
        #[arg(long, default_value_t = 0)]
        writers: u32,
        /// With --postgres: the journal written from the write-ahead log (`capture.mode = "wal"`).
        #[arg(long, requires = "postgres")]
        wal: bool,
    },
    /// Commit → receipt at a fixed rate of raw SQL inserts through the example plugins, on SQLite (or
    /// PostgreSQL), split where the feed records each change.
    Paced {
        /// Rows per second, committed every 5 ms.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// Seconds the rate is kept.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Run on PostgreSQL (admin URL; a fresh database is created and dropped).
        #[arg(long, value_name = "ADMIN_URL")]
        postgres: Option<String>,
        /// With --postgres: the journal written from the write-ahead log (`capture.mode = "wal"`).
        #[arg(long, requires = "postgres")]
        wal: bool,
        /// `max_in_flight` of every sink (one event per request).
        #[arg(long, default_value_t = 1)]
        max_in_flight: u32,
    },
    /// What capture costs the writers: their commit rate into `power_plants` against its plain copy
    /// (capture off), single-row from 1 and 8 writers, 10-row transactions and one large transaction,
    /// on SQLite (or PostgreSQL, where `wal` capture is measured too).
    Capture {
        /// Seconds each timed scenario writes, into each table (as `bench all`).
        #[arg(long, default_value_t = 6.0)]
        seconds: f64,
        /// Rows in the one large transaction.
        #[arg(long, default_value_t = 20_000)]
        bulk_rows: u32,
        /// Run on PostgreSQL (admin URL; a fresh database is created and dropped).
        #[arg(long, value_name = "ADMIN_URL")]
        postgres: Option<String>,
    },
    /// Requests per second, p50 and p99 of GET by id, list, POST and PATCH through the HTTP API, with N
    /// concurrent connections, on SQLite (or PostgreSQL).
    Crud {
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 16)]
        connections: u32,
        /// Seconds each operation is driven.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Plants created before the clock starts.
        #[arg(long, default_value_t = 1000)]
        plants: u32,
        /// A run of seconds in all, for smoke tests: overrides the other settings but `postgres`.
        #[arg(long)]
        quick: bool,
        /// Run on PostgreSQL (admin URL; a fresh database is created and dropped).
        #[arg(long, value_name = "ADMIN_URL")]
        postgres: Option<String>,
    },
    /// Draining a backlog of pending deliveries to one sink, with the peak resident memory.
    Drain {
        /// Deliveries queued before the sink is enabled.
        #[arg(long, default_value_t = 100_000)]
        deliveries: u32,
        /// `batch_max` of the sink.
        #[arg(long, default_value_t = 1)]
        batch_max: u32,
        /// `max_in_flight` of the sink.
        #[arg(long, default_value_t = 1)]
        max_in_flight: u32,
        /// Run on PostgreSQL (admin URL; a fresh database is created and dropped).
        #[arg(long, value_name = "ADMIN_URL")]
        postgres: Option<String>,
    },
    /// Hot swaps in the live plugin folder: file landed → new snapshot in force and first event handled
    /// (never compiled, and cached), and deliveries per 100 ms around a swap under 1,000 events/s.
    Swap {
        /// Swaps timed of each kind.
        #[arg(long, default_value_t = 10)]
        runs: u32,
    },
    /// Time from stopping a region's (or the capture) leader to its successor holding the lease and
    /// delivering (or journaling), with two processes of the release binary on one PostgreSQL
    /// database.
    Failover {
        /// Leaders stopped, one per run.
        #[arg(long, default_value_t = 10)]
        runs: u32,
        /// The signal that stops the leader: KILL (a crash) or TERM (a graceful handover).
        #[arg(long, default_value = "KILL")]
        signal: String,
        /// `feed.lease_ttl` of both processes.
        #[arg(long, default_value = "2s")]
        lease_ttl: String,
        /// The admin URL of the PostgreSQL server; a fresh database is created and dropped.
        #[arg(long, value_name = "ADMIN_URL")]
        postgres: String,
        /// Stop the capture leader instead, both processes in `wal` capture.
        #[arg(long)]
        capture: bool,
    },
    /// What the capture leader of `wal` capture costs: a process of the release binary doing nothing
    /// else, while writers commit single rows and then one large transaction.
    Leader {
        /// Changes written in each of the two phases.
        #[arg(long, default_value_t = 20_000)]
        changes: u32,
        /// The admin URL of the PostgreSQL server; a fresh database is created and dropped.
        #[arg(long, value_name = "ADMIN_URL")]
        postgres: String,
    },
}

/// The folder `plugins/build` writes the example components to.
fn dist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist")
}

/// The folder `plugins/build-languages` writes the other languages' components to, one folder each.
fn dist_lang() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist-lang")
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::All {
            quick,
            postgres,
            markdown,
        } => tokio::runtime::Runtime::new()?.block_on(all::run(all::Options {
            quick,
            postgres,
            markdown,
        })),
        Command::Plugins { calls } => plugin_calls::run(calls).map(drop),
        Command::Languages {
            runs,
            instances,
            calls,
        } => languages::run(languages::Setup {
            runs,
            instances,
            calls,
        }),
        Command::Swap { runs } => tokio::runtime::Runtime::new()?.block_on(swap::run(runs)),
        Command::E2e {
            events,
            max_in_flight,
            batch_max,
            batch_size,
            postgres,
            writers,
            wal,
        } => tokio::runtime::Runtime::new()?
            .block_on(e2e::run(e2e::Setup {
                events,
                max_in_flight,
                batch_max,
                batch_size,
                postgres,
                writers,
                capture: capture_mode(wal),
            }))
            .map(drop),
        Command::Paced {
            rate,
            seconds,
            postgres,
            wal,
            max_in_flight,
        } => tokio::runtime::Runtime::new()?.block_on(paced::run(
            rate,
            std::time::Duration::try_from_secs_f64(seconds)?,
            postgres.as_deref(),
            capture_mode(wal),
            max_in_flight,
        )),
        Command::Capture {
            seconds,
            bulk_rows,
            postgres,
        } => tokio::runtime::Runtime::new()?.block_on(capture::run(
            postgres.as_deref(),
            capture::Sizes {
                seconds: std::time::Duration::try_from_secs_f64(seconds)?,
                bulk_rows,
            },
        )),
        Command::Crud {
            connections,
            seconds,
            plants,
            quick,
            postgres,
        } => {
            let setup = if quick {
                crud::Setup::quick(postgres)
            } else {
                crud::Setup {
                    connections,
                    duration: std::time::Duration::try_from_secs_f64(seconds)?,
                    plants,
                    postgres,
                }
            };
            tokio::runtime::Runtime::new()?.block_on(crud::run(setup))
        }
        Command::Drain {
            deliveries,
            batch_max,
            max_in_flight,
            postgres,
        } => tokio::runtime::Runtime::new()?.block_on(drain::run(drain::Setup {
            deliveries,
            batch_max,
            max_in_flight,
            postgres,
        })),
        Command::Failover {
            runs,
            signal,
            lease_ttl,
            postgres,
            capture,
        } => tokio::runtime::Runtime::new()?
            .block_on(failover::run(failover::Setup {
                runs,
                signal,
                lease_ttl,
                postgres,
                lease: if capture {
                    failover::Lease::Capture
                } else {
                    failover::Lease::Region
                },
            }))
            .map(drop),
        Command::Leader { changes, postgres } => tokio::runtime::Runtime::new()?
            .block_on(leader::run(changes, &postgres))
            .map(drop),
    }
}

/// The capture mode `--wal` asks for.
fn capture_mode(wal: bool) -> plant_monitor::config::CaptureMode {
    if wal {
        plant_monitor::config::CaptureMode::Wal
    } else {
        plant_monitor::config::CaptureMode::Trigger
    }
}
