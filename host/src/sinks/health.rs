//! Health probes: a sink with `health_url` is probed with a GET every `probe_interval`, and the last
//! probes (status or error, response time) are kept in memory for `/v1/sinks`, so an operator sees a
//! receiver degrading before deliveries start failing.
//!
//! The probes also gate the sink: while the latest probe fails (no answer, or anything but a 2xx),
//! its deliveries wait instead of spending attempts on a receiver that says it is down, and the
//! moment a probe succeeds again they go.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::watch;

/// Probes kept per sink.
const KEPT: usize = 60;

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Probe {
    pub at: String,
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    /// Why there was no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub response_ms: f64,
}

impl Probe {
    fn failure(&self) -> Option<String> {
        match (self.status, &self.error) {
            (Some(status), _) if (200..300).contains(&status) => None,
            (Some(status), _) => Some(reqwest::StatusCode::from_u16(status).map_or_else(
                |_| format!("HTTP {status}"),
                |status| format!("HTTP {status}"),
            )),
            (None, error) => Some(error.clone().unwrap_or_default()),
        }
    }
}

/// Whether deliveries may go: open until a probe fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Gate {
    #[default]
    Open,
    /// Probes fail: deliveries wait.
    Closed {
        /// When the first of the failing probes ran.
        since: String,
        /// The latest probe's failure.
        reason: String,
    },
}

/// The recent probes of one sink, oldest first, and the gate they set.
#[derive(Debug, Default)]
pub struct Health {
    probes: Mutex<VecDeque<Probe>>,
    gate: watch::Sender<Gate>,
}

impl Health {
    pub fn recent(&self) -> Vec<Probe> {
        self.probes
            .lock()
            .map(|probes| probes.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Why deliveries wait, if they do.
    pub fn closed(&self) -> Option<String> {
        match &*self.gate.borrow() {
            Gate::Open => None,
            Gate::Closed { since, reason } => {
                Some(format!("the health probe fails since {since}: {reason}"))
            }
        }
    }

    /// Told whenever the gate opens or closes.
    pub fn watch(&self) -> watch::Receiver<Gate> {
        self.gate.subscribe()
    }

    fn push(&self, probe: Probe) {
        let failure = probe.failure();
        let at = probe.at.clone();
        if let Ok(mut probes) = self.probes.lock() {
            if probes.len() == KEPT {
                probes.pop_front();
            }
            probes.push_back(probe);
        }
        self.gate
            .send_if_modified(|gate| match (failure, &mut *gate) {
                (None, Gate::Open) => false,
                (None, Gate::Closed { .. }) => {
                    *gate = Gate::Open;
                    true
                }
                (Some(failure), Gate::Closed { reason, .. }) => {
                    *reason = failure;
                    false
                }
                (Some(reason), Gate::Open) => {
                    *gate = Gate::Closed { since: at, reason };
                    true
                }
            });
    }

    /// Probes `url` every `interval` until `shutdown` turns true.
    pub async fn run(
        &self,
        client: &reqwest::Client,
        url: reqwest::Url,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        while !*shutdown.borrow() {
            let started = Instant::now();
            let answer = client.get(url.clone()).send().await;
            let response_ms = started.elapsed().as_secs_f64() * 1000.0;
            let at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
            self.push(match answer {
                Ok(response) => Probe {
                    at,
                    status: Some(response.status().as_u16()),
                    error: None,
                    response_ms,
                },
                Err(error) => Probe {
                    at,
                    status: None,
                    error: Some(super::response::describe(error)),
                    response_ms,
                },
            });
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
