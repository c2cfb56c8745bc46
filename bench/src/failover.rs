//! Failover time: two `plant-monitor serve` processes of the release binary on one PostgreSQL database,
//! a writer updating a plant every 5 ms, and the leader stopped by a signal (`KILL` or `TERM`) once per
//! run. Two times are taken from the signal: until the other process holds the lease, and until the
//! successor's first work: for a region's lease, the receiver getting its first event from it; for
//! the `capture` lease (both in `wal` capture), the journal growing again. The stopped process is
//! started again between runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::http::{StatusCode, Uri};
use sqlx::PgPool;

use plant_monitor::config::CaptureMode;
use plant_monitor_tests::TestDatabase;

use crate::database::Database;

/// What to measure.
#[derive(Debug)]
pub struct Setup {
    pub runs: u32,
    pub signal: String,
    pub lease_ttl: String,
    pub postgres: String,
    pub lease: Lease,
}

/// Whose leader is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// The feed of the region `north`.
    Region,
    /// The capture leader, with both processes in `wal` capture.
    Capture,
}

impl Lease {
    fn name(self) -> &'static str {
        match self {
            Lease::Region => "feed:north",
            Lease::Capture => "capture",
        }
    }

    /// What the successor's first work is called in the report.
    pub fn first_work(self) -> &'static str {
        match self {
            Lease::Region => "first event delivered",
            Lease::Capture => "first change journaled",
        }
    }
}

/// Requests as (receiver path, arrival).
type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

/// Medians from the signal: until the lease is taken, and until the successor's first work.
#[derive(Debug, Clone, Copy)]
pub struct Failover {
    pub lease: Duration,
    pub first_work: Duration,
}

/// Measures and prints every run; returns the medians.
pub async fn run(setup: Setup) -> anyhow::Result<Failover> {
    let binary = binary()?;
    let database = Database::Postgres(TestDatabase::create_on(&setup.postgres).await?);
    let mode = match setup.lease {
        Lease::Region => CaptureMode::Trigger,
        Lease::Capture => CaptureMode::Wal,
    };
    // Prepared before the nodes start, so that neither migrates while the bench's writer writes.
    database.prepare(mode).await?;
    let dir = tempfile::tempdir()?;
    let arrivals = Arrivals::default();
    let receiver = start_receiver(arrivals.clone()).await?;
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        let config = config(name, database.url(), &setup.lease_ttl, mode, receiver);
        nodes.push(Node::start(&binary, dir.path(), name, &config)?);
    }
    let pool = PgPool::connect(database.url()).await?;
    let result = measure(&setup, &pool, &mut nodes, &arrivals).await;
    for node in &mut nodes {
        node.stop();
    }
    pool.close().await;
    drop(database);
    let (to_lease, to_work) = result?;
    Ok(Failover {
        lease: report(&setup, "lease taken", to_lease),
        first_work: report(&setup, setup.lease.first_work(), to_work),
    })
}

async fn measure(
    setup: &Setup,
    pool: &PgPool,
    nodes: &mut [Node],
    arrivals: &Arrivals,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    sqlx::query(
        "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) \
         VALUES ('p', 'Bench', 'north', 'wind', 10)",
    )
    .execute(pool)
    .await?;
    let writer = tokio::spawn(write_steadily(pool.clone()));
    let lease = setup.lease;
    let (mut to_lease, mut to_work) = (Vec::new(), Vec::new());
    for run in 1..=setup.runs {
        let (old, _) = wait_for_leader(pool, lease, |_| true).await?;
        // Steady state: the leader has been delivering for a while.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let leader = nodes
            .iter_mut()
            .find(|node| old.starts_with(&format!("{}-", node.name)))
            .context("the leader is one of the nodes")?;
        let signalled = Instant::now();
        leader.signal(&setup.signal)?;
        let (new, taken) = wait_for_leader(pool, lease, |holder| holder != old).await?;
        let work = match lease {
            Lease::Region => {
                let successor = new.split('-').next().unwrap_or_default();
                first_event_after(arrivals, &format!("/{successor}"), signalled).await?
            }
            Lease::Capture => journal_grows(pool).await?,
        };
        println!(
            "run {run:>2}: lease after {:>7.1} ms, {} after {:>7.1} ms",
            ms(taken.duration_since(signalled)),
            lease.first_work(),
            ms(work.duration_since(signalled)),
        );
        to_lease.push(taken.duration_since(signalled));
        to_work.push(work.duration_since(signalled));
        leader.restart()?;
    }
    writer.abort();
    Ok((to_lease, to_work))
}

/// The `plant-monitor` binary beside this one (both are built into the same target folder).
pub fn binary() -> anyhow::Result<PathBuf> {
    let binary = std::env::current_exe()?.with_file_name("plant-monitor");
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: run `cargo build --release -p plant-monitor` first",
        binary.display()
    );
    Ok(binary)
}

fn config(
    name: &str,
    url: &str,
    lease_ttl: &str,
    mode: CaptureMode,
    receiver: std::net::SocketAddr,
) -> String {
    format!(
        r#"[database]
url = "{url}"
max_connections = 4
[feed]
instance_id = "{name}"
lease_ttl = "{lease_ttl}"
snapshot = "never"
[capture]
mode = "{}"
[plugins]
dir = "no-plugins"
[sinks.out]
url = "http://{receiver}/{name}"
"#,
        mode.as_str()
    )
}

/// One `serve` process and how to start it again.
pub struct Node {
    name: String,
    command: Vec<String>,
    dir: PathBuf,
    binary: PathBuf,
    child: Child,
}

impl Node {
    /// Starts `serve` with the configuration `config`, written to `<name>.toml` in `dir`.
    pub fn start(binary: &Path, dir: &Path, name: &str, config: &str) -> anyhow::Result<Node> {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, config)?;
        let command = vec!["serve".into(), "-c".into(), file.display().to_string()];
        let child = spawn(binary, dir, &command)?;
        Ok(Node {
            name: name.into(),
            command,
            dir: dir.into(),
            binary: binary.into(),
            child,
        })
    }

    fn signal(&mut self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} failed");
        Ok(())
    }

    /// The process's id, for /proc.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn restart(&mut self) -> anyhow::Result<()> {
        let _ = self.child.wait();
        self.child = spawn(&self.binary, &self.dir, &self.command)?;
        Ok(())
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(binary: &Path, dir: &Path, args: &[String]) -> anyhow::Result<Child> {
    Ok(Command::new(binary)
        .args(args)
        .current_dir(dir)
        .env("PLANT_MONITOR_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

async fn write_steadily(pool: PgPool) {
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    for n in 1u64.. {
        tick.tick().await;
        let _ = sqlx::query("UPDATE power_plants SET output_mw = $1 WHERE id = 'p'")
            .bind(n as f64)
            .execute(&pool)
            .await;
    }
}

/// Waits for a holder of `lease` that `accept` accepts; returns it and when it was seen.
pub async fn wait_for_leader(
    pool: &PgPool,
    lease: Lease,
    accept: impl Fn(&str) -> bool,
) -> anyhow::Result<(String, Instant)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let holder: Option<String> =
            sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1 AND expires_at > now()")
                .bind(lease.name())
                .fetch_optional(pool)
                .await?;
        if let Some(holder) = holder.filter(|holder| accept(holder)) {
            return Ok((holder, Instant::now()));
        }
        anyhow::ensure!(Instant::now() < deadline, "no new leader within a minute");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// When the journal next grows: the successor journaling the changes written since the signal.
async fn journal_grows(pool: &PgPool) -> anyhow::Result<Instant> {
    let newest = || sqlx::query_scalar::<_, Option<i64>>("SELECT max(seq) FROM plant_changes");
    let before = newest().fetch_one(pool).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if newest().fetch_one(pool).await? > before {
            return Ok(Instant::now());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the journal stood still for a minute"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn first_event_after(
    arrivals: &Arrivals,
    path: &str,
    after: Instant,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let first = arrivals
            .lock()
            .map_err(|_| anyhow::anyhow!("receiver poisoned"))?
            .iter()
            .find(|(p, at)| p == path && *at > after)
            .map(|(_, at)| *at);
        if let Some(at) = first {
            return Ok(at);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no event from {path} within a minute"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn start_receiver(arrivals: Arrivals) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let app = Router::new().fallback(move |uri: Uri| {
            let arrivals = arrivals.clone();
            async move {
                if let Ok(mut arrivals) = arrivals.lock() {
                    arrivals.push((uri.path().to_owned(), Instant::now()));
                }
                StatusCode::NO_CONTENT
            }
        });
        axum::serve(listener, app).await
    });
    Ok(address)
}

fn report(setup: &Setup, what: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "{} leader, kill -{} with lease_ttl {}, {what}: median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs",
        setup.lease.name(),
        setup.signal,
        setup.lease_ttl,
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
    median
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
