//! One HTTP sink and its delivery worker. The worker takes due deliveries of the regions this process
//! leads from the outbox in rounds and spreads them over `max_in_flight` lanes by plant, so each
//! plant's events go out in order on one lane while other plants go on in parallel. A lane sends up to
//! `batch_max` events per request; a failure holds back that plant's later events only, until the
//! retry (backoff with full jitter, or the receiver's `Retry-After`), and after `max_attempts` the
//! delivery is a dead letter. A 410 disables the sink for every replica.
//!
//! Results are recorded while the rounds go on, by a recorder that writes whatever has accumulated
//! in one transaction whenever the previous one is done (group commit): a crash resends only what was
//! in flight or not yet recorded, never loses. The next round starts without waiting for the record
//! (its due deliveries pass through [`Unrecorded`], so none goes twice and none overtakes a retry),
//! and the worker runs at most [`UNRECORDED`] events per lane (or eight batches, if more) ahead of
//! the recorder, so a slow database cannot make that unbounded. Each request is sent only while its
//! region's lease is still ours, checked last as the connection takes its body
//! ([`fenced`](super::fenced)), and one in flight is given up when the lease is lost (its grant
//! lapses before another instance can take it), so a deposed leader stops sending before its
//! successor starts.
//!
//! While the sink's health probe fails, no round starts and a lane sends nothing more: deliveries wait
//! without spending attempts, and go the moment the probe succeeds again, retries included.

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::header::CONTENT_TYPE;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use super::SinkError;
use super::cloudevent;
use super::fenced::Epochs;
use super::health::{Gate, Health, Probe};
use super::response::{Failure, describe, refusal};
use super::signing::Signer;
use super::unrecorded::Unrecorded;
use crate::config::{HttpUrl, SinkConfig};
use crate::lease::Leadership;
use crate::store::{
    Attempts, Dead, Delivered, Delivery, OutboxStore, READ_BYTES, Retry, StoreError,
};
use crate::telemetry::metrics::{DELIVERIES, DELIVERY_LATENCY_SECONDS};

/// Deliveries taken per round.
const ROUND: u32 = 1024;

/// Events per lane the worker may have sent whose results are not yet recorded, those in flight
/// included: what a crash can make it send again. Enough for group commit to keep its pace
/// (measured: the drain benchmark is the same with it and without).
const UNRECORDED: usize = 256;

/// How often a request in flight checks that its regions are still led.
const LEASE_CHECK: Duration = Duration::from_millis(50);

/// What the lanes of every round share with the recorder.
struct Sending<'a> {
    /// Where results go to be recorded, with the permits the recorder releases once they are.
    results: &'a mpsc::UnboundedSender<(Attempts, OwnedSemaphorePermit)>,
    /// How far the lanes may run ahead of the recorder, in events.
    ahead: &'a Arc<Semaphore>,
    unrecorded: &'a Unrecorded,
}

/// A configured HTTP endpoint.
#[derive(Debug)]
pub struct HttpSink {
    pub name: String,
    client: reqwest::Client,
    config: SinkConfig,
    signer: Signer,
    /// Events in requests now in flight, for `/v1/sinks`.
    in_flight: AtomicU64,
    health: Health,
}

impl HttpSink {
    pub fn new(name: &str, config: &SinkConfig) -> Result<HttpSink, SinkError> {
        let signer =
            Signer::new(&config.secret.0, |var| std::env::var(var).ok()).map_err(|source| {
                SinkError::Secret {
                    sink: name.to_owned(),
                    source,
                }
            })?;
        // Set once on the client rather than cloned into every request.
        let client = reqwest::Client::builder()
            .default_headers(config.headers.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .pool_max_idle_per_host(config.max_in_flight.get() as usize)
            .build()
            .map_err(|source| SinkError::Client {
                sink: name.to_owned(),
                source,
            })?;
        Ok(HttpSink {
            name: name.to_owned(),
            client,
            config: config.clone(),
            signer,
            in_flight: AtomicU64::new(0),
            health: Health::default(),
        })
    }

    pub fn url(&self) -> &HttpUrl {
        &self.config.url
    }

    /// Events in requests now in flight.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The recent health probes, oldest first; `None` without a `health_url`.
    pub fn health(&self) -> Option<Vec<Probe>> {
        self.config
            .health_url
            .as_ref()
            .map(|_| self.health.recent())
    }

    /// Why deliveries wait for the health probe, if they do.
    pub fn waiting(&self) -> Option<String> {
        self.health.closed()
    }

    /// Probes `health_url`, if there is one, until `shutdown` turns true.
    pub async fn probe(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        if let Some(url) = &self.config.health_url {
            let interval = self.config.probe_interval;
            self.health
                .run(&self.client, url.url().clone(), interval, shutdown)
                .await;
        }
    }

    /// Delivers until `shutdown` turns true: no new round starts, and a round in hand sends nothing
    /// more, lets its requests in flight finish, and records them. A word on `deliveries_due` starts the next
    /// round at once; a round whose read held every due delivery is followed by that word or the poll,
    /// not by another read, which would find only what the lanes just sent.
    pub async fn run(
        self: Arc<Self>,
        store: Arc<dyn OutboxStore>,
        leadership: Arc<Leadership>,
        poll: Duration,
        mut deliveries_due: watch::Receiver<()>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut gate = self.health.watch();
        let unrecorded = Unrecorded::default();
        let (results, recorded) = mpsc::unbounded_channel();
        let lanes = self.config.max_in_flight.get() as usize;
        let ahead = Arc::new(Semaphore::new(
            lanes * UNRECORDED.max(8 * self.config.batch_max.get() as usize),
        ));
        // Rounds go on while the recorder writes the last one's results; once they stop, the
        // recorder writes what is left and ends with the sender.
        let rounds = async {
            let results = results;
            while !*shutdown.borrow() {
                if *gate.borrow_and_update() != Gate::Open {
                    self.wait_for_health(&*store, &mut gate, &mut shutdown)
                        .await;
                    continue;
                }
                let epochs = Epochs::now(&leadership);
                let recorded = unrecorded.recorded();
                let pending = unrecorded.before_read();
                // Taken before the read: a delivery the read cannot see was written after this, and
                // its word wakes the wait below.
                deliveries_due.mark_unchanged();
                let (due, complete) = match self.due(&*store, &epochs).await {
                    Ok(due) => {
                        let complete = read_everything(&due);
                        (pending.due(due), complete)
                    }
                    Err(error) => {
                        tracing::warn!(sink = %self.name, %error, "Cannot read due deliveries; retrying.");
                        (Vec::new(), true)
                    }
                };
                if !due.is_empty() {
                    let sending = Sending {
                        results: &results,
                        ahead: &ahead,
                        unrecorded: &unrecorded,
                    };
                    self.round(&*store, due, &epochs, &shutdown, &sending).await;
                    if !complete {
                        continue;
                    }
                }
                // The read held every due delivery: what becomes due next is a new one (the feed's
                // word), a retry or another leader's (the poll). A read cut short by unrecorded
                // deliveries may hide due ones behind them: read again once a record ends.
                tokio::select! {
                    Ok(()) = deliveries_due.changed() => {}
                    () = recorded, if !complete => {}
                    () = tokio::time::sleep(poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
        };
        tokio::join!(rounds, self.record(&*store, recorded, &unrecorded));
    }

    /// Waits while the health probe fails; when it succeeds again, the deliveries waiting for a retry
    /// are due at once: the receiver's outage, not the deliveries, was the cause.
    async fn wait_for_health(
        &self,
        store: &dyn OutboxStore,
        gate: &mut watch::Receiver<Gate>,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        if let Some(reason) = self.health.closed() {
            tracing::warn!(sink = %self.name, %reason, "Deliveries wait for the health probe.");
        }
        tokio::select! {
            _ = gate.changed() => {}
            _ = shutdown.changed() => return,
        }
        if *gate.borrow() == Gate::Open {
            tracing::info!(sink = %self.name, "The health probe succeeds again; deliveries resume.");
            if let Err(error) = store.reschedule_pending(&self.name).await {
                tracing::warn!(sink = %self.name, %error, "Cannot make waiting retries due now; they go on their schedule.");
            }
        }
    }

    /// The deliveries due now; none when no region is led or the sink is disabled.
    async fn due(
        &self,
        store: &dyn OutboxStore,
        epochs: &Epochs,
    ) -> Result<Vec<Delivery>, StoreError> {
        let regions = epochs.regions();
        if regions.is_empty() {
            return Ok(Vec::new());
        }
        store.due_deliveries(&self.name, &regions, ROUND).await
    }

    /// Sends one round over the lanes, handing the results to the recorder as they come.
    async fn round(
        &self,
        store: &dyn OutboxStore,
        due: Vec<Delivery>,
        epochs: &Epochs,
        shutdown: &watch::Receiver<bool>,
        sending: &Sending<'_>,
    ) {
        let stop = AtomicBool::new(false);
        let lanes = (self.lanes(due).into_iter())
            .map(|lane| self.lane(store, lane, epochs, sending, &stop, shutdown));
        futures_util::future::join_all(lanes).await;
    }

    /// Deals the deliveries to `max_in_flight` lanes by plant, keeping their order.
    fn lanes(&self, due: Vec<Delivery>) -> Vec<VecDeque<Delivery>> {
        let count = self.config.max_in_flight.get() as usize;
        let hasher = std::hash::RandomState::new();
        let mut lanes = vec![VecDeque::new(); count];
        for delivery in due {
            let lane = hasher.hash_one(&delivery.plant_id) as usize % count;
            lanes[lane].push_back(delivery);
        }
        lanes.retain(|lane| !lane.is_empty());
        lanes
    }

    /// One lane: requests of up to `batch_max` events, one at a time, in order; a plant whose event
    /// failed is held back for the rest of the round.
    async fn lane(
        &self,
        store: &dyn OutboxStore,
        mut queue: VecDeque<Delivery>,
        epochs: &Epochs,
        sending: &Sending<'_>,
        stop: &AtomicBool,
        shutdown: &watch::Receiver<bool>,
    ) {
        let mut held_back = HashSet::new();
        while !stop.load(Ordering::Relaxed) && !*shutdown.borrow() && self.health.closed().is_none()
        {
            let mut batch = Vec::new();
            while batch.len() < self.config.batch_max.get() as usize {
                let Some(delivery) = queue.pop_front() else {
                    break;
                };
                // Left pending: for the retry, or for the region's new leader.
                if !held_back.contains(&delivery.plant_id) && epochs.leads(&delivery.region) {
                    batch.push(delivery);
                }
            }
            if batch.is_empty() {
                break;
            }
            // Released by the recorder once these results are written.
            let Ok(permit) = sending
                .ahead
                .clone()
                .acquire_many_owned(batch.len() as u32)
                .await
            else {
                break;
            };
            // Biased, so the lease is checked again before the request is first polled: waiting for
            // the recorder above can outlast the lease (a paused or starved process). The body
            // checks it once more as it is written.
            let sent = tokio::select! {
                biased;
                () = lost_lease(&batch, epochs) => None,
                sent = self.send(&batch, epochs) => Some(sent),
            };
            // A request that failed once the lease was lost (its body refused) failed for the
            // lease, not for the receiver.
            let Some(sent) = sent.filter(|sent| sent.is_ok() || leads_all(&batch, epochs)) else {
                // The new leader sends these again; a deposed leader records nothing.
                tracing::warn!(sink = %self.name, events = batch.len(), "Gave up a request in flight: the region's lease was lost.");
                break;
            };
            let attempts = match sent {
                Ok(()) => Attempts {
                    delivered: self.delivered(&batch),
                    ..Attempts::default()
                },
                Err(failure) => {
                    if failure.gone {
                        stop.store(true, Ordering::Relaxed);
                        self.disable(store, &failure.error).await;
                    }
                    self.failed(&batch, &failure, &mut held_back)
                }
            };
            sending.unrecorded.add(&batch, &attempts);
            // The recorder outlives the rounds, so this cannot fail.
            let _ = sending.results.send((attempts, permit));
        }
    }

    /// Counts a delivered batch, and each event's time from its commit to now: its latency, for the
    /// metrics and, recorded with it, the statistics.
    fn delivered(&self, batch: &[Delivery]) -> Vec<Delivered> {
        let sink = self.name.clone();
        metrics::counter!(DELIVERIES, "sink" => sink.clone(), "outcome" => "delivered")
            .increment(batch.len() as u64);
        let histogram = metrics::histogram!(DELIVERY_LATENCY_SECONDS, "sink" => sink);
        let now = SystemTime::now();
        batch
            .iter()
            .map(|delivery| {
                let latency = humantime::parse_rfc3339(&delivery.committed_at)
                    .ok()
                    .map(|committed| now.duration_since(committed).unwrap_or_default());
                if let Some(latency) = latency {
                    histogram.record(latency.as_secs_f64());
                }
                Delivered {
                    id: delivery.id,
                    latency,
                }
            })
            .collect()
    }

    /// The retries and dead letters of a failed request.
    fn failed(
        &self,
        batch: &[Delivery],
        failure: &Failure,
        held_back: &mut HashSet<String>,
    ) -> Attempts {
        let mut attempts = Attempts::default();
        let outcome = |outcome: &'static str| metrics::counter!(DELIVERIES, "sink" => self.name.clone(), "outcome" => outcome);
        outcome("failed").increment(batch.len() as u64);
        for delivery in batch {
            let attempt = delivery.attempts + 1;
            tracing::debug!(sink = %self.name, seq = delivery.seq, attempt, error = %failure.error, "A delivery failed.");
            if attempt >= self.config.max_attempts.get() && !failure.gone {
                tracing::warn!(sink = %self.name, seq = delivery.seq, attempts = attempt, error = %failure.error, "A delivery is a dead letter.");
                outcome("dead").increment(1);
                attempts.dead.push(Dead {
                    id: delivery.id,
                    error: failure.error.clone(),
                });
            } else {
                held_back.insert(delivery.plant_id.clone());
                // A receiver's Retry-After is honoured up to backoff_max: a longer one would hold
                // every later event of the plant behind this one for as long.
                let after = (failure.retry_after).map_or_else(
                    || self.backoff(attempt),
                    |asked| asked.min(self.config.backoff_max),
                );
                attempts.retries.push(Retry {
                    id: delivery.id,
                    after,
                    error: failure.error.clone(),
                });
            }
        }
        attempts
    }

    async fn disable(&self, store: &dyn OutboxStore, reason: &str) {
        tracing::warn!(sink = %self.name, %reason, "The receiver is gone; the sink is disabled until POST /v1/sinks/{}/enable.", self.name);
        if let Err(error) = store.disable_sink(&self.name, reason).await {
            tracing::error!(sink = %self.name, %error, "Cannot record that the sink is disabled.");
        }
    }

    /// Writes results as they arrive: each write takes everything that accumulated during the last.
    async fn record(
        &self,
        store: &dyn OutboxStore,
        mut recorded: mpsc::UnboundedReceiver<(Attempts, OwnedSemaphorePermit)>,
        unrecorded: &Unrecorded,
    ) {
        while let Some((mut attempts, permit)) = recorded.recv().await {
            let mut permits = vec![permit];
            while let Ok((more, permit)) = recorded.try_recv() {
                attempts.extend(more);
                permits.push(permit);
            }
            // Unrecorded results are not lost: the deliveries stay pending and go again.
            if let Err(error) = store.record_attempts(&self.name, &attempts).await {
                tracing::warn!(sink = %self.name, %error, "Cannot record delivery results; they will be resent.");
            }
            unrecorded.forget(&attempts);
            drop(permits);
        }
    }

    /// One request with the batch's events: a single CloudEvent, or an array of them.
    async fn send(&self, batch: &[Delivery], epochs: &Epochs) -> Result<(), Failure> {
        let events = batch
            .iter()
            .map(|delivery| {
                cloudevent::encode(
                    &delivery.event,
                    delivery.pipeline.as_deref(),
                    delivery.traceparent.as_deref(),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| Failure::new(format!("a stored event cannot be encoded: {error}")))?;
        let (body, content_type, id) = match (batch, events.as_slice()) {
            ([only], [event]) => (
                event.clone(),
                cloudevent::CONTENT_TYPE,
                only.seq.to_string(),
            ),
            _ => (
                format!("[{}]", events.join(",")),
                cloudevent::BATCH_CONTENT_TYPE,
                format!("{}-{}", batch[0].seq, batch[batch.len() - 1].seq),
            ),
        };
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as i64);
        let mut request = self
            .client
            .post(self.config.url.url().clone())
            .header(CONTENT_TYPE, content_type)
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(trace) = shared_trace(batch) {
            request = request.header("traceparent", trace);
        }
        if self.signer.is_signing() {
            request = request.header(
                "webhook-signature",
                self.signer.sign(&id, timestamp, body.as_bytes()),
            );
        }
        let counted = InFlight::count(&self.in_flight, batch.len() as u64);
        let body = epochs.fence(batch.iter().map(|delivery| &*delivery.region), body);
        let response = request.body(reqwest::Body::wrap(body)).send().await;
        drop(counted);
        match response {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(refusal(&response)),
            Err(error) => Err(Failure::new(describe(error))),
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

/// The `traceparent` header of a request: the trace of its events' write, when they share one (a single
/// event, or a batch from one write); each event carries its own in the envelope too.
fn shared_trace(batch: &[Delivery]) -> Option<&str> {
    let first = batch.first()?.traceparent.as_deref()?;
    batch
        .iter()
        .all(|delivery| delivery.traceparent.as_deref() == Some(first))
        .then_some(first)
}

/// Whether a read of due deliveries returned every one there was: fewer than a round, and short of
/// the store's byte budget (counted in bytes here, in characters by the store, so a read this calls
/// cut may not have been, never the other way).
fn read_everything(due: &[Delivery]) -> bool {
    let bytes: u64 = due.iter().map(|delivery| delivery.event.len() as u64).sum();
    due.len() < ROUND as usize && bytes < READ_BYTES
}

/// Completes once a region of `batch` is no longer led, so that a request in flight ends with its
/// grant, which lapses before the lease can be taken over, instead of running on for the sink's whole
/// `timeout`.
async fn lost_lease(batch: &[Delivery], epochs: &Epochs) {
    while leads_all(batch, epochs) {
        tokio::time::sleep(LEASE_CHECK).await;
    }
}

fn leads_all(batch: &[Delivery], epochs: &Epochs) -> bool {
    epochs.leads_every(batch.iter().map(|delivery| &*delivery.region))
}

/// Events counted as in flight for as long as this lives, so that a request given up half-way (its
/// future dropped) is no longer counted either.
struct InFlight<'a> {
    gauge: &'a AtomicU64,
    events: u64,
}

impl<'a> InFlight<'a> {
    fn count(gauge: &'a AtomicU64, events: u64) -> InFlight<'a> {
        gauge.fetch_add(events, Ordering::Relaxed);
        InFlight { gauge, events }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.gauge.fetch_sub(self.events, Ordering::Relaxed);
    }
}
