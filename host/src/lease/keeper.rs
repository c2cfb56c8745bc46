//! The keeper: takes the leases of the regions this process may lead, renews them every third of their
//! time-to-live, and releases them at shutdown so a standby takes over at once instead of waiting for
//! them to expire. A standby retries a held lease just after it would expire, or as soon as a release
//! is announced, so failover takes about the lease's remaining time and no more.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Grant, Leadership, lease_name};
use crate::store::{Acquisition, Store};

/// Added to a held lease's remaining time before trying again: the database decides expiry, and the
/// answer took some time to arrive.
const EXPIRY_MARGIN: Duration = Duration::from_millis(20);

/// Everything the lease loop needs.
#[derive(Debug)]
pub struct Keeper {
    pub store: Arc<dyn Store>,
    pub leadership: Arc<Leadership>,
    /// The regions this process may lead, as configured; `"*"` adds every region found in the data.
    pub regions: Vec<String>,
    pub ttl: Duration,
}

impl Keeper {
    /// Keeps the leases until `release` turns true, then releases them. Once `stopping` is true no new
    /// lease is taken, but those held are renewed, so the work in hand finishes under them.
    pub async fn run(self, stopping: watch::Receiver<bool>, mut release: watch::Receiver<bool>) {
        let renew_every = self.ttl / 3;
        let mut next_renew = Instant::now() + renew_every;
        while !*release.borrow() {
            if Instant::now() >= next_renew {
                // After a failed renewal, try again sooner: the grant is trusted for half the
                // time-to-live, and one more success keeps it.
                let pause = if self.renew_all().await {
                    renew_every
                } else {
                    self.ttl / 10
                };
                next_renew = Instant::now() + pause;
            }
            for (region, epoch) in self.leadership.expire() {
                tracing::warn!(
                    region,
                    epoch,
                    "No renewal for half the lease time; no longer leading this region."
                );
            }
            let next_attempt = if *stopping.borrow() {
                next_renew
            } else {
                self.acquire_wanted().await
            };
            let wake = next_renew.min(next_attempt);
            tokio::select! {
                () = self.store.wait_for_lease_release(wake.saturating_duration_since(Instant::now())) => {}
                _ = release.changed() => {}
            }
        }
        self.release_all().await;
    }

    /// Renews every lease held; false when the database could not be asked about one of them.
    async fn renew_all(&self) -> bool {
        let mut answered = true;
        for (region, grant) in self.leadership.grants() {
            let fence = self.leadership.fence(&region, grant.epoch);
            let sent = Instant::now();
            match self.store.renew_lease(&fence, self.ttl).await {
                Ok(true) => self
                    .leadership
                    .extend(&region, grant.epoch, sent + self.ttl / 2),
                Ok(false) => self.leadership.lose(&region, grant.epoch),
                Err(error) => {
                    answered = false;
                    tracing::warn!(region, %error, "Cannot renew the lease; retrying.");
                }
            }
        }
        answered
    }

    /// Tries every wanted region not led yet; returns when to try again.
    async fn acquire_wanted(&self) -> Instant {
        let mut next = Instant::now() + self.ttl / 3;
        let wanted = match self.wanted().await {
            Ok(wanted) => wanted,
            Err(error) => {
                tracing::warn!(%error, "Cannot find the regions in the data; retrying.");
                return next;
            }
        };
        let held = self.leadership.grants();
        for region in wanted.iter().filter(|region| !held.contains_key(*region)) {
            let sent = Instant::now();
            let holder = self.leadership.holder();
            match self
                .store
                .acquire_lease(&lease_name(region), holder, self.ttl)
                .await
            {
                Ok(Acquisition::Acquired { epoch }) => {
                    tracing::info!(region, epoch, "Leading this region.");
                    self.leadership.set(
                        region,
                        Grant {
                            epoch,
                            valid_until: sent + self.ttl / 2,
                        },
                    );
                }
                Ok(Acquisition::Held { holder, remaining }) => {
                    tracing::debug!(region, %holder, ?remaining, "Another instance leads this region.");
                    next = next.min(Instant::now() + remaining + EXPIRY_MARGIN);
                }
                Err(error) => tracing::warn!(region, %error, "Cannot take the lease; retrying."),
            }
        }
        next
    }

    /// The configured regions, with the regions in the data for `"*"`.
    async fn wanted(&self) -> Result<Vec<String>, crate::store::StoreError> {
        let mut wanted: Vec<String> = self
            .regions
            .iter()
            .filter(|region| *region != "*")
            .cloned()
            .collect();
        if self.regions.iter().any(|region| region == "*") {
            wanted.extend(self.store.active_regions().await?);
        }
        wanted.sort();
        wanted.dedup();
        Ok(wanted)
    }

    async fn release_all(&self) {
        for (region, grant) in self.leadership.grants() {
            self.leadership.lose_quietly(&region);
            let fence = self.leadership.fence(&region, grant.epoch);
            match self.store.release_lease(&fence).await {
                Ok(()) => tracing::info!(region, epoch = grant.epoch, "Released the lease."),
                Err(error) => {
                    tracing::warn!(region, %error, "Cannot release the lease; it will expire.")
                }
            }
        }
    }
}
