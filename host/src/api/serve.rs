//! Serving the router on a listener with the limits a public endpoint needs, which `axum::serve` does
//! not set: at most `server.max_connections` connections at once (the rest wait in the listen
//! backlog, so idle or slow clients cannot exhaust the process's file descriptors, which the database
//! and sink connections need too); a client that has not sent a request's headers within
//! `server.header_read_timeout` is disconnected; and a request that takes longer than
//! `server.request_timeout` is answered 503; at most `server.max_requests` requests under `/v1` are
//! handled at once, the others waiting their turn within that time, so a burst of heavy reads cannot
//! hold every database connection (the probes never wait). On shutdown no connection is accepted any
//! more and those open finish their requests in flight.
//!
//! The timeout and the turn last until the answer's head is ready, which for every answer but one
//! is the whole answer, the request's body read included (handlers read it whole). The exception is
//! deliberate: the live event stream (`/v1/events/stream`) answers its head at once and then streams
//! for as long as its client listens, so neither cuts it or is held by it; `server.max_stream_clients`
//! bounds the streams instead. Each request can also [`HangUp`] its connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tower::ServiceExt;

use super::problem::Problem;

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub max_connections: usize,
    pub max_requests: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
}

/// Closes the connection of the request it is found on (as an extension), at once. hyper writes an
/// answer only as fast as its client reads, so a streamed answer whose client stopped reading would
/// keep its connection open for as long as the client's TCP stack acknowledges; its handler calls
/// this instead when it gives up on the client.
#[derive(Debug, Clone, Default)]
pub struct HangUp(Arc<Notify>);

impl HangUp {
    pub fn now(&self) {
        self.0.notify_one();
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the open connections finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let request_timeout = limits.request_timeout;
    let turns = Arc::new(Semaphore::new(limits.max_requests));
    let router = router.layer(axum::middleware::from_fn(move |request, next| {
        within(request_timeout, turns.clone(), request, next)
    }));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors, or a connection reset before it was accepted: pause, go on.
                    tracing::warn!(%error, "Cannot accept a connection.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let hang_up = HangUp::default();
        let service = router.clone().map_request({
            let hang_up = hang_up.clone();
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(hang_up.clone());
                request
            }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                ended = connection => if let Err(error) = ended {
                    tracing::debug!(%error, "A connection ended with an error.");
                },
                // Dropping the connection closes it.
                () = hang_up.0.notified() => tracing::debug!("Hung up on a client."),
            }
        });
    }
    graceful.shutdown().await;
}

/// Runs one request when its turn comes (at once for the probes), answering 503 when waiting and
/// running take longer than `limit` (a body that trickles in included: it is read inside the handler).
/// Both end with the answer's head: a streamed body runs on past them (see the module's docs).
async fn within(limit: Duration, turns: Arc<Semaphore>, request: Request, next: Next) -> Response {
    let waits = request.uri().path().starts_with("/v1");
    let run = async move {
        let _turn = if waits {
            turns.acquire_owned().await.ok()
        } else {
            None
        };
        next.run(request).await
    };
    match tokio::time::timeout(limit, run).await {
        Ok(response) => response,
        Err(_) => Problem::unavailable(format!(
            "the request took longer than {limit:?} (server.request_timeout)"
        ))
        .into_response(),
    }
}
