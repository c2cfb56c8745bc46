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
    /// The request body as sent (a batch's whole array), for checking signatures.
    pub raw: Bytes,
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

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// The status (429 or 503) with `Retry-After: SECONDS`.
    RetryAfter(u16, u64),
    /// 302 to another path of this receiver.
    Redirect,
    /// Waits this long, then answers 204 (past the sink's timeout, the sink gave up before).
    Hang(Duration),
}

/// One request, accepted or not, as (arrival, path, CloudEvent ids).
pub type Attempt = (std::time::Instant, String, Vec<u64>);

#[derive(Debug, Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    attempts: Mutex<Vec<Attempt>>,
    /// Answers to give, in order, before answering 204 again.
    script: Mutex<VecDeque<Answer>>,
    /// The status of every request once the script is done; 204 and recorded when `None`.
    otherwise: Mutex<Option<u16>>,
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

    /// Answers the next requests with these statuses.
    pub fn answer_next(&self, statuses: &[u16]) {
        let answers: Vec<Answer> = statuses.iter().map(|s| Answer::Status(*s)).collect();
        self.script(&answers);
    }

    /// Answers the next requests so, in order, then 204 again.
    pub fn script(&self, answers: &[Answer]) {
        self.shared.script.lock().unwrap().extend(answers);
    }

    /// Answers every request after the script with `status`, or accepts them again with `None`.
    pub fn answer_all(&self, status: Option<u16>) {
        *self.shared.otherwise.lock().unwrap() = status;
    }

    /// Every request so far, accepted or not.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.attempts.lock().unwrap().clone()
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
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let raw = body;
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let events: Vec<Value> = match &body {
        Value::Array(events) => events.clone(),
        event => vec![event.clone()],
    };
    let ids = events
        .iter()
        .filter_map(|event| event["id"].as_str().and_then(|id| id.parse().ok()))
        .collect();
    shared
        .attempts
        .lock()
        .unwrap()
        .push((std::time::Instant::now(), uri.path().to_owned(), ids));
    let scripted = shared.script.lock().unwrap().pop_front();
    match scripted {
        Some(Answer::Status(status)) => {
            return StatusCode::from_u16(status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
        }
        Some(Answer::RetryAfter(status, seconds)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return (status, [("retry-after", seconds.to_string())]).into_response();
        }
        Some(Answer::Redirect) => {
            return (StatusCode::FOUND, [("location", "/elsewhere")]).into_response();
        }
        Some(Answer::Hang(duration)) => tokio::time::sleep(duration).await,
        None => {
            if let Some(status) = *shared.otherwise.lock().unwrap() {
                return StatusCode::from_u16(status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                    .into_response();
            }
        }
    }
    let mut received = shared.received.lock().unwrap();
    for event in events {
        received.push(Received {
            at: std::time::Instant::now(),
            path: uri.path().to_owned(),
            headers: headers.clone(),
            raw: raw.clone(),
            body: event,
        });
    }
    drop(received);
    shared.arrived.notify_waiters();
    StatusCode::NO_CONTENT.into_response()
}
