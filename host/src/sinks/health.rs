//! Health probes: a sink with `health_url` is probed with a GET every `probe_interval`, and the last
//! probes (status or error, response time) are kept in memory for `/v1/sinks`, so an operator sees a
//! receiver degrading before deliveries start failing.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::watch;

/// Probes kept per sink.
const KEPT: usize = 60;

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    pub at: String,
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    /// Why there was no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub response_ms: f64,
}

/// The recent probes of one sink, oldest first.
#[derive(Debug, Default)]
pub struct Health {
    probes: Mutex<VecDeque<Probe>>,
}

impl Health {
    pub fn recent(&self) -> Vec<Probe> {
        self.probes
            .lock()
            .map(|probes| probes.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn push(&self, probe: Probe) {
        if let Ok(mut probes) = self.probes.lock() {
            if probes.len() == KEPT {
                probes.pop_front();
            }
            probes.push_back(probe);
        }
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
