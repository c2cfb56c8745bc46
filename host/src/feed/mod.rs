//! The feed: reads unprocessed journal entries in `seq` order, runs each through the plugin pipeline,
//! and writes the outcomes and the resulting deliveries in one transaction, so a change is either
//! wholly processed or not at all. A plugin that halts the feed stops it at that event, which is
//! retried with backoff until it passes: nothing behind it overtakes it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{FeedConfig, SnapshotMode};
use crate::pipeline::{Event, Pipeline, Verdict};
use crate::sinks::Sinks;
use crate::store::{Change, OutcomeKind, Processed, Store};

/// Longest wait between retries of a halted event.
const HALT_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The snapshot scope of a single feed over every region.
const SCOPE: &str = "*";

/// Where a batch stopped because a plugin asked the feed to halt.
#[derive(Debug)]
struct Halted {
    seq: u64,
    plugin: String,
    reason: String,
}

/// Everything the feed loop needs.
#[derive(Debug)]
pub struct Feed {
    pub store: Arc<dyn Store>,
    pub pipeline: Arc<Pipeline>,
    pub sinks: Arc<Sinks>,
    pub config: FeedConfig,
}

impl Feed {
    /// Feeds until `shutdown` turns true; the batch in hand is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut halt_backoff = self.config.poll_interval;
        while !*shutdown.borrow() {
            let changes = match self.store.unprocessed_changes(self.config.batch_size).await {
                Ok(changes) => changes,
                Err(error) => {
                    tracing::warn!(%error, "Cannot read the journal; retrying.");
                    self.pause(self.config.poll_interval, &mut shutdown).await;
                    continue;
                }
            };
            if changes.is_empty() {
                tokio::select! {
                    () = self.store.wait_for_changes(self.config.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let pipeline = self.pipeline.clone();
            let (processed, halted) =
                match tokio::task::spawn_blocking(move || process(&pipeline, changes)).await {
                    Ok(result) => result,
                    Err(error) => {
                        tracing::error!(%error, "The pipeline task failed; retrying the batch.");
                        self.pause(self.config.poll_interval, &mut shutdown).await;
                        continue;
                    }
                };
            if !processed.is_empty() {
                match self.store.record_processed(&processed).await {
                    Ok(()) => self.sinks.wake(),
                    Err(error) => {
                        // Not recorded means not processed: the batch runs again.
                        tracing::warn!(%error, "Cannot record a processed batch; it will run again.");
                        self.pause(self.config.poll_interval, &mut shutdown).await;
                        continue;
                    }
                }
            }
            match halted {
                Some(Halted {
                    seq,
                    plugin,
                    reason,
                }) => {
                    tracing::warn!(seq, %plugin, %reason, retry_in = ?halt_backoff, "The feed is halted at an event a plugin failed on.");
                    self.pause(halt_backoff, &mut shutdown).await;
                    halt_backoff = (halt_backoff * 2).min(HALT_BACKOFF_MAX);
                }
                None => halt_backoff = self.config.poll_interval,
            }
        }
    }

    /// Journals a `snapshot` entry per plant, as `feed.snapshot` says. Called before the API takes
    /// writes, so every snapshot entry precedes the changes made after start-up.
    pub async fn snapshot(&self) {
        let only_first = match self.config.snapshot {
            SnapshotMode::Never => return,
            SnapshotMode::OnFirstLease => true,
            SnapshotMode::OnEveryLease => false,
        };
        match self.store.snapshot(SCOPE, only_first).await {
            Ok(0) => {}
            Ok(plants) => tracing::info!(plants, "Journaled a snapshot of every plant."),
            Err(error) => {
                tracing::error!(%error, "Cannot take the snapshot; the feed goes on without it.")
            }
        }
    }

    async fn pause(&self, duration: Duration, shutdown: &mut watch::Receiver<bool>) {
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Runs a batch through the pipeline, stopping before an event that halts the feed.
fn process(pipeline: &Pipeline, changes: Vec<Change>) -> (Vec<Processed>, Option<Halted>) {
    let mut processed = Vec::with_capacity(changes.len());
    for change in changes {
        let seq = change.seq;
        let plant_id = change.plant_id.clone();
        let record = |result, plugin, reason, event: Option<&Event>, sinks| Processed {
            seq,
            plant_id: plant_id.clone(),
            result,
            plugin,
            reason,
            event: event.map(encode),
            sinks,
        };
        processed.push(match pipeline.run(Event::from(change)) {
            Verdict::Deliver { event, sinks } => {
                let result = if sinks.is_empty() {
                    OutcomeKind::Unrouted
                } else {
                    OutcomeKind::Routed
                };
                record(result, None, None, Some(&event), sinks)
            }
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
                return (
                    processed,
                    Some(Halted {
                        seq,
                        plugin,
                        reason,
                    }),
                );
            }
        });
    }
    (processed, None)
}

/// The event as its JSON `data` object. Serializing these plain types cannot fail; non-finite numbers
/// an enricher may return become null.
fn encode(event: &Event) -> String {
    serde_json::to_string(event).unwrap_or_else(|error| {
        tracing::error!(seq = event.seq, %error, "An event could not be serialized.");
        String::from("null")
    })
}
