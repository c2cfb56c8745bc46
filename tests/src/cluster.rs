//! Several real `plant-monitor serve` processes on one database, a steady writer, and the checks that
//! matter after a failover: every journal entry reached the receiver, each plant's events arrived in
//! journal order, and who sent what. Each node sends to its own path on the one receiver, so a request
//! names its sender.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{PgPool, SqlitePool};

use crate::{Received, plant_monitor};

/// One `serve` process, killed when dropped. Its log is kept for failure messages.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub addr: String,
    /// The holder name it uses in the `leases` table.
    pub instance_id: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// Writes `config` to `DIR/NAME.toml` and starts `serve -c` on it, listening on port 0.
    pub async fn start(dir: &Path, name: &str, config: &str) -> Node {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, config).expect("config written");
        let mut child = plant_monitor(dir)
            .args(["serve", "-c"])
            .arg(&file)
            .env("PLANT_MONITOR_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("local_addr=").nth(1) {
                    let _ = addr_tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let addr =
            tokio::task::spawn_blocking(move || addr_rx.recv_timeout(Duration::from_secs(60)))
                .await
                .expect("join")
                .unwrap_or_else(|_| {
                    panic!("{name} did not start:\n{}", log.lock().unwrap().join("\n"))
                });
        let mut node = Node {
            name: name.to_owned(),
            addr,
            instance_id: String::new(),
            child,
            log,
        };
        node.instance_id = node.leases().await["instance_id"]
            .as_str()
            .expect("instance_id")
            .to_owned();
        node
    }

    /// `GET /v1/leases` from this node.
    pub async fn leases(&self) -> Value {
        reqwest::get(format!("http://{}/v1/leases", self.addr))
            .await
            .expect("the node answers")
            .json()
            .await
            .expect("JSON")
    }

    /// Sends a signal by name (`KILL`, `TERM`, `STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} {}", self.name);
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// Waits for the process to end, or panics after `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Everything the node logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration of one node: its database, regions and lease time, and one sink `out` pointing at
/// `sink_url`. Plugins are off and the poll is short, so tests measure the leases, not the plugins.
pub fn node_config(
    name: &str,
    database_url: &str,
    regions: &[&str],
    lease_ttl: &str,
    sink_url: &str,
) -> String {
    let regions: Vec<String> = regions.iter().map(|r| format!("{r:?}")).collect();
    format!(
        r#"[server]
shutdown_grace = "5s"

[database]
url = "{database_url}"
max_connections = 4

[feed]
instance_id = "{name}"
regions = [{regions}]
lease_ttl = "{lease_ttl}"
poll_interval = "50ms"

[plugins]
dir = "no-plugins"

[sinks.out]
url = "{sink_url}"
timeout = "2s"
backoff_initial = "20ms"
backoff_max = "200ms"
"#,
        regions = regions.join(", ")
    )
}

/// The database the nodes share, as the test reaches it directly.
#[derive(Debug, Clone)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Db {
    pub async fn connect(url: &str) -> Db {
        if url.starts_with("postgres") {
            Db::Postgres(PgPool::connect(url).await.expect("connect"))
        } else {
            let options = SqliteConnectOptions::from_str(url)
                .expect("SQLite URL")
                .busy_timeout(Duration::from_secs(10));
            Db::Sqlite(SqlitePool::connect_with(options).await.expect("connect"))
        }
    }

    /// Runs one statement with text parameters, returning the rows it touched.
    pub async fn execute(&self, sql: &str, params: &[&str]) -> Result<u64, sqlx::Error> {
        match self {
            Db::Postgres(pool) => {
                let mut query = sqlx::query(sql);
                for param in params {
                    query = query.bind(*param);
                }
                Ok(query.execute(pool).await?.rows_affected())
            }
            Db::Sqlite(pool) => {
                let mut query = sqlx::query(sql);
                for param in params {
                    query = query.bind(*param);
                }
                Ok(query.execute(pool).await?.rows_affected())
            }
        }
    }

    /// Every journal entry as (seq, plant id), in seq order.
    pub async fn journal(&self) -> Vec<(u64, String)> {
        let sql = "SELECT seq, plant_id FROM plant_changes ORDER BY seq";
        let rows: Vec<(i64, String)> = match self {
            Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        }
        .expect("journal");
        rows.into_iter().map(|(seq, id)| (seq as u64, id)).collect()
    }

    /// The holder and epoch of the lease of `region`, while it is in force (database clock).
    pub async fn leader(&self, region: &str) -> Option<(String, u64)> {
        let name = format!("feed:{region}");
        let row: Option<(String, i64)> = match self {
            Db::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT holder, epoch FROM leases WHERE name = $1 AND expires_at > now()",
                )
                .bind(name)
                .fetch_optional(pool)
                .await
            }
            Db::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT holder, epoch FROM leases WHERE name = ?1 \
                     AND expires_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                )
                .bind(name)
                .fetch_optional(pool)
                .await
            }
        }
        .ok()
        .flatten();
        row.map(|(holder, epoch)| (holder, epoch as u64))
    }

    /// Waits until `region` has a leader that `accept` accepts; returns it and how long that took.
    pub async fn wait_for_leader(
        &self,
        region: &str,
        limit: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> ((String, u64), Duration) {
        let started = Instant::now();
        loop {
            if let Some(leader) = self.leader(region).await
                && accept(&leader.0)
            {
                return (leader, started.elapsed());
            }
            assert!(
                started.elapsed() < limit,
                "no accepted leader of {region} within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A writer that inserts plants and then updates them round-robin at a steady pace, as another
/// application sharing the database would.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    pub writes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    /// `plants` per region, then one update every `every` until stopped. Writes that fail (the
    /// database restarting) are retried on the next tick.
    pub async fn start(db: &Db, regions: &[&str], plants: usize, every: Duration) -> Load {
        let mut ids = Vec::new();
        for region in regions {
            for n in 0..plants {
                let id = format!("{region}-plant-{n}");
                db.execute(
                    "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) \
                     VALUES ($1, $2, $3, 'wind', 10)",
                    &[&id, &id, region],
                )
                .await
                .expect("plant inserted");
                ids.push(id);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let (db, stopping, written) = (db.clone(), stop.clone(), writes.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut n: u64 = 0;
            while !stopping.load(Ordering::Relaxed) {
                tick.tick().await;
                let id = &ids[n as usize % ids.len()];
                let output = (n + 1).to_string();
                let sql = "UPDATE power_plants SET output_mw = CAST($1 AS DOUBLE PRECISION) \
                           WHERE id = $2";
                if db.execute(sql, &[&output, id]).await.is_ok() {
                    n += 1;
                    written.store(n, Ordering::Relaxed);
                }
            }
        });
        Load { stop, writes, task }
    }

    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.writes.load(Ordering::Relaxed)
    }
}

/// What arrived compared with the journal.
#[derive(Debug)]
pub struct Audit {
    /// Journal entries never received.
    pub missing: Vec<u64>,
    /// Requests beyond the first for the same entry.
    pub duplicates: usize,
    /// Plants whose events, first arrivals only, were not in journal order.
    pub out_of_order: Vec<String>,
    /// Requests per sending node (the receiver path).
    pub by_sender: BTreeMap<String, usize>,
}

impl Audit {
    pub fn of(journal: &[(u64, String)], received: &[Received]) -> Audit {
        let mut first: HashMap<u64, usize> = HashMap::new();
        let mut arrived: HashMap<String, Vec<u64>> = HashMap::new();
        let mut by_sender = BTreeMap::new();
        let mut duplicates = 0;
        for request in received {
            *by_sender.entry(request.path.clone()).or_default() += 1;
            let seq = request.seq();
            if first.insert(seq, first.len()).is_some() {
                duplicates += 1;
                continue;
            }
            let plant = request.data()["plant_id"].as_str().unwrap_or("").to_owned();
            arrived.entry(plant).or_default().push(seq);
        }
        let missing = journal
            .iter()
            .map(|(seq, _)| *seq)
            .filter(|seq| !first.contains_key(seq))
            .collect();
        let mut out_of_order: Vec<String> = arrived
            .into_iter()
            .filter(|(_, seqs)| seqs.windows(2).any(|pair| pair[0] > pair[1]))
            .map(|(plant, _)| plant)
            .collect();
        out_of_order.sort();
        Audit {
            missing,
            duplicates,
            out_of_order,
            by_sender,
        }
    }
}

/// Waits until every journal entry has been received (or `limit` passes) and audits the result.
pub async fn audit_when_complete(db: &Db, receiver: &crate::Receiver, limit: Duration) -> Audit {
    let deadline = Instant::now() + limit;
    loop {
        let journal = db.journal().await;
        let audit = Audit::of(&journal, &receiver.accepted());
        if audit.missing.is_empty() || Instant::now() >= deadline {
            return audit;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
