//! Capture: puts the database in the configured capture mode, and in `wal` capture runs the capture
//! leader while this process holds the `capture` lease (kept by a [`Keeper`] of its own): the store
//! journals the write-ahead log's changes under the lease's fence, and stops when the lease is lost,
//! at shutdown, or on an error, after which it starts again while the lease is held.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::{Backend, CaptureMode, Config};
use crate::lease::{CAPTURE, Leadership};
use crate::store::{CaptureStore, Store, StoreError};

/// How long the leader pauses after a failure before it starts again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long a capture must have run for its failure to count as new, and be logged again.
const WORKED: Duration = Duration::from_secs(60);

/// How much of PostgreSQL's log a replication slot may keep before every process says so in its log.
/// A slot nobody streams from keeps all of it, until the disk is full or `max_slot_wal_keep_size`
/// makes the server give the slot up.
pub const SLOT_WARN_BYTES: u64 = 1 << 30;

/// How often the slot's cost is looked at.
const SLOT_CHECK_EVERY: Duration = Duration::from_secs(60);

/// Warns whenever the replication slot keeps more than [`SLOT_WARN_BYTES`] of the log, until
/// `stopping` turns true. Every process on PostgreSQL runs it: the slot may be one nobody streams
/// from any more.
pub async fn watch_slot(store: Arc<dyn CaptureStore>, mut stopping: watch::Receiver<bool>) {
    while !*stopping.borrow() {
        match store.capture_status().await {
            Ok(status) => {
                if let Some(retained) = status.retained_bytes.filter(|b| *b > SLOT_WARN_BYTES) {
                    tracing::warn!(
                        slot = status.slot.as_deref().unwrap_or_default(),
                        retained_bytes = retained,
                        lag_bytes = status.lag_bytes.unwrap_or_default(),
                        active = status.active,
                        "The replication slot keeps more than 1 GiB of PostgreSQL's log: is a \
                         capture leader running? `plant-monitor capture drop-slot` removes the slot."
                    );
                }
            }
            Err(error) => tracing::debug!(%error, "Cannot read the capture's state."),
        }
        tokio::select! {
            _ = tokio::time::sleep(SLOT_CHECK_EVERY) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// Applies the migrations, then switches the database to `capture.mode`. SQLite has only trigger
/// capture: asked for `wal`, it says so and goes on with triggers.
pub async fn prepare(store: &dyn Store, config: &Config) -> Result<(), StoreError> {
    store.migrate().await?;
    let mode = config.capture.mode;
    if mode == CaptureMode::Wal && config.database.url.backend() == Backend::Sqlite {
        tracing::warn!(
            "capture.mode = \"wal\" is for PostgreSQL; SQLite journals changes by triggers."
        );
        return Ok(());
    }
    store.switch_capture(mode).await
}

/// Whether this process takes part in `wal` capture.
pub fn wanted(config: &Config) -> bool {
    config.capture.mode == CaptureMode::Wal && config.database.url.backend() == Backend::Postgres
}

/// The capture leader's loop.
#[derive(Debug)]
pub struct Capturer {
    pub store: Arc<dyn CaptureStore>,
    /// Holds the `capture` lease when this process leads capture.
    pub leadership: Arc<Leadership>,
}

impl Capturer {
    /// Captures whenever the lease is held, until `stopping` turns true.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        let mut grants = self.leadership.subscribe();
        // A failure that lasts (another replica switched the database to triggers, say) is logged
        // once, not every second.
        let mut failing = None;
        while !*stopping.borrow() {
            let fence = self
                .leadership
                .led()
                .into_iter()
                .find(|(lease, _)| lease == CAPTURE);
            let Some((_, fence)) = fence else {
                tokio::select! {
                    _ = grants.changed() => {}
                    _ = stopping.changed() => {}
                }
                continue;
            };
            let (stop, stopped) = watch::channel(false);
            let started = Instant::now();
            let capture = self.store.capture(&fence, stopped);
            tokio::pin!(capture);
            let result = loop {
                tokio::select! {
                    result = &mut capture => break result,
                    _ = stopping.changed() => {}
                    _ = grants.changed() => {}
                }
                if *stopping.borrow() || !self.leadership.leads(CAPTURE, fence.epoch) {
                    let _ = stop.send(true);
                }
            };
            match result {
                Ok(()) => failing = None,
                Err(StoreError::Fenced { .. }) => self.leadership.lose(CAPTURE, fence.epoch),
                Err(error) => {
                    if started.elapsed() > WORKED {
                        failing = None;
                    }
                    let reason = error.to_string();
                    if failing.as_ref() != Some(&reason) {
                        tracing::warn!(%error, "Capture stopped; starting again each second (this is logged again if the reason changes).");
                    } else {
                        tracing::debug!(%error, "Capture stopped again.");
                    }
                    failing = Some(reason);
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_AFTER) => {}
                        _ = stopping.changed() => {}
                    }
                }
            }
        }
    }
}
