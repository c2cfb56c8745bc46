//! What capture costs the writers: the same writes committed into `power_plants` (journal triggers
//! on) and into its plain copy (capture off, see [`crate::plain_table`]) in one database, in
//! alternating rounds per scenario: single-row commits from 1 and from 8 writers, 10-row transactions
//! from one writer, and one large transaction. The service is not running; the writers are all there
//! is. On PostgreSQL the scenarios run again in `wal` capture, with a capture leader journaling from
//! the slot meanwhile, in this process as the service would run it, against capture off again; and
//! once more with no leader running, so that nothing decodes the log on the same cores: what the
//! writers themselves pay.

use std::time::{Duration, Instant};

use plant_monitor::config::DatabaseConfig;
use plant_monitor_tests::CaptureLeader;
use sqlx::{AnyPool, Connection};

use crate::database::Database;
use crate::plain_table::{self, PLAIN};

/// How long and how much to write.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// How long each timed scenario writes.
    pub seconds: Duration,
    /// Rows in the one large transaction.
    pub bulk_rows: u32,
}

/// A writing scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    SingleRow { writers: u32 },
    TenRowTransactions,
    OneTransaction,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::SingleRow { writers: 1 },
        Scenario::SingleRow { writers: 8 },
        Scenario::TenRowTransactions,
        Scenario::OneTransaction,
    ];

    /// What a rate of this scenario counts.
    pub fn unit(self) -> &'static str {
        match self {
            Scenario::SingleRow { .. } => "commits",
            _ => "rows",
        }
    }

    pub fn describe(self, sizes: Sizes) -> String {
        match self {
            Scenario::SingleRow { writers: 1 } => "single-row commits, 1 writer".into(),
            Scenario::SingleRow { writers } => format!("single-row commits, {writers} writers"),
            Scenario::TenRowTransactions => "10-row transactions, 1 writer".into(),
            Scenario::OneTransaction => format!(
                "one {}-row transaction",
                crate::report::grouped(f64::from(sizes.bulk_rows))
            ),
        }
    }
}

/// Rows per second into each table for one scenario.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub scenario: Scenario,
    pub captured: f64,
    pub plain: f64,
    /// PostgreSQL: into `power_plants` in `wal` capture with its leader running, and into the plain
    /// copy in the same rounds.
    pub wal: Option<(f64, f64)>,
    /// PostgreSQL: the same with no capture leader running, so nothing decodes the log meanwhile:
    /// what the writers themselves pay.
    pub wal_undecoded: Option<(f64, f64)>,
}

impl Rates {
    /// How many capture modes [`Rates::modes`] lists.
    pub const MODES: usize = 3;

    /// Each capture mode measured, as (its name, the rate with it, the rate with capture off in the
    /// same rounds), in the order the tables list them; `None` where the backend has no such mode.
    pub fn modes(&self) -> [Option<(&'static str, f64, f64)>; Rates::MODES] {
        [
            Some(("capture on", self.captured, self.plain)),
            self.wal
                .map(|(on, off)| ("wal capture (its leader running)", on, off)),
            self.wal_undecoded
                .map(|(on, off)| ("wal capture (nothing decoding)", on, off)),
        ]
    }
}

/// How many rounds a timed scenario's writes are split into, each round writing into both tables, in
/// the order A B, B A, A B, B A, …. One pass into each table read a drift of the machine's speed, or a
/// checkpoint that fell into one table's turn, as a cost of capture: one such run put `wal` capture
/// with nothing decoding, which cannot make a commit cheaper, at 1.24 of capture off for one writer
/// and 1.10 for 10-row transactions. Eight rounds (of 6 s per table in `bench all`) rather than four
/// of 3 s: eight SQLite writers wait for the write lock in the busy handler's sleeps of 1 ms and more,
/// and five runs of four rounds of the same build put their ratio anywhere from 0.70 to 0.89. Three
/// runs of eight still spread from 0.73 to 0.86: one run's 8-writer ratio on SQLite is a sample.
const ROUNDS: u32 = 8;

/// Rounds of the one large transaction: A B, then B A. One transaction into each table was one
/// sample of a write of about two seconds, and the same build's ratio moved from 0.62 to 0.79 between
/// runs; three runs of two rounds each measured 0.71, 0.73 and 0.80.
const BULK_ROUNDS: u32 = 2;

const FUELS: [&str; 6] = ["hydro", "wind", "gas", "coal", "solar", "nuclear"];

pub async fn measure(admin: Option<&str>, sizes: Sizes) -> anyhow::Result<Vec<Rates>> {
    let dir = tempfile::tempdir()?;
    let database = Database::open(admin, dir.path(), "capture.db").await?;
    database.migrate().await?;
    let pool = database.writers(8).await?;
    plain_table::create(&pool, admin.is_some()).await?;
    let mut rates = Vec::new();
    for scenario in Scenario::ALL {
        let [captured, plain] =
            commit_rates(&pool, ["power_plants", PLAIN], scenario, sizes).await?;
        rates.push(Rates {
            scenario,
            captured,
            plain,
            wal: None,
            wal_undecoded: None,
        });
    }
    if admin.is_some() {
        let store = plant_monitor::store::connect(&DatabaseConfig {
            url: database.url().parse().map_err(anyhow::Error::msg)?,
            ..DatabaseConfig::default()
        })
        .await?;
        let leader = CaptureLeader::start(store.clone()).await;
        for rates in &mut rates {
            let [wal, plain] =
                commit_rates(&pool, ["power_plants", PLAIN], rates.scenario, sizes).await?;
            rates.wal = Some((wal, plain));
        }
        leader.stop().await?;
        // The slot keeps what these write; the database is dropped with it.
        for rates in &mut rates {
            let [wal, plain] =
                commit_rates(&pool, ["power_plants", PLAIN], rates.scenario, sizes).await?;
            rates.wal_undecoded = Some((wal, plain));
        }
        store.close().await;
    }
    pool.close().await;
    drop(database);
    Ok(rates)
}

/// Measures every scenario and prints each rate against capture off.
pub async fn run(admin: Option<&str>, sizes: Sizes) -> anyhow::Result<()> {
    for rates in measure(admin, sizes).await? {
        let what = rates.scenario.describe(sizes);
        let unit = rates.scenario.unit();
        for (mode, on, off) in rates.modes().into_iter().flatten() {
            println!(
                "{what}, {mode}: {on:.0} {unit}/s, capture off {off:.0} {unit}/s, ratio {:.2}",
                on / off
            );
        }
    }
    Ok(())
}

/// Rows per second `scenario` commits into each of `tables`, written in [`ROUNDS`] alternating
/// rounds ([`BULK_ROUNDS`] of the one large transaction).
async fn commit_rates(
    pool: &AnyPool,
    tables: [&str; 2],
    scenario: Scenario,
    sizes: Sizes,
) -> anyhow::Result<[f64; 2]> {
    let rounds = match scenario {
        Scenario::OneTransaction => BULK_ROUNDS,
        _ => ROUNDS,
    };
    let round = Sizes {
        seconds: sizes.seconds / rounds,
        ..sizes
    };
    let mut written = [(0u64, Duration::ZERO); 2];
    for at in 0..rounds {
        let order = if at % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let started = Instant::now();
            let rows = write(pool, tables[side], scenario, round).await?;
            written[side].0 += rows;
            written[side].1 += started.elapsed();
        }
    }
    Ok(written.map(|(rows, took)| rows as f64 / took.as_secs_f64()))
}

/// Rows `scenario` commits into `table`, for `sizes.seconds` if it is timed. Each writer holds one
/// connection for the round, as a program writing through its own session does (the writers
/// were psycopg2 connections). Taking turns over the pool's eight instead put each commit of one
/// writer on another PostgreSQL backend, or on a SQLite connection whose page cache the last commit
/// had made stale: one writer committed 15-30 % less with capture on or off, and on PostgreSQL its
/// capture looked dearer than it is (0.72-0.79 of capture off against 0.83-0.86).
async fn write(
    pool: &AnyPool,
    table: &str,
    scenario: Scenario,
    sizes: Sizes,
) -> anyhow::Result<u64> {
    let insert = insert(table);
    let started = Instant::now();
    let rows = match scenario {
        Scenario::SingleRow { writers } => {
            let deadline = started + sizes.seconds;
            let mut tasks = tokio::task::JoinSet::new();
            for writer in 0..writers {
                let (pool, insert) = (pool.clone(), insert.clone());
                tasks.spawn(async move {
                    let mut connection = pool.acquire().await?;
                    let mut rows = 0u64;
                    while Instant::now() < deadline {
                        row(&insert, writer * 1_000_000 + rows as u32)
                            .execute(&mut *connection)
                            .await?;
                        rows += 1;
                    }
                    anyhow::Ok(rows)
                });
            }
            let mut rows = 0;
            while let Some(done) = tasks.join_next().await {
                rows += done??;
            }
            rows
        }
        Scenario::TenRowTransactions => {
            let mut connection = pool.acquire().await?;
            let mut rows = 0u64;
            while started.elapsed() < sizes.seconds {
                let mut tx = connection.begin().await?;
                for _ in 0..10 {
                    row(&insert, rows as u32).execute(&mut *tx).await?;
                    rows += 1;
                }
                tx.commit().await?;
            }
            rows
        }
        Scenario::OneTransaction => {
            write_one_transaction(pool, &insert, sizes.bulk_rows).await?;
            u64::from(sizes.bulk_rows)
        }
    };
    Ok(rows)
}

/// The insert of one plant into `table`.
pub fn insert(table: &str) -> String {
    format!(
        "INSERT INTO {table} (name, region, fuel, capacity_mw, output_mw) VALUES ($1, $2, $3, 100, $4)"
    )
}

/// Commits `rows` plants one at a time from `writers` concurrent writers, the `i`th plant by writer
/// `i % writers`. Each writer holds one connection, its own session, as in [`write`].
pub async fn write_single_rows(
    pool: &AnyPool,
    insert: &str,
    rows: u32,
    writers: u32,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..writers {
        let (pool, insert) = (pool.clone(), insert.to_owned());
        tasks.spawn(async move {
            let mut connection = pool.acquire().await?;
            for i in (writer..rows).step_by(writers as usize) {
                row(&insert, i).execute(&mut *connection).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Commits `rows` plants in one transaction, one statement per plant.
pub async fn write_one_transaction(pool: &AnyPool, insert: &str, rows: u32) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    for i in 0..rows {
        row(insert, i).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The `i`th plant the scenarios write, inserted by `insert`. One plant in ten reports more than its
/// capacity: in `bench e2e`, an alert that fans out to two sinks.
pub fn row(insert: &str, i: u32) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(insert)
        .bind(format!("plant {i}"))
        .bind(format!("region-{}", i % 4))
        .bind(FUELS[i as usize % FUELS.len()])
        .bind(if i.is_multiple_of(10) { 150.0 } else { 80.0 })
}
