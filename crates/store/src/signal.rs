//! Wake-ups for the readers of the journal. Each reader (the feed, the event stream's follower) holds a
//! [`ChangeSignal`] of its own, so that no reader takes a wake-up meant for another, and one announced
//! while its reader is busy is kept for that reader's next wait. A store can also tell whether some
//! reader is waiting right now ([`Written::awaited`]): on PostgreSQL, writers signal only then.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// Where a store announces that a change may have been written.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    sender: Arc<watch::Sender<()>>,
    waiting: Arc<Waiting>,
}

/// How many readers are inside [`ChangeSignal::wait`], and a nudge each time one enters.
#[derive(Debug, Default)]
struct Waiting {
    readers: AtomicUsize,
    entered: Notify,
}

impl Written {
    pub(crate) fn new() -> Written {
        Written {
            sender: Arc::new(watch::channel(()).0),
            waiting: Arc::default(),
        }
    }

    /// Wakes every reader of the journal, now or at its next wait.
    pub(crate) fn announce(&self) {
        self.sender.send_replace(());
    }

    pub(crate) fn signal(&self) -> ChangeSignal {
        ChangeSignal {
            receiver: self.sender.subscribe(),
            waiting: self.waiting.clone(),
        }
    }

    /// Returns once some reader is waiting for a wake-up (at once if one is).
    pub(crate) async fn awaited(&self) {
        // `notify_one` keeps a permit when nobody listens, so a reader entering between the check
        // and the wait is not missed.
        while self.waiting.readers.load(Ordering::SeqCst) == 0 {
            self.waiting.entered.notified().await;
        }
    }
}

/// One reader's wake-up: see [`crate::JournalStore::change_signal`].
#[derive(Debug)]
pub struct ChangeSignal {
    receiver: watch::Receiver<()>,
    waiting: Arc<Waiting>,
}

/// Counts its reader as waiting for as long as it lives, however the wait ends (a reader's `select!`
/// may drop it halfway).
struct Inside<'a>(&'a Waiting);

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.readers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ChangeSignal {
    /// Waits until a change may have been written since this signal's last wait (or since it was
    /// made), or `at_most` has passed.
    pub async fn wait(&mut self, at_most: Duration) {
        self.waiting.readers.fetch_add(1, Ordering::SeqCst);
        let _inside = Inside(&self.waiting);
        self.waiting.entered.notify_one();
        match tokio::time::timeout(at_most, self.receiver.changed()).await {
            Ok(Ok(())) | Err(_) => {}
            // The store is gone and announces nothing more: only the caller's poll remains.
            Ok(Err(_)) => tokio::time::sleep(at_most).await,
        }
    }
}

/// Wakes every keeper waiting for a released lease (a process keeps the region leases and the
/// `capture` lease with a keeper each), and keeps one wake-up for a keeper not waiting right now.
pub(crate) fn announce_release(released: &Notify) {
    released.notify_waiters();
    released.notify_one();
}
