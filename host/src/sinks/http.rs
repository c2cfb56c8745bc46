//! One HTTP sink and its delivery worker. The worker takes due deliveries of the regions this process
//! leads from the outbox in rounds, sends each plant's events in seq order (a failure holds back that
//! plant's later events only), runs up to `max_in_flight` plants at once, and records each round's
//! results in one transaction. A delivery is marked done only after a 2xx, so a crash resends rather
//! than loses. Each request is sent only while its region's lease is still ours, so a deposed leader
//! stops sending before its successor starts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{Notify, watch};

use super::SinkError;
use super::cloudevent;
use crate::config::SinkConfig;
use crate::lease::Leadership;
use crate::store::{Delivery, Retry, Store};

/// Deliveries taken per round.
const ROUND: u32 = 256;

/// Whether a region is still led under the epoch its deliveries were taken under.
type Leads<'a> = dyn Fn(&str) -> bool + Sync + 'a;

/// A configured HTTP endpoint.
#[derive(Debug)]
pub struct HttpSink {
    pub name: String,
    client: reqwest::Client,
    config: SinkConfig,
    wake: Notify,
}

impl HttpSink {
    pub fn new(name: &str, config: &SinkConfig) -> Result<HttpSink, SinkError> {
        let failed = |reason: String| SinkError::Build {
            sink: name.to_owned(),
            reason,
        };
        let mut headers = HeaderMap::new();
        for (key, value) in &config.headers {
            let key = HeaderName::from_bytes(key.as_bytes()).map_err(|e| failed(e.to_string()))?;
            let value = HeaderValue::from_str(value).map_err(|e| failed(e.to_string()))?;
            headers.insert(key, value);
        }
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(cloudevent::CONTENT_TYPE),
        );
        // Set once on the client rather than cloned into every request.
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .pool_max_idle_per_host(config.max_in_flight as usize)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        Ok(HttpSink {
            name: name.to_owned(),
            client,
            config: config.clone(),
            wake: Notify::new(),
        })
    }

    /// Tells the worker that new deliveries may be due.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers until `shutdown` turns true; a round in flight is finished first.
    pub async fn run(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        leadership: Arc<Leadership>,
        poll: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        while !*shutdown.borrow() {
            let epochs: BTreeMap<String, u64> = leadership
                .led()
                .into_iter()
                .map(|(region, fence)| (region, fence.epoch))
                .collect();
            let regions: Vec<String> = epochs.keys().cloned().collect();
            let due = if regions.is_empty() {
                Ok(Vec::new())
            } else {
                store.due_deliveries(&self.name, &regions, ROUND).await
            };
            let due = match due {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(sink = %self.name, %error, "Cannot read due deliveries; retrying.");
                    Vec::new()
                }
            };
            if due.is_empty() {
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let leads = |region: &str| {
                epochs
                    .get(region)
                    .is_some_and(|epoch| leadership.leads(region, *epoch))
            };
            let (delivered, retries) = self.round(due, &leads).await;
            if let Err(error) = store.finish_deliveries(&delivered, &retries).await {
                // Nothing is lost: the rows stay pending and go again (receivers dedupe on the id).
                tracing::warn!(sink = %self.name, %error, "Cannot record a delivery round; it will be resent.");
                tokio::time::sleep(poll).await;
            }
        }
    }

    /// Sends one round: plants in parallel up to `max_in_flight`, each plant's events in order.
    async fn round(&self, due: Vec<Delivery>, leads: &Leads<'_>) -> (Vec<i64>, Vec<Retry>) {
        let mut chains: Vec<Vec<Delivery>> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for delivery in due {
            let slot = *index.entry(delivery.plant_id.clone()).or_insert_with(|| {
                chains.push(Vec::new());
                chains.len() - 1
            });
            chains[slot].push(delivery);
        }
        let results: Vec<(Vec<i64>, Option<Retry>)> = futures_util::stream::iter(chains)
            .map(|chain| self.chain(chain, leads))
            .buffer_unordered(self.config.max_in_flight as usize)
            .collect()
            .await;
        let mut delivered = Vec::new();
        let mut retries = Vec::new();
        for (ids, retry) in results {
            delivered.extend(ids);
            retries.extend(retry);
        }
        (delivered, retries)
    }

    /// One plant's events, in order, stopping at the first failure or when the region's lease is lost
    /// (the rest stay pending for the new leader).
    async fn chain(&self, chain: Vec<Delivery>, leads: &Leads<'_>) -> (Vec<i64>, Option<Retry>) {
        let mut delivered = Vec::with_capacity(chain.len());
        for delivery in chain {
            if !leads(&delivery.region) {
                break;
            }
            match self.send(&delivery).await {
                Ok(()) => delivered.push(delivery.id),
                Err(error) => {
                    let after = self.backoff(delivery.attempts + 1);
                    tracing::debug!(sink = %self.name, seq = delivery.seq, %error, ?after, "A delivery failed; it will be retried.");
                    return (
                        delivered,
                        Some(Retry {
                            id: delivery.id,
                            after,
                            error,
                        }),
                    );
                }
            }
        }
        (delivered, None)
    }

    async fn send(&self, delivery: &Delivery) -> Result<(), String> {
        let body = cloudevent::encode(&delivery.event)
            .map_err(|error| format!("the stored event cannot be encoded: {error}"))?;
        let response = self
            .client
            .post(&self.config.url)
            .body(body)
            .send()
            .await
            .map_err(|error| describe(&error))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        }
    }

    /// Exponential backoff with full jitter: a random delay up to `initial × 2^(attempt-1)`, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .config
            .backoff_initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.config.backoff_max);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// A transport error in a few words: timeouts and refused connections are the common ones.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        format!(
            "cannot connect: {}",
            std::error::Error::source(error).map_or(error.to_string(), |s| s.to_string())
        )
    } else {
        error.to_string()
    }
}
