//! Backfills: each running backfill journals a `snapshot` entry per plant it matches, a batch of
//! `feed.batch_size` per transaction, for the feed to run through the pipeline to the backfill's sinks.
//! Every replica runs this worker; the store makes concurrent steps of one backfill take turns, and
//! the place a backfill has reached is kept with its entries, so a restart or a failover goes on from
//! there. A backfill keeps at most about two batches waiting for the feed, so live changes never queue
//! behind a large one: the worker looks again when a backfill is started here, when the feed here has
//! recorded a batch, and otherwise every `feed.poll_interval`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{BackfillStep, BackfillStore};

#[derive(Debug)]
pub struct Backfiller {
    pub store: Arc<dyn BackfillStore>,
    /// Plants journaled per transaction.
    pub batch_size: NonZeroU32,
    /// How often to look for backfills started elsewhere, or entries fed elsewhere.
    pub poll_interval: Duration,
    /// Told when a backfill is started in this process.
    pub started: watch::Receiver<()>,
    /// Told when the feed of this process has recorded a batch, which may have made room.
    pub fed: watch::Receiver<()>,
}

impl Backfiller {
    /// Steps the running backfills until `shutdown` turns true; a step in hand is finished first.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            self.fed.mark_unchanged();
            let Round { journaled, running } = self.round().await;
            if journaled {
                continue;
            }
            tokio::select! {
                Ok(()) = self.started.changed() => {}
                Ok(()) = self.fed.changed(), if running => {}
                () = tokio::time::sleep(self.poll_interval) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One step of every running backfill.
    async fn round(&self) -> Round {
        let mut round = Round::default();
        let running = match self.store.running_backfills().await {
            Ok(running) => running,
            Err(error) => {
                tracing::warn!(%error, "Cannot read the running backfills; retrying.");
                return round;
            }
        };
        for id in running {
            match self.store.step_backfill(id, self.batch_size.get()).await {
                Ok(BackfillStep::Emitted {
                    entries,
                    finished: true,
                }) => {
                    tracing::info!(
                        backfill = id,
                        entries,
                        "A backfill has journaled every plant it matches."
                    );
                }
                Ok(BackfillStep::Emitted { entries, .. }) => {
                    tracing::debug!(backfill = id, entries, "A backfill journaled a batch.");
                    round.journaled = true;
                    round.running = true;
                }
                Ok(BackfillStep::Waiting) => round.running = true,
                Ok(BackfillStep::NotRunning) => {}
                Err(error) => {
                    tracing::warn!(backfill = id, %error, "Cannot step a backfill; retrying.");
                    round.running = true;
                }
            }
        }
        round
    }
}

/// What a round of steps came to.
#[derive(Debug, Default)]
struct Round {
    /// Some backfill journaled entries and may journal more at once.
    journaled: bool,
    /// Some backfill is still running.
    running: bool,
}
