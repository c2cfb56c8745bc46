//! The capture leader's own cost: one `plant-monitor serve` of the release binary in `wal` capture,
//! leading only a region without plants (so capture is all it does), while writers commit into
//! `power_plants`: single rows from 8 connections, then one large transaction. For each phase: how
//! fast the journal fills (from the first write until every change is journaled), the process's CPU
//! time per change, and the CPU time of the PostgreSQL backend that decodes the log for it (the
//! walsender, another process on the same cores); and the process's peak resident memory.

use std::time::{Duration, Instant};

use plant_monitor::config::CaptureMode;
use plant_monitor_tests::TestDatabase;
use sqlx::{AnyPool, PgPool};

use crate::capture::{insert, write_one_transaction, write_single_rows};
use crate::database::Database;
use crate::failover::{self, Lease, Node};
use crate::process::{cpu_of, peak_rss_kib_of};
use crate::report::grouped;

/// The concurrent writers of the single-row phase.
const WRITERS: u32 = 8;

/// What one phase cost.
#[derive(Debug, Clone)]
pub struct Phase {
    pub what: String,
    pub changes: u64,
    /// Changes journaled per second, from the first write until the last is journaled.
    pub per_second: f64,
    pub leader_cpu: Duration,
    pub decoding_cpu: Duration,
}

/// Both phases, and the leader's peak resident memory over the run.
#[derive(Debug, Clone)]
pub struct Cost {
    pub phases: Vec<Phase>,
    pub peak_rss_kib: u64,
}

/// Measures with `changes` changes per phase on the server `admin` reaches, and prints it.
pub async fn run(changes: u32, admin: &str) -> anyhow::Result<Cost> {
    let binary = failover::binary()?;
    let database = Database::Postgres(TestDatabase::create_on(admin).await?);
    database.prepare(CaptureMode::Wal).await?;
    let dir = tempfile::tempdir()?;
    let config = format!(
        r#"[database]
url = "{}"
[feed]
instance_id = "leader"
regions = ["idle"]
snapshot = "never"
[capture]
mode = "wal"
[plugins]
dir = "no-plugins"
"#,
        database.url()
    );
    let mut node = Node::start(&binary, dir.path(), "leader", &config)?;
    let pool = PgPool::connect(database.url()).await?;
    let writers = database.writers(WRITERS).await?;
    let result = measure(&node.pid(), &pool, &writers, changes).await;
    node.stop();
    writers.close().await;
    pool.close().await;
    drop(database);
    let cost = result?;
    for phase in &cost.phases {
        println!(
            "{}: {:.0} changes/s journaled; leader CPU {:.1} µs/change, decoding CPU {:.1} µs/change",
            phase.what,
            phase.per_second,
            per_change(phase.leader_cpu, phase.changes),
            per_change(phase.decoding_cpu, phase.changes),
        );
    }
    println!("leader's peak RSS: {} MiB", cost.peak_rss_kib / 1024);
    Ok(cost)
}

/// CPU time per change, in µs.
pub fn per_change(cpu: Duration, changes: u64) -> f64 {
    cpu.as_secs_f64() * 1e6 / changes as f64
}

async fn measure(
    leader: &str,
    pool: &PgPool,
    writers: &AnyPool,
    changes: u32,
) -> anyhow::Result<Cost> {
    failover::wait_for_leader(pool, Lease::Capture, |_| true).await?;
    let walsender = walsender(pool).await?;
    let insert = insert("power_plants");
    let mut phases = Vec::new();
    for single_rows in [true, false] {
        let (leader_before, decoding_before) = (cpu_of(leader)?, cpu_of(&walsender)?);
        let journaled: i64 = sqlx::query_scalar("SELECT count(*) FROM plant_changes")
            .fetch_one(pool)
            .await?;
        let started = Instant::now();
        if single_rows {
            write_single_rows(writers, &insert, changes, WRITERS).await?;
        } else {
            write_one_transaction(writers, &insert, changes).await?;
        }
        journal_reaches(pool, journaled + i64::from(changes)).await?;
        let elapsed = started.elapsed();
        phases.push(Phase {
            what: if single_rows {
                format!(
                    "{} single-row commits from {WRITERS} writers",
                    grouped(f64::from(changes))
                )
            } else {
                format!("one {}-row transaction", grouped(f64::from(changes)))
            },
            changes: u64::from(changes),
            per_second: f64::from(changes) / elapsed.as_secs_f64(),
            leader_cpu: cpu_of(leader)?.saturating_sub(leader_before),
            decoding_cpu: cpu_of(&walsender)?.saturating_sub(decoding_before),
        });
    }
    Ok(Cost {
        phases,
        peak_rss_kib: peak_rss_kib_of(leader)?,
    })
}

/// The pid of the backend streaming the database's slot to the leader.
async fn walsender(pool: &PgPool) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT max(active_pid) FROM pg_replication_slots WHERE database = current_database()",
        )
        .fetch_one(pool)
        .await?;
        if let Some(pid) = pid {
            return Ok(pid.to_string());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the leader did not stream within a minute"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn journal_reaches(pool: &PgPool, entries: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let journaled: i64 = sqlx::query_scalar("SELECT count(*) FROM plant_changes")
            .fetch_one(pool)
            .await?;
        if journaled >= entries {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{journaled} of {entries} changes journaled after 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
