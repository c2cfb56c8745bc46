//! Leases: which regions this process leads. One database lease per region (`feed:<region>`) decides
//! which replica feeds that region's changes and delivers its events. [`Keeper`] acquires and renews
//! them; [`Leadership`] is what the feed and the sinks read before every batch and every request. The
//! `capture` lease of `wal` capture is kept the same way, by a keeper and a leadership of its own.
//!
//! A grant is trusted locally only until half the lease's time-to-live has passed since the last
//! renewal was *sent*, so a holder cut off from the database stops before the lease can expire and be
//! taken. The monotonic clock keeps running while a process is paused, so a resumed process sees at
//! once that its grants are stale. Every write is fenced in the database as well, which settles the
//! rest.

mod keeper;

use std::collections::BTreeMap;
use std::time::Instant;

use tokio::sync::watch;

pub use keeper::Keeper;

use crate::store::Fence;

/// The prefix of a region feed's lease name.
const PREFIX: &str = "feed:";

/// The lease of the capture leader, which journals the write-ahead log's changes in `wal` capture.
pub const CAPTURE: &str = "capture";

/// The region a lease name leads, if it is a region feed's lease.
pub fn region_of(lease: &str) -> Option<&str> {
    lease.strip_prefix(PREFIX)
}

/// One region's lease as this process holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub epoch: u64,
    /// Until when this process may act on it without a newer renewal.
    pub valid_until: Instant,
}

/// The regions this process leads, shared by the keeper, the feed and the sink workers.
#[derive(Debug)]
pub struct Leadership {
    holder: String,
    /// What turns a key of `grants` into its lease's name: `feed:` for regions, nothing otherwise.
    prefix: &'static str,
    grants: watch::Sender<BTreeMap<String, Grant>>,
}

impl Leadership {
    /// The leadership of regions: each key is a region, its lease `feed:<region>`.
    pub fn new(holder: String) -> Leadership {
        Leadership {
            holder,
            prefix: PREFIX,
            grants: watch::Sender::new(BTreeMap::new()),
        }
    }

    /// The leadership of leases named as they are, such as [`CAPTURE`].
    pub fn of_leases(holder: String) -> Leadership {
        Leadership {
            holder,
            prefix: "",
            grants: watch::Sender::new(BTreeMap::new()),
        }
    }

    /// The name of the lease `key` stands for.
    pub fn lease(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// This process's name as a lease holder.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Changes whenever a region is gained or lost.
    pub fn subscribe(&self) -> watch::Receiver<BTreeMap<String, Grant>> {
        self.grants.subscribe()
    }

    /// The regions led now, in name order, each with the fence its writes carry.
    pub fn led(&self) -> Vec<(String, Fence)> {
        let now = Instant::now();
        self.grants
            .borrow()
            .iter()
            .filter(|(_, grant)| grant.valid_until > now)
            .map(|(region, grant)| (region.clone(), self.fence(region, grant.epoch)))
            .collect()
    }

    /// Whether `region` is still led now under `epoch`.
    pub fn leads(&self, region: &str, epoch: u64) -> bool {
        self.grants
            .borrow()
            .get(region)
            .is_some_and(|grant| grant.epoch == epoch && grant.valid_until > Instant::now())
    }

    /// The fence for writes under `region`'s lease at `epoch`.
    pub fn fence(&self, region: &str, epoch: u64) -> Fence {
        Fence {
            lease: self.lease(region),
            holder: self.holder.clone(),
            epoch,
        }
    }

    /// Gives up `region` at `epoch`, because the database refused a write fenced by it or a renewal.
    pub fn lose(&self, region: &str, epoch: u64) {
        self.grants.send_if_modified(|grants| {
            let lost = grants.get(region).is_some_and(|grant| grant.epoch == epoch);
            if lost {
                grants.remove(region);
                tracing::warn!(
                    region,
                    epoch,
                    "Lost the lease; no longer leading this region."
                );
            }
            lost
        });
    }

    fn grants(&self) -> BTreeMap<String, Grant> {
        self.grants.borrow().clone()
    }

    /// Records a grant: this process leads `region` at its epoch until its validity passes.
    pub(crate) fn set(&self, region: &str, grant: Grant) {
        self.grants.send_modify(|grants| {
            grants.insert(region.to_owned(), grant);
        });
    }

    /// Moves a grant's validity on after a renewal, unless it was lost meanwhile.
    fn extend(&self, region: &str, epoch: u64, valid_until: Instant) {
        self.grants.send_if_modified(|grants| {
            if let Some(grant) = grants.get_mut(region).filter(|g| g.epoch == epoch) {
                grant.valid_until = valid_until;
            }
            // Readers check validity when they act, so a renewal need not wake them.
            false
        });
    }

    /// Forgets a grant that is being released.
    fn lose_quietly(&self, region: &str) {
        self.grants.send_modify(|grants| {
            grants.remove(region);
        });
    }

    /// Drops every grant whose local validity has passed, and says which.
    fn expire(&self) -> Vec<(String, u64)> {
        let now = Instant::now();
        let mut expired = Vec::new();
        self.grants.send_if_modified(|grants| {
            grants.retain(|region, grant| {
                let valid = grant.valid_until > now;
                if !valid {
                    expired.push((region.clone(), grant.epoch));
                }
                valid
            });
            !expired.is_empty()
        });
        expired
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn leadership_with(region: &str, epoch: u64, valid_for: Duration) -> Leadership {
        let leadership = Leadership::new("me".into());
        leadership.set(
            region,
            Grant {
                epoch,
                valid_until: Instant::now() + valid_for,
            },
        );
        leadership
    }

    #[test]
    fn a_valid_grant_is_led_with_its_fence() {
        let leadership = leadership_with("north", 3, Duration::from_secs(60));
        assert!(leadership.leads("north", 3));
        assert!(!leadership.leads("north", 2));
        assert_eq!(
            leadership.led(),
            [(
                "north".to_owned(),
                Fence {
                    lease: "feed:north".into(),
                    holder: "me".into(),
                    epoch: 3
                }
            )]
        );
    }

    #[test]
    fn a_grant_past_its_validity_is_not_led_and_is_expired() {
        let leadership = leadership_with("north", 3, Duration::ZERO);
        assert!(!leadership.leads("north", 3));
        assert!(leadership.led().is_empty());
        assert_eq!(leadership.expire(), [("north".to_owned(), 3)]);
        assert!(leadership.grants().is_empty());
    }

    #[test]
    fn losing_an_older_epoch_keeps_the_newer_grant() {
        let leadership = leadership_with("north", 4, Duration::from_secs(60));
        leadership.lose("north", 3);
        assert!(leadership.leads("north", 4));
        leadership.lose("north", 4);
        assert!(!leadership.leads("north", 4));
    }
}
