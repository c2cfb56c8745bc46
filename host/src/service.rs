//! The running service: opens and migrates the database, loads the plugins, starts the lease keeper,
//! the capture leader's loop in `wal` capture, the feed, the sink workers, the backfill worker and the API, and on shutdown stops them in the order that loses nothing
//! and hands over fast: no new requests or changes are taken, the batch in hand and the deliveries in
//! flight finish within `server.shutdown_grace` (still under the leases), the leases are released so
//! a standby takes over at once, and the database is closed last.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};

use crate::api::{self, AppState, ServeLimits};
use crate::backfill::Backfiller;
use crate::capture::{self, Capturer};
use crate::config::{Backend, Config};
use crate::feed::Feed;
use crate::lease::{CAPTURE, Keeper, Leadership};
use crate::pipeline::{Folder, LivePipeline, Watcher};
use crate::plugins::{PluginError, Runtime};
use crate::retention::Pruner;
use crate::sinks::{SinkError, Sinks};
use crate::store::{
    self, BackfillStore, CaptureStore, JournalStore, LeaseStore, OutboxStore, RetentionStore,
    Store, StoreError,
};
use crate::tail::Tail;
use crate::telemetry;

/// Why the service could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Plugins(#[from] PluginError),
    #[error(transparent)]
    Sinks(#[from] SinkError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("loading the plugins failed")]
    PluginLoader(#[source] JoinError),
    #[error("the HTTP server task failed")]
    ServerTask(#[source] JoinError),
}

/// A started service; [`Service::shutdown`] stops it.
#[derive(Debug)]
pub struct Service {
    local_addr: SocketAddr,
    store: Arc<dyn Store>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
    release: watch::Sender<bool>,
    /// The region leases' keeper, and in `wal` capture the `capture` lease's.
    keepers: Vec<JoinHandle<()>>,
    grace: Duration,
}

impl Service {
    /// Connects to the database, applies migrations, loads the plugins, binds `server.listen` and starts
    /// the API, the feed and one delivery worker per sink.
    pub async fn start(config: &Config) -> Result<Service, ServiceError> {
        // Before any plugin loads: each registers its series with the recorder as it does.
        telemetry::metrics::handle();
        let store = store::connect(&config.database).await?;
        capture::prepare(&*store, config).await?;
        let sinks = Arc::new(Sinks::build(&config.sinks)?);
        let mut folder = Folder::new(
            Runtime::new(&config.plugins)?,
            &config.plugins,
            &config.routing,
            sinks.names().collect(),
        );
        // Compiling is CPU-bound and may take seconds per plugin: keep it off the async threads.
        let folder = tokio::task::spawn_blocking(move || {
            folder.reconcile();
            folder
        })
        .await
        .map_err(ServiceError::PluginLoader)?;
        let pipeline = Arc::new(LivePipeline::from_pointee(folder.pipeline()));
        let (stop, stopping) = watch::channel(false);
        // Told whenever deliveries may have become due, so the sink workers look at once.
        let (deliveries_due, due) = watch::channel(());
        let deliveries_due = Arc::new(deliveries_due);
        let (release, releasing) = watch::channel(false);
        let leadership = Arc::new(Leadership::new(instance_id(&config.feed.instance_id)));
        let keeper = Keeper {
            store: store.clone() as Arc<dyn LeaseStore>,
            leadership: leadership.clone(),
            regions: config.feed.regions.clone(),
            ttl: config.feed.lease_ttl,
            discover_every: config.feed.poll_interval.min(DISCOVER_AT_LEAST_EVERY),
        };
        let mut keepers = vec![tokio::spawn(
            keeper.run(stopping.clone(), releasing.clone()),
        )];
        let mut workers = Vec::new();
        if config.database.url.backend() == Backend::Postgres {
            workers.push(tokio::spawn(capture::watch_slot(
                store.clone() as Arc<dyn CaptureStore>,
                stopping.clone(),
            )));
        }
        if capture::wanted(config) {
            let leadership = Arc::new(Leadership::of_leases(leadership.holder().to_owned()));
            let keeper = Keeper {
                store: store.clone() as Arc<dyn LeaseStore>,
                leadership: leadership.clone(),
                regions: vec![CAPTURE.to_owned()],
                ttl: config.feed.lease_ttl,
                discover_every: DISCOVER_AT_LEAST_EVERY,
            };
            keepers.push(tokio::spawn(keeper.run(stopping.clone(), releasing)));
            let capturer = Capturer {
                store: store.clone() as Arc<dyn CaptureStore>,
                leadership,
            };
            workers.push(tokio::spawn(capturer.run(stopping.clone())));
        }
        workers.extend(sinks.spawn(
            &(store.clone() as Arc<dyn OutboxStore>),
            &leadership,
            config.feed.poll_interval,
            &due,
            &stopping,
        ));
        let (backfills_due, started) = watch::channel(());
        let backfiller = Backfiller {
            store: store.clone() as Arc<dyn BackfillStore>,
            batch_size: config.feed.batch_size,
            poll_interval: config.feed.poll_interval,
            started,
            fed: deliveries_due.subscribe(),
        };
        workers.push(tokio::spawn(backfiller.run(stopping.clone())));
        let feed = Feed {
            store: store.clone() as Arc<dyn JournalStore>,
            backfills: store.clone() as Arc<dyn BackfillStore>,
            pipeline: pipeline.clone(),
            deliveries_due: deliveries_due.clone(),
            leadership: leadership.clone(),
            config: config.feed.clone(),
        };
        workers.push(tokio::spawn(feed.run(stopping.clone())));
        let pruner = Pruner {
            store: store.clone() as Arc<dyn RetentionStore>,
            config: config.retention.clone(),
        };
        workers.push(tokio::spawn(pruner.run(stopping.clone())));
        if config.plugins.watch {
            let watcher = Watcher {
                folder,
                live: pipeline.clone(),
                debounce: config.plugins.watch_debounce,
            };
            workers.push(tokio::spawn(watcher.run(stopping.clone())));
        }
        let tail = Arc::new(Tail::new(
            store.clone() as Arc<dyn JournalStore>,
            config.feed.poll_interval,
            config.server.max_stream_clients.get() as usize,
        ));
        workers.push(tokio::spawn(tail.clone().run(stopping.clone())));
        let addr = config.server.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServiceError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServiceError::Bind { addr, source })?;
        let state = AppState {
            store: store.clone(),
            api_token: config.server.api_token.as_deref().map(Arc::from),
            protect_reads: config.server.protect_reads,
            pipeline,
            plugins_dir: Arc::from(config.plugins.dir.as_path()),
            instance_id: Arc::from(leadership.holder()),
            sinks: sinks.clone(),
            deliveries_due,
            tail,
            keep_alive: api::KEEP_ALIVE,
            backfills_due: Arc::new(backfills_due),
        };
        let mut api_stopping = stopping;
        let limits = ServeLimits {
            max_connections: config.server.max_connections.get() as usize,
            max_requests: config.server.max_requests.get() as usize,
            header_read_timeout: config.server.header_read_timeout,
            request_timeout: config.server.request_timeout,
        };
        let server = tokio::spawn(api::serve(
            listener,
            api::router(state),
            limits,
            async move {
                let _ = api_stopping.wait_for(|stopping| *stopping).await;
            },
        ));
        tracing::info!(%local_addr, database = %config.database.url, instance = leadership.holder(), "Serving the API.");
        Ok(Service {
            local_addr,
            store,
            stop,
            server,
            workers,
            release,
            keepers,
            grace: config.server.shutdown_grace,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `signal` completes or the server task fails, then shuts down.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<(), ServiceError> {
        tokio::select! {
            () = signal => {
                tracing::info!("Shutting down: no new connections, finishing requests in flight.");
                self.shutdown().await
            }
            finished = &mut self.server => {
                let _ = self.release.send(true);
                for keeper in self.keepers {
                    let _ = keeper.await;
                }
                self.store.close().await;
                finished.map_err(ServiceError::ServerTask)
            }
        }
    }

    /// Stops taking requests and changes, lets the API requests, the feed batch and the deliveries in
    /// flight finish within the grace period, releases the leases, then closes the database. What is
    /// cut off at the deadline was not acknowledged, so it is redone by whoever leads next.
    pub async fn shutdown(self) -> Result<(), ServiceError> {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + self.grace;
        let mut server = self.server;
        let result = match tokio::time::timeout_at(deadline, &mut server).await {
            Ok(finished) => finished.map_err(ServiceError::ServerTask),
            Err(_) => {
                tracing::warn!(grace = ?self.grace, "Requests still in flight after the grace period were cut off.");
                server.abort();
                Ok(())
            }
        };
        for mut worker in self.workers {
            if tokio::time::timeout_at(deadline, &mut worker)
                .await
                .is_err()
            {
                tracing::warn!(grace = ?self.grace, "Work still in flight after the grace period was cut off; it will be redone.");
                worker.abort();
            }
        }
        let _ = self.release.send(true);
        if tokio::time::timeout(RELEASE_WAIT, futures_util::future::join_all(self.keepers))
            .await
            .is_err()
        {
            tracing::warn!("Cannot release the leases in time; they will expire.");
        }
        self.store.close().await;
        tracing::info!("Stopped.");
        result
    }
}

/// New regions are found by polling; a long `poll_interval` (chosen because NOTIFY wakes the feed)
/// must not leave a new region unled for as long.
const DISCOVER_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// How long shutdown waits for the leases to be released: a release is one short statement each.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// The configured instance id (or the host name) with a random suffix: unique per process start, so
/// a restarted process never mistakes its predecessor's lease for its own, even under a stable name.
fn instance_id(configured: &str) -> String {
    let name = Some(configured.to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| String::from("plant-monitor"));
    format!("{name}-{:08x}", fastrand::u32(..))
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn termination_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "Cannot listen for SIGTERM; only SIGINT stops the service.");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
