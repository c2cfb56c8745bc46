//! Shared harness for the integration tests: a real service on a fresh database of either backend (an
//! SQLite file in a temporary folder or a PostgreSQL database of its own), serving real HTTP on an
//! ephemeral port of 127.0.0.1, and the real `plant-monitor` binary for tests that need a separate
//! process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod backend;
mod cluster;
mod plugin_dir;
mod postgres;
mod receiver;

pub use backend::{
    Backend, CaptureLeader, FreshDatabase, TestStore, assert_captured_exactly, journal_is_exact,
};
pub use cluster::{Audit, Db, Load, Node, audit_when_complete, node_config};
pub use plugin_dir::{PluginDir, component, repo, with_extra_modules};
pub use postgres::TestDatabase;
pub use receiver::{Answer, Attempt, Received, Receiver};

use plant_monitor::config::{Config, SinkConfig};
use plant_monitor::domain::{Fuel, PlantDraft, Status};
use plant_monitor::service::Service;
use plant_monitor::store::{Acquisition, Fence, Store};
use serde_json::{Value, json};
use sqlx::AnyPool;
use tempfile::TempDir;

/// How long the tests wait for something that is bound to happen soon.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running service with its own database; stopped and deleted when dropped.
#[derive(Debug)]
pub struct TestApp {
    pub client: reqwest::Client,
    pub config: Config,
    base: String,
    backend: Backend,
    service: Option<Service>,
    /// Declared after the service, so it is dropped after the service stopped using it.
    database: FreshDatabase,
    _dir: TempDir,
}

impl TestApp {
    /// Starts a service on SQLite with the default configuration.
    pub async fn start() -> TestApp {
        TestApp::start_with(|_| {}).await
    }

    /// Starts a service on SQLite with the default configuration after `adjust` has changed it.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::start_on(Backend::Sqlite, adjust).await
    }

    /// Starts a service on a fresh database of `backend` with the default configuration after `adjust`
    /// has changed it.
    pub async fn start_on(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("temporary folder");
        let database = backend.database().await;
        let mut config = Config::default();
        config.database.url = database.url().parse().expect("a database URL");
        config.server.listen = "127.0.0.1:0".parse().expect("address");
        config.plugins.dir = dir.path().join("no-plugins");
        config.plugins.cache_dir = dir.path().join("plugin-cache");
        config.feed.poll_interval = Duration::from_millis(20);
        // Tests that want snapshot events ask for them.
        config.feed.snapshot = plant_monitor::config::SnapshotMode::Never;
        backend.configure(&mut config);
        adjust(&mut config);
        let service = Service::start(&config).await.expect("the service starts");
        TestApp {
            client: reqwest::Client::new(),
            config,
            base: format!("http://{}", service.local_addr()),
            backend,
            service: Some(service),
            database,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `HOST:PORT` the service listens on, for tests that speak to it below HTTP.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// A request to `path` of this service, to add headers or a body to.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Sends a request without a body and returns the response, whatever its status.
    pub async fn call(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.request(method, path)
            .send()
            .await
            .expect("the server answers")
    }

    /// A separate connection to the service's database, as any other SQL client would open it, on
    /// either backend. SQL written for it runs on both when its binds are `$1`, `$2`, …, which SQLite
    /// reads as named parameters.
    pub async fn sql(&self) -> AnyPool {
        self.database.sql().await
    }

    /// Creates a plant through the API and returns it.
    pub async fn create(&self, body: &Value) -> Value {
        let response = self
            .client
            .post(self.url("/v1/plants"))
            .json(body)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 201, "creating {body}");
        response.json().await.expect("JSON body")
    }

    /// Applies a JSON merge patch to a plant through the API and returns the patched plant.
    pub async fn patch(&self, id: &str, patch: &str) -> Value {
        let response = self
            .request(reqwest::Method::PATCH, &format!("/v1/plants/{id}"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/merge-patch+json",
            )
            .body(patch.to_owned())
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "patching {id} with {patch}");
        response.json().await.expect("JSON body")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.expect("sent");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON body")
    }

    pub async fn stop(mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown().await.expect("clean shutdown");
        }
    }

    /// Stops the service and starts a new one on the same database and folders, after `adjust` (which
    /// sees the configuration the first start used) has changed the configuration.
    pub async fn restart(mut self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        if let Some(service) = self.service.take() {
            service.shutdown().await.expect("clean shutdown");
        }
        let mut config = self.config.clone();
        adjust(&mut config);
        let service = Service::start(&config).await.expect("the service restarts");
        self.base = format!("http://{}", service.local_addr());
        self.service = Some(service);
        self.config = config;
        self
    }

    /// Waits until `check` accepts what `GET path` answers, and returns that.
    pub async fn wait_for_json(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(WAIT, || async {
            let value = self.get_json(path).await;
            if check(&value) {
                Ok(value)
            } else {
                Err(format!("{path} never matched: {value}"))
            }
        })
        .await
    }

    /// Returns once every change committed before the call is journaled: at once when triggers
    /// journal them, once the capture leader has decoded them in `wal` capture.
    pub async fn captured(&self) {
        if self.backend == Backend::PostgresWal {
            backend::captured(&self.sql().await).await;
        }
    }

    /// The journal, oldest first (up to 1000 entries), once every change committed before is in it.
    pub async fn journal(&self) -> Vec<Value> {
        self.captured().await;
        self.get_json("/v1/changes?limit=1000").await["items"]
            .as_array()
            .expect("items")
            .clone()
    }
}

/// Polls `probe` every 20 ms until it answers `Ok`, and returns that; fails the test with the last
/// `Err` (what was seen instead) once `limit` has passed.
pub async fn eventually<T, E, F, Fut>(limit: Duration, mut probe: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match probe().await {
            Ok(found) => return found,
            Err(seen) => assert!(tokio::time::Instant::now() < deadline, "{seen}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A sink delivering to `url` with fast retries, as tests want.
pub fn sink(url: &str) -> SinkConfig {
    sink_with(url, json!({}))
}

/// [`sink`] with the settings of `extra` (a JSON object of sink keys) added or overriding.
pub fn sink_with(url: &str, extra: Value) -> SinkConfig {
    let mut config = json!({"url": url, "backoff_initial": "10ms", "backoff_max": "50ms"});
    for (key, value) in extra.as_object().expect("sink settings are an object") {
        config[key] = value.clone();
    }
    serde_json::from_value(config).expect("a valid sink")
}

/// A valid plant body with the given name.
pub fn plant(name: &str) -> Value {
    json!({
        "name": name, "region": "us-west", "fuel": "hydro", "capacity_mw": 6809.0,
        "output_mw": 5120.5, "status": "operational", "latitude": 47.96, "longitude": -118.98,
        "attributes": {"operator": "USBR"}
    })
}

/// The `plant-monitor` binary of this checkout, built (or found up to date) once per test process, with
/// the same cargo, profile and target folder as the tests themselves.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let output = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "plant-monitor",
                "--bin",
                "plant-monitor",
            ])
            .arg("--message-format=json")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building plant-monitor failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|message| message["reason"] == "compiler-artifact")
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .expect("cargo reports the executable")
    })
}

/// The binary, run in `dir`, with none of this shell's plant-monitor settings leaking in.
pub fn plant_monitor(dir: &Path) -> Command {
    let mut command = Command::new(binary());
    command
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("PLANT_MONITOR_DATABASE_URL")
        .env_remove("PLANT_MONITOR_LISTEN")
        .env_remove("PLANT_MONITOR_API_TOKEN");
    command
}

/// A `plant-monitor serve` process on an ephemeral port, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: String,
}

impl Server {
    /// Starts `plant-monitor ARGS` in `dir` listening on port 0, and reads the bound address from its log.
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        let mut child = plant_monitor(dir)
            .args(args)
            .env("PLANT_MONITOR_LISTEN", "127.0.0.1:0")
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("serve logs its address before anything ends")
                .expect("readable log");
            if let Some(rest) = line.split("local_addr=").nth(1) {
                break rest.split_whitespace().next().expect("address").to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, addr }
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        reqwest::blocking::get(format!("http://{}{path}", self.addr)).expect("the server answers")
    }

    /// Sends `signal` (e.g. "TERM") and waits for the exit; returns the status and how long it took.
    pub fn signal_and_wait(mut self, signal: &str) -> (ExitStatus, Duration) {
        let sent = Instant::now();
        let killed = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, sent.elapsed());
            }
            assert!(
                sent.elapsed() < Duration::from_secs(10),
                "the server did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A valid plant named `name` in `region`, for tests that write through the store.
pub fn draft(region: &str, name: &str) -> PlantDraft {
    PlantDraft {
        name: name.into(),
        region: region.into(),
        fuel: Fuel::Wind,
        capacity_mw: 10.0,
        output_mw: None,
        status: Status::Planned,
        latitude: None,
        longitude: None,
        attributes: Default::default(),
    }
}

/// Takes the free lease `feed:<region>` as the holder `leader`, as a region's new leader does, and
/// returns the fence its feed writes carry; for tests that drive the store as the feed would.
pub async fn lead(store: &dyn Store, region: &str) -> Fence {
    let lease = format!("feed:{region}");
    let Acquisition::Acquired { epoch } = store
        .acquire_lease(&lease, "leader", Duration::from_secs(10))
        .await
        .expect("acquire")
    else {
        panic!("the lease {lease} is free");
    };
    Fence {
        lease,
        holder: "leader".into(),
        epoch,
    }
}
