//! The keeper: takes the leases of the regions this process may lead, renews them every third of their
//! time-to-live, and releases them at shutdown so a standby takes over at once instead of waiting for
//! them to expire. A standby retries a held lease just after it would expire, or as soon as a release
//! is announced, so failover takes about the lease's remaining time and no more.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Grant, Leadership};
use crate::store::{Acquisition, LeaseStore, StoreError};

/// Added to a held lease's remaining time before trying again: the database decides expiry, and the
/// answer took some time to arrive.
const EXPIRY_MARGIN: Duration = Duration::from_millis(20);

/// Everything the lease loop needs.
#[derive(Debug)]
pub struct Keeper {
    pub store: Arc<dyn LeaseStore>,
    pub leadership: Arc<Leadership>,
    /// The regions this process may lead, as configured; `"*"` adds every region found in the data.
    pub regions: Vec<String>,
    pub ttl: Duration,
    /// How often to look for regions not led yet (new ones in the data included).
    pub discover_every: Duration,
}

impl Keeper {
    /// Keeps the leases until `release` turns true, then releases them. Once `stopping` is true no new
    /// lease is taken, but those held are renewed, so the work in hand finishes under them.
    pub async fn run(self, stopping: watch::Receiver<bool>, mut release: watch::Receiver<bool>) {
        let renew_every = self.ttl / 3;
        let mut next_renew = Instant::now() + renew_every;
        let mut next_discovery = Instant::now();
        // When to try again a region another instance holds: just after its lease would expire.
        let mut retry_at = BTreeMap::new();
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
            let accepting = !*stopping.borrow();
            let mut wake = next_renew;
            if accepting {
                if Instant::now() >= next_discovery {
                    self.acquire_wanted(&mut retry_at).await;
                    next_discovery = Instant::now() + self.discover_every;
                }
                wake = wake.min(next_discovery);
                wake = retry_at.values().fold(wake, |wake, at| wake.min(*at));
            }
            let wait = wake.saturating_duration_since(Instant::now());
            tokio::select! {
                released = self.store.wait_for_lease_release(wait) => {
                    if released {
                        retry_at.clear();
                        next_discovery = Instant::now();
                    }
                }
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

    /// Tries every wanted region not led yet whose retry time has come.
    async fn acquire_wanted(&self, retry_at: &mut BTreeMap<String, Instant>) {
        let wanted = match self.wanted().await {
            Ok(wanted) => wanted,
            Err(error) => {
                tracing::warn!(%error, "Cannot find the regions in the data; retrying.");
                return;
            }
        };
        retry_at.retain(|region, _| wanted.contains(region));
        let held = self.leadership.grants();
        let now = Instant::now();
        let due: Vec<&String> = wanted
            .iter()
            .filter(|region| {
                !held.contains_key(*region) && retry_at.get(*region).is_none_or(|at| *at <= now)
            })
            .collect();
        for region in due {
            let sent = Instant::now();
            let holder = self.leadership.holder();
            match self
                .store
                .acquire_lease(&self.leadership.lease(region), holder, self.ttl)
                .await
            {
                Ok(Acquisition::Acquired { epoch }) => {
                    tracing::info!(region, epoch, "Leading this region.");
                    retry_at.remove(region);
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
                    retry_at.insert(region.clone(), Instant::now() + remaining + EXPIRY_MARGIN);
                }
                Err(error) => tracing::warn!(region, %error, "Cannot take the lease; retrying."),
            }
        }
    }

    /// The configured regions, with the regions in the data for `"*"`.
    async fn wanted(&self) -> Result<Vec<String>, StoreError> {
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
