//! CRUD under load: the real HTTP API, started in-process on SQLite or PostgreSQL, driven by N
//! concurrent keep-alive connections, one operation at a time (GET by id, list, POST, PATCH) for a
//! fixed duration each: requests per second, p50 and p99 of each. The service runs whole (feed
//! included, no sinks), so the writes are journaled and processed as in production while they are
//! timed. [`measure`] returns the figures for other commands to use; [`run`] prints them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::Method;

use plant_monitor::config::Config;
use plant_monitor::service::Service;
use serde_json::json;

use crate::database::Database;
use crate::load_client::{Connection, Prepared};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Concurrent connections, each a client sending its next request when the last is answered.
    pub connections: u32,
    /// How long each operation is driven.
    pub duration: Duration,
    /// Plants created before the clock starts, which GET and PATCH pick from.
    pub plants: u32,
    /// Run on PostgreSQL: the admin URL of a server where a fresh database is created and dropped.
    pub postgres: Option<String>,
}

impl Setup {
    /// A run that finishes in seconds, for smoke tests: its figures are indicative only.
    pub fn quick(postgres: Option<String>) -> Setup {
        Setup {
            connections: 16,
            duration: Duration::from_secs(1),
            plants: 200,
            postgres,
        }
    }
}

/// One operation's figures.
#[derive(Debug, Clone)]
pub struct Figure {
    pub operation: Operation,
    /// Requests answered with a success status.
    pub requests: u64,
    /// Requests answered with any other status, or not answered.
    pub errors: u64,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// The operations measured, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `GET /v1/plants/{id}` of a random existing plant.
    Get,
    /// `GET /v1/plants?limit=20`, the first page.
    List,
    /// `POST /v1/plants` of a new plant.
    Post,
    /// `PATCH /v1/plants/{id}` of a random existing plant's output, without `If-Match`.
    Patch,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::Get,
        Operation::List,
        Operation::Post,
        Operation::Patch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::Get => "GET by id",
            Operation::List => "list",
            Operation::Post => "POST",
            Operation::Patch => "PATCH",
        }
    }
}

/// Starts the service on a fresh database, seeds it and drives each operation in turn.
pub async fn measure(setup: &Setup) -> anyhow::Result<Vec<Figure>> {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir()?;
    let database = Database::open(setup.postgres.as_deref(), dir.path(), "crud.db").await?;
    let mut config = Config::default();
    config.database.url = database.url().parse().map_err(anyhow::Error::msg)?;
    config.server.listen = "127.0.0.1:0".parse()?;
    config.plugins.dir = dir.path().join("no-plugins");
    config.plugins.cache_dir = dir.path().join("plugin-cache");
    config.feed.snapshot = plant_monitor::config::SnapshotMode::Never;
    let service = Service::start(&config).await?;
    let base = format!("http://{}", service.local_addr());

    let seeder = reqwest::Client::new();
    let mut ids = Vec::with_capacity(setup.plants as usize);
    for i in 0..setup.plants {
        let created: serde_json::Value = seeder
            .post(format!("{base}/v1/plants"))
            .json(&plant(i))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = created["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no id"))?;
        ids.push(id.to_owned());
    }
    anyhow::ensure!(!ids.is_empty(), "at least one plant is needed");

    let mut figures = Vec::new();
    for operation in Operation::ALL {
        figures.push(drive(setup, service.local_addr(), &ids, operation).await?);
    }
    service.shutdown().await?;
    // Dropping the database (a PostgreSQL one is dropped from the server) comes last.
    drop(database);
    Ok(figures)
}

/// Measures and prints a table of the figures.
pub async fn run(setup: Setup) -> anyhow::Result<()> {
    let figures = measure(&setup).await?;
    println!(
        "CRUD on {}, {} connections, {:.1} s per operation, {} plants seeded",
        if setup.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        setup.connections,
        setup.duration.as_secs_f64(),
        setup.plants,
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "operation", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for figure in figures {
        println!(
            "{:<10} {:>10} {:>10.0} {:>10.2} {:>10.2} {:>8}",
            figure.operation.name(),
            figure.requests,
            figure.per_second,
            figure.p50.as_secs_f64() * 1e3,
            figure.p99.as_secs_f64() * 1e3,
            figure.errors,
        );
    }
    Ok(())
}

/// Drives `operation` from every connection for the setup's duration.
async fn drive(
    setup: &Setup,
    address: SocketAddr,
    ids: &[String],
    operation: Operation,
) -> anyhow::Result<Figure> {
    let started = Instant::now();
    let deadline = started + setup.duration;
    let mut connections = tokio::task::JoinSet::new();
    for connection in 0..setup.connections {
        let mut client = Connection::new(address)?;
        let ids = ids.to_vec();
        connections.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            // A stride through the plants that differs per connection, so that concurrent PATCHes
            // rarely meet on one plant.
            let mut pick = connection as usize * 7919;
            while Instant::now() < deadline {
                pick = pick.wrapping_add(104_729);
                let request = prepare(operation, &ids[pick % ids.len()], pick);
                let sent = Instant::now();
                if client.send(request).await {
                    latencies.push(sent.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(done) = connections.join_next().await {
        let (more, failed) = done?;
        latencies.extend(more);
        errors += failed;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Figure {
        operation,
        requests: latencies.len() as u64,
        errors,
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: quantile(0.50),
        p99: quantile(0.99),
    })
}

/// The request of `operation` a connection sends as its `pick`th.
fn prepare(operation: Operation, id: &str, pick: usize) -> Prepared {
    let (method, path, content_type, body) = match operation {
        Operation::Get => (Method::GET, format!("/v1/plants/{id}"), None, String::new()),
        Operation::List => (
            Method::GET,
            "/v1/plants?limit=20".to_owned(),
            None,
            String::new(),
        ),
        Operation::Post => (
            Method::POST,
            "/v1/plants".to_owned(),
            Some("application/json"),
            plant(pick as u32).to_string(),
        ),
        Operation::Patch => (
            Method::PATCH,
            format!("/v1/plants/{id}"),
            Some("application/merge-patch+json"),
            json!({ "output_mw": (pick % 100) as f64 }).to_string(),
        ),
    };
    Prepared {
        method,
        path,
        content_type,
        body,
    }
}

const FUELS: [&str; 6] = ["hydro", "wind", "gas", "coal", "solar", "nuclear"];

fn plant(i: u32) -> serde_json::Value {
    json!({
        "name": format!("plant {i}"),
        "region": format!("region-{}", i % 4),
        "fuel": FUELS[i as usize % FUELS.len()],
        "capacity_mw": 100.0,
        "output_mw": 80.0,
    })
}
