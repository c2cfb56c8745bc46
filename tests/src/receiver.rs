//! A real HTTP receiver on an ephemeral port that records every request and can be told to fail, so
//! tests can watch what a sink really sends.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;
use tokio::sync::Notify;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub at: std::time::Instant,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Received {
    /// The CloudEvent `id` (the journal seq) as a number.
    pub fn seq(&self) -> u64 {
        self.body["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .unwrap_or(0)
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
}

#[derive(Debug, Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// Statuses to answer with, in order, before answering 204 again.
    script: Mutex<VecDeque<u16>>,
    arrived: Notify,
}

/// A recording receiver, stopped when dropped.
#[derive(Debug)]
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let shared = Arc::new(Shared::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let app = Router::new().fallback(record).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, shared, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with these statuses (failed requests are recorded too).
    pub fn answer_next(&self, statuses: &[u16]) {
        self.shared.script.lock().unwrap().extend(statuses);
    }

    /// Everything received so far whose answer was a success.
    pub fn accepted(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until `count` requests were accepted, or panics after `limit`.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.arrived.notified();
            let accepted = self.accepted();
            if accepted.len() >= count {
                return accepted;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {count} events within {limit:?}, got {}: {accepted:#?}",
                    accepted.len()
                );
            }
        }
    }

    /// Waits `quiet` and returns what arrived, for asserting that nothing (more) comes.
    pub async fn settle(&self, quiet: Duration) -> Vec<Received> {
        tokio::time::sleep(quiet).await;
        self.accepted()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let scripted = shared.script.lock().unwrap().pop_front();
    if let Some(status) = scripted {
        return StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.received.lock().unwrap().push(Received {
        at: std::time::Instant::now(),
        path: uri.path().to_owned(),
        headers,
        body,
    });
    shared.arrived.notify_waiters();
    StatusCode::NO_CONTENT
}
