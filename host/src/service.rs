//! The running service: opens and migrates the database, binds the listener and serves the API until told
//! to stop, then drains in-flight requests within `server.shutdown_grace` and closes the database.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::store::{self, Store, StoreError};

/// Why the service could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// A started service; [`Service::shutdown`] stops it.
#[derive(Debug)]
pub struct Service {
    local_addr: SocketAddr,
    store: Arc<dyn Store>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    grace: Duration,
}

impl Service {
    /// Connects to the database, applies migrations, binds `server.listen` and starts serving.
    pub async fn start(config: &Config) -> Result<Service, ServiceError> {
        let store = store::connect(&config.database).await?;
        store.migrate().await?;
        let addr = config.server.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServiceError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServiceError::Bind { addr, source })?;
        let state = AppState {
            store: store.clone(),
            api_token: Some(config.server.api_token.as_str())
                .filter(|token| !token.is_empty())
                .map(Arc::from),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(listener, api::router(state))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .into_future(),
        );
        tracing::info!(%local_addr, database = %config.database.url, "Serving the API.");
        Ok(Service {
            local_addr,
            store,
            stop,
            server,
            grace: config.server.shutdown_grace,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `signal` completes or the server fails, then shuts down.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<(), ServiceError> {
        tokio::select! {
            () = signal => {
                tracing::info!("Shutting down: no new connections, finishing requests in flight.");
                self.shutdown().await
            }
            finished = &mut self.server => {
                self.store.close().await;
                match finished {
                    Ok(result) => result.map_err(ServiceError::Serve),
                    Err(join) => Err(ServiceError::Serve(std::io::Error::other(join))),
                }
            }
        }
    }

    /// Stops accepting connections, lets in-flight requests finish within the grace period, closes the
    /// database.
    pub async fn shutdown(self) -> Result<(), ServiceError> {
        let _ = self.stop.send(());
        let mut server = self.server;
        let result = match tokio::time::timeout(self.grace, &mut server).await {
            Ok(Ok(result)) => result.map_err(ServiceError::Serve),
            Ok(Err(join)) => Err(ServiceError::Serve(std::io::Error::other(join))),
            Err(_) => {
                tracing::warn!(grace = ?self.grace, "Requests still in flight after the grace period were cut off.");
                server.abort();
                Ok(())
            }
        };
        self.store.close().await;
        tracing::info!("Stopped.");
        result
    }
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
