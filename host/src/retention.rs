//! Retention: delivered outbox rows, and processed journal entries with nothing left to deliver, are
//! deleted once older than `retention.delivered`, and the statistics' minutes once older than
//! [`stats::KEPT`] (what the longest `/v1/stats` window needs), a bounded batch at a time so the
//! writers and the feed never wait long behind it. Every replica may prune; the deletes are idempotent.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::RetentionConfig;
use crate::store::{RetentionStore, stats};

/// Rows deleted per statement.
const BATCH: u32 = 5_000;

/// Longest pause between pruning runs.
const EVERY_AT_MOST: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct Pruner {
    pub store: Arc<dyn RetentionStore>,
    pub config: RetentionConfig,
}

impl Pruner {
    /// Prunes until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let age = self.config.delivered;
        let every = (age / 4).clamp(Duration::from_millis(100), EVERY_AT_MOST);
        while !*shutdown.borrow() {
            loop {
                match self.store.prune(age, BATCH).await {
                    Ok((deliveries, changes)) => {
                        if deliveries + changes > 0 {
                            tracing::debug!(deliveries, changes, "Pruned finished work.");
                        }
                        if deliveries < u64::from(BATCH) && changes < u64::from(BATCH) {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "Cannot prune finished work; trying again later.");
                        break;
                    }
                }
            }
            loop {
                match self.store.prune_stats(stats::KEPT, BATCH).await {
                    Ok(rows) => {
                        if rows > 0 {
                            tracing::debug!(rows, "Pruned old statistics.");
                        }
                        if rows < u64::from(BATCH) {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "Cannot prune old statistics; trying again later.");
                        break;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
