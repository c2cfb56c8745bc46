//! What a sink worker knows of its attempts that the outbox does not show yet. Results are recorded
//! while the worker goes on, so the next round may read a delivery whose request already ended: it
//! must not be sent again, and a plant whose attempt failed must not have its later events overtake
//! the retry. Until its results are recorded, this keeps the attempted deliveries and the plants held
//! back by a retry, and a round's due deliveries are filtered through it, as the outbox will read once
//! the record is written. The filter is what was unrecorded when the read began: a record that
//! commits during the read may or may not show in it, so its attempts must still be left out.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use crate::store::{Attempts, Delivery};

#[derive(Debug, Default)]
pub(super) struct Unrecorded {
    pending: Mutex<Pending>,
    /// Told each time a recording ends, for a worker whose read found only unrecorded deliveries.
    recorded: Notify,
}

/// Attempts whose results are not recorded yet.
#[derive(Debug, Default, Clone)]
pub(super) struct Pending {
    /// Each attempted delivery, with its plant if the attempt is to be retried.
    attempted: HashMap<i64, Option<String>>,
    /// Plants with retries not yet recorded, and how many.
    held: HashMap<String, usize>,
}

impl Unrecorded {
    /// Notes the attempts of a request with `batch`, before they go to the recorder.
    pub(super) fn add(&self, batch: &[Delivery], attempts: &Attempts) {
        let mut pending = self.pending();
        for delivery in batch {
            let retried = (attempts.retries.iter()).any(|retry| retry.id == delivery.id);
            let plant = retried.then(|| delivery.plant_id.clone());
            if let Some(plant) = &plant {
                *pending.held.entry(plant.clone()).or_default() += 1;
            }
            pending.attempted.insert(delivery.id, plant);
        }
    }

    /// Forgets attempts once their recording has ended. If it failed, the deliveries are still
    /// pending and due, and go again, as after a crash.
    pub(super) fn forget(&self, attempts: &Attempts) {
        let mut pending = self.pending();
        let ids = (attempts.delivered.iter().map(|d| d.id))
            .chain(attempts.retries.iter().map(|r| r.id))
            .chain(attempts.dead.iter().map(|d| d.id));
        for id in ids {
            if let Some(Some(plant)) = pending.attempted.remove(&id)
                && let Some(count) = pending.held.get_mut(&plant)
            {
                *count -= 1;
                if *count == 0 {
                    pending.held.remove(&plant);
                }
            }
        }
        drop(pending);
        self.recorded.notify_waiters();
    }

    /// Completes once a recording ends after this is called: taken before a read, it tells whether
    /// what the read could not show has been recorded since.
    pub(super) fn recorded(&self) -> Notified<'_> {
        self.recorded.notified()
    }

    /// What is unrecorded now: taken before a read of due deliveries, to filter what it returns.
    pub(super) fn before_read(&self) -> Pending {
        self.pending().clone()
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        // Consistent after every statement that changes it: a panic elsewhere while it was held
        // leaves nothing half-done.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Pending {
    /// The due deliveries that are neither attempted already nor behind a retry, in their order.
    pub(super) fn due(&self, mut due: Vec<Delivery>) -> Vec<Delivery> {
        due.retain(|delivery| {
            !self.attempted.contains_key(&delivery.id)
                && !self.held.contains_key(&delivery.plant_id)
        });
        due
    }
}
