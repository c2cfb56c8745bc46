//! The feed: reads the unprocessed journal entries of the regions this process leads, in `seq` order,
//! runs each through the plugin pipeline, and writes the outcomes and the resulting deliveries in one
//! transaction fenced by those regions' leases, so a change is either wholly processed by its current
//! leader or not at all. While a full batch is being recorded the next one is read, leaving out the
//! entries in flight, and used only once that record has committed and the same leases lead the same
//! regions: a drain waits on one round trip per batch instead of two. On taking a region's lease it
//! journals the region's snapshot first, as `feed.snapshot` says. A plugin that halts the feed stops
//! that event's region at it, retried with backoff until it passes: nothing of that region overtakes
//! it, and the other regions flow on. A backfill's entries pass the filters and enrichers like any
//! other, and go to the backfill's sinks instead of where the routers would send them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{FeedConfig, SnapshotMode};
use crate::domain::{Change, Event, OutcomeKind};
use crate::lease::Leadership;
use crate::pipeline::{LivePipeline, Pipeline, Verdict};
use crate::store::{BackfillStore, Fence, JournalStore, Processed, StoreError};
use crate::telemetry::metrics as metrics_names;

/// Longest the feed waits for a failed new version to be rolled back before it goes on regardless.
const ROLLBACK_WAIT: Duration = Duration::from_secs(1);

/// Longest wait between retries of a halted event.
const HALT_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where a region stopped because a plugin asked the feed to halt.
#[derive(Debug)]
struct Halted {
    seq: u64,
    region: String,
    plugin: String,
    reason: String,
}

/// A halted region: read again from its halted event once `until` has come.
#[derive(Debug)]
struct Halt {
    until: tokio::time::Instant,
    backoff: Duration,
}

/// A batch read while the one before it was being recorded, for the regions as they were led then.
#[derive(Debug)]
struct Ahead {
    led: Vec<(String, u64)>,
    regions: Vec<String>,
    changes: Vec<Change>,
    started: std::time::Instant,
}

/// Everything the feed loop needs.
#[derive(Debug)]
pub struct Feed {
    pub store: Arc<dyn JournalStore>,
    /// Where a backfill's entries go.
    pub backfills: Arc<dyn BackfillStore>,
    /// Read once per batch: every event of a batch is processed by the same snapshot.
    pub pipeline: Arc<LivePipeline>,
    /// Told after every batch that wrote deliveries, so the sink workers look at once rather than at
    /// their next poll.
    pub deliveries_due: Arc<watch::Sender<()>>,
    pub leadership: Arc<Leadership>,
    pub config: FeedConfig,
}

impl Feed {
    /// Feeds until `shutdown` turns true; the batch in hand is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut halts: BTreeMap<String, Halt> = BTreeMap::new();
        let mut grants = self.leadership.subscribe();
        // The epoch each region's snapshot was settled under: once per acquisition.
        let mut snapshotted = BTreeMap::new();
        let mut written = self.store.change_signal();
        let mut ahead: Option<Ahead> = None;
        let limit = self.config.batch_size.get();
        while !*shutdown.borrow() {
            let led = self.leadership.led();
            if led.is_empty() {
                tokio::select! {
                    _ = grants.changed() => {}
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            self.snapshot(&led, &mut snapshotted).await;
            let now = tokio::time::Instant::now();
            let regions: Vec<String> = (led.iter())
                .map(|(region, _)| region.clone())
                .filter(|region| halts.get(region).is_none_or(|halt| halt.until <= now))
                .collect();
            // The soonest a halted region is due again, which bounds every wait below.
            let next_halt_retry = (halts.values())
                .map(|halt| halt.until)
                .filter(|until| *until > now)
                .min();
            let wait = next_halt_retry.map_or(self.config.poll_interval, |until| {
                (until - now).min(self.config.poll_interval)
            });
            if regions.is_empty() {
                self.pause(wait, &mut shutdown).await;
                continue;
            }
            // A batch read ahead holds only while the same leases lead the same regions.
            let (changes, started) = match ahead
                .take()
                .filter(|ahead| ahead.led == epochs(&led) && ahead.regions == regions)
            {
                Some(ahead) => (ahead.changes, ahead.started),
                None => {
                    let started = std::time::Instant::now();
                    match self.store.unprocessed_changes(&regions, limit, &[]).await {
                        Ok(changes) => (changes, started),
                        Err(error) => {
                            tracing::warn!(%error, "Cannot read the journal; retrying.");
                            self.pause(self.config.poll_interval, &mut shutdown).await;
                            continue;
                        }
                    }
                }
            };
            if changes.is_empty() {
                tokio::select! {
                    () = written.wait(wait) => {}
                    _ = grants.changed() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let backfill_sinks = match self.backfill_sinks(&changes).await {
                Ok(sinks) => sinks,
                Err(error) => {
                    tracing::warn!(%error, "Cannot read the sinks of a backfill; retrying.");
                    self.pause(self.config.poll_interval, &mut shutdown).await;
                    continue;
                }
            };
            let read = changes.len();
            let pipeline = self.pipeline.load_full();
            let used = pipeline.clone();
            let (processed, stopped) = match tokio::task::spawn_blocking(move || {
                process(&pipeline, changes, &backfill_sinks)
            })
            .await
            {
                Ok(result) => result,
                Err(error) => {
                    tracing::error!(%error, "The pipeline task failed; retrying the batch.");
                    self.pause(self.config.poll_interval, &mut shutdown).await;
                    continue;
                }
            };
            if !processed.is_empty() {
                let fences: Vec<Fence> = led
                    .iter()
                    .filter(|(region, _)| processed.iter().any(|p| p.region == *region))
                    .map(|(_, fence)| fence.clone())
                    .collect();
                // A full batch that ran whole suggests more waiting: the next is read while this one
                // is recorded. Not after a halt or a rollback, whose region's later entries must wait.
                let read_ahead = processed.len() == read && read == limit as usize;
                let next_started = std::time::Instant::now();
                let (recorded, next) =
                    tokio::join!(self.store.record_processed(&processed, &fences), async {
                        if read_ahead {
                            let in_flight: Vec<u64> =
                                processed.iter().map(|done| done.seq).collect();
                            Some(
                                self.store
                                    .unprocessed_changes(&regions, limit, &in_flight)
                                    .await,
                            )
                        } else {
                            None
                        }
                    });
                match recorded {
                    Ok(()) => {
                        self.deliveries_due.send_replace(());
                        count(&processed, started.elapsed());
                        // It left out this batch's entries, now recorded; an empty or failed
                        // read is made again as a plain one.
                        if let Some(Ok(changes)) = next
                            && !changes.is_empty()
                        {
                            ahead = Some(Ahead {
                                led: epochs(&led),
                                regions: regions.clone(),
                                changes,
                                started: next_started,
                            });
                        }
                    }
                    Err(StoreError::Fenced { lease }) => {
                        self.lost(&led, &lease);
                        continue;
                    }
                    Err(error) => {
                        // Not recorded means not processed: the batch runs again.
                        tracing::warn!(%error, "Cannot record a processed batch; it will run again.");
                        self.pause(self.config.poll_interval, &mut shutdown).await;
                        continue;
                    }
                }
            }
            if used.condemned() {
                ahead = None;
                self.wait_for_rollback(&used).await;
            }
            // A region that went through is no longer halted; one that stopped waits longer each time.
            for done in &processed {
                halts.remove(&done.region);
            }
            for Halted {
                seq,
                region,
                plugin,
                reason,
            } in stopped
            {
                let backoff = halts
                    .get(&region)
                    .map_or(self.config.poll_interval, |halt| {
                        (halt.backoff * 2).min(HALT_BACKOFF_MAX)
                    });
                tracing::warn!(seq, %region, %plugin, %reason, retry_in = ?backoff, "The region's feed is halted at an event a plugin failed on; the other regions flow on.");
                let until = tokio::time::Instant::now() + backoff;
                halts.insert(region, Halt { until, backoff });
            }
        }
    }

    /// Journals a `snapshot` entry per plant of each newly led region, as `feed.snapshot` says, before
    /// the region's changes are fed. A region whose snapshot fails is tried again on the next round.
    async fn snapshot(&self, led: &[(String, Fence)], snapshotted: &mut BTreeMap<String, u64>) {
        let only_first = match self.config.snapshot {
            SnapshotMode::Never => return,
            SnapshotMode::OnFirstLease => true,
            SnapshotMode::OnEveryLease => false,
        };
        for (region, fence) in led {
            if snapshotted.get(region) == Some(&fence.epoch) {
                continue;
            }
            match self.store.snapshot(region, only_first, fence).await {
                Ok(plants) => {
                    snapshotted.insert(region.clone(), fence.epoch);
                    if plants > 0 {
                        tracing::info!(region, plants, "Journaled a snapshot of the region.");
                    }
                }
                Err(StoreError::Fenced { lease }) => self.lost(led, &lease),
                Err(error) => {
                    tracing::error!(region, %error, "Cannot take the region's snapshot; retrying.")
                }
            }
        }
    }

    /// The sinks of each backfill whose entries are among `changes`.
    async fn backfill_sinks(
        &self,
        changes: &[Change],
    ) -> Result<BTreeMap<i64, Vec<String>>, StoreError> {
        let mut ids: Vec<i64> = changes.iter().filter_map(|c| c.backfill).collect();
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(self
            .backfills
            .backfill_sinks(&ids)
            .await?
            .into_iter()
            .collect())
    }

    /// The database refused a write fenced by `lease`: another instance leads that region now.
    fn lost(&self, led: &[(String, Fence)], lease: &str) {
        if let Some((region, fence)) = led.iter().find(|(_, fence)| fence.lease == lease) {
            self.leadership.lose(region, fence.epoch);
        }
    }

    /// Waits, briefly, for the folder to replace a snapshot whose new version failed its probation, so
    /// that no further event runs on it.
    async fn wait_for_rollback(&self, condemned: &Arc<Pipeline>) {
        let deadline = tokio::time::Instant::now() + ROLLBACK_WAIT;
        while Arc::ptr_eq(&self.pipeline.load_full(), condemned)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn pause(&self, duration: Duration, shutdown: &mut watch::Receiver<bool>) {
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Each led region with the epoch of its lease.
fn epochs(led: &[(String, Fence)]) -> Vec<(String, u64)> {
    (led.iter())
        .map(|(region, fence)| (region.clone(), fence.epoch))
        .collect()
}

/// The recorded batch in the metrics: its duration, and its entries by region and outcome.
fn count(processed: &[Processed], elapsed: Duration) {
    metrics::histogram!(metrics_names::FEED_BATCH_SECONDS).record(elapsed.as_secs_f64());
    let mut counts: BTreeMap<(&str, &'static str), u64> = BTreeMap::new();
    for done in processed {
        *counts
            .entry((&done.region, done.result.as_str()))
            .or_default() += 1;
    }
    for ((region, outcome), events) in counts {
        metrics::counter!(metrics_names::FEED_EVENTS, "region" => region.to_owned(), "outcome" => outcome)
            .increment(events);
    }
}

/// Runs a batch through the pipeline; a region stops before an event that halts it, and none of its
/// later events in the batch is run. A backfill's entries go to its sinks, from `backfill_sinks`.
fn process(
    pipeline: &Pipeline,
    changes: Vec<Change>,
    backfill_sinks: &BTreeMap<i64, Vec<String>>,
) -> (Vec<Processed>, Vec<Halted>) {
    let mut processed = Vec::with_capacity(changes.len());
    let mut stopped: Vec<Halted> = Vec::new();
    for change in changes {
        // A new version just failed its probation: the rest of the batch waits for the rollback.
        if pipeline.condemned() {
            break;
        }
        if stopped.iter().any(|halted| halted.region == change.region) {
            continue;
        }
        let seq = change.seq;
        let plant_id = change.plant_id.clone();
        let region = change.region.clone();
        let record = |result, plugin, reason, event: Option<&Event>, sinks| Processed {
            seq,
            plant_id: plant_id.clone(),
            region: region.clone(),
            result,
            plugin,
            reason,
            event: event.map(encode),
            sinks,
            pipeline: pipeline.id().to_owned(),
        };
        let verdict = match change.backfill {
            Some(backfill) => {
                let sinks = backfill_sinks.get(&backfill).map_or(&[][..], Vec::as_slice);
                pipeline.run_to(Event::from(change), sinks)
            }
            None => pipeline.run(Event::from(change)),
        };
        processed.push(match verdict {
            Verdict::Deliver { event, sinks } => record(
                OutcomeKind::delivered_to(&sinks),
                None,
                None,
                Some(&event),
                sinks,
            ),
            Verdict::Filtered { plugin } => {
                record(OutcomeKind::Filtered, Some(plugin), None, None, Vec::new())
            }
            Verdict::Failed {
                event,
                plugin,
                reason,
            } => record(
                OutcomeKind::Failed,
                Some(plugin),
                Some(reason),
                Some(&event),
                Vec::new(),
            ),
            Verdict::Halt { plugin, reason } => {
                stopped.push(Halted {
                    seq,
                    region: region.clone(),
                    plugin,
                    reason,
                });
                continue;
            }
        });
    }
    (processed, stopped)
}

/// The event as its JSON `data` object. Serializing these plain types cannot fail; non-finite numbers
/// an enricher may return become null.
fn encode(event: &Event) -> String {
    serde_json::to_string(event).unwrap_or_else(|error| {
        tracing::error!(seq = event.seq, %error, "An event could not be serialized.");
        String::from("null")
    })
}
