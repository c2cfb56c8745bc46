//! The journal followed as it is written, for the API's live event stream. One follower task per
//! process reads the new entries from the database in `seq` order, and the outcomes the feed records
//! for those it saw unprocessed, so that it works alike on every replica, whether or not this one
//! leads a region. It hands both to each subscribed client through a bounded buffer of the client's
//! own; a client whose buffer is full is dropped rather than waited for, so that no client slows the
//! follower or the others, and it resumes from the journal after the last `seq` it got. The follower
//! reads only while some client listens.
//!
//! A client subscribes first, which tells it the position after which the follower hands it every
//! entry, and then reads what it missed up to that position from the journal itself: the two meet
//! with no gap and no duplicate. Concurrent transactions may commit their entries out of `seq` order
//! (on PostgreSQL), so the follower passes a gap in the `seq`s only once the transactions that could
//! fill it have ended ([`JournalStore::journal_writers`]): no client is handed an entry while one
//! with a smaller `seq` may still appear.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Mutex, Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc, watch};
use tokio::time::Instant;

use crate::domain::{Change, ChangeKind};
use crate::store::{JournalStore, StoreError};

/// How many events a client may fall behind the follower before it is dropped. Events are shared
/// between the clients' buffers, so this bounds the memory they hold whatever the number of clients.
pub const CLIENT_BUFFER: usize = 512;

/// Entries the follower reads at a time, and outcomes: a burst reaches the clients in steps they
/// can drain in between.
const READ_PAGE: u32 = 100;

/// Entries a client reads from the journal at a time while it catches up.
const CATCH_UP_PAGE: u32 = 100;

/// How long the outcome of an unprocessed entry is looked for: the entries of a region no replica
/// leads wait indefinitely, and are not worth a lookup each poll for ever.
const OUTCOME_WAIT: Duration = Duration::from_secs(600);

/// The most unprocessed entries whose outcomes are looked for at once (by the follower, and for each
/// client); the oldest are given up first.
const MAX_AWAITED: usize = 4096;

/// The longest the follower holds at a gap in the `seq`s whose transactions have not all ended. A
/// transaction left open (in an SQL shell, say) would otherwise stop every client; its entries, if
/// it commits, are in the journal but are not streamed.
const GAP_WAIT: Duration = Duration::from_secs(10);

/// Why a client cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("{max} clients are listening already, as many as server.max_stream_clients allows")]
    Full { max: usize },
    #[error("the service is stopping")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which entries a client wants; each condition left out matches every entry.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub region: Option<String>,
    pub kind: Option<ChangeKind>,
    pub plant_id: Option<String>,
}

impl Filter {
    pub fn matches(&self, change: &Change) -> bool {
        self.region.as_ref().is_none_or(|r| *r == change.region)
            && self.kind.is_none_or(|k| k == change.kind)
            && self.plant_id.as_ref().is_none_or(|p| *p == change.plant_id)
    }
}

/// What a client is told.
#[derive(Debug, Clone)]
pub enum Item {
    /// An entry was journaled. It carries its outcome when it already has one as it is sent, and
    /// no [`Item::Outcome`] follows then.
    Change(Arc<Change>),
    /// An entry this client was sent without an outcome has been processed: the entry with it.
    Outcome(Arc<Change>),
}

impl Item {
    fn change(&self) -> &Change {
        match self {
            Item::Change(change) | Item::Outcome(change) => change,
        }
    }
}

/// Closes a client's connection; see [`Tail::open`].
pub struct HangUp(Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for HangUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HangUp")
    }
}

/// The follower and the clients it serves.
#[derive(Debug)]
pub struct Tail {
    store: Arc<dyn JournalStore>,
    poll_interval: Duration,
    max_clients: usize,
    /// One permit per client, taken before its answer begins; closed once the service stops.
    slots: Arc<Semaphore>,
    state: Mutex<State>,
    /// Wakes the idle follower when a client subscribes.
    subscribed: Notify,
}

#[derive(Debug, Default)]
struct State {
    subscribers: Vec<Subscriber>,
    /// Every subscriber has been handed each matching entry up to this `seq`, and is handed each
    /// one after it.
    position: u64,
    /// False while the follower idles for want of subscribers: the position is stale then.
    following: bool,
    /// Raised each time following starts again, so that the follower forgets the gap it held at.
    generation: u64,
    /// Entries handed out unprocessed, by `seq`, with when their outcome was first looked for.
    awaited: BTreeMap<u64, Instant>,
}

#[derive(Debug)]
struct Subscriber {
    filter: Filter,
    sender: mpsc::Sender<Item>,
    hang_up: HangUp,
}

/// The follower's own memory between reads.
#[derive(Debug, Default)]
struct Follower {
    generation: u64,
    gap: Option<Gap>,
    outcomes_due: Option<Instant>,
}

/// Missing `seq`s right after `after`, as first found.
#[derive(Debug)]
struct Gap {
    after: u64,
    /// The transactions that could still fill it.
    writers: Vec<String>,
    since: Instant,
    /// Those transactions have all ended: what is missing now is missing for good.
    settled: bool,
}

impl Tail {
    /// A follower of `store`'s journal for at most `max_clients` clients at once; it looks for
    /// writes it was not told of, and for outcomes, every `poll_interval`.
    pub fn new(store: Arc<dyn JournalStore>, poll_interval: Duration, max_clients: usize) -> Tail {
        Tail {
            store,
            poll_interval,
            max_clients,
            slots: Arc::new(Semaphore::new(max_clients)),
            state: Mutex::new(State::default()),
            subscribed: Notify::new(),
        }
    }

    /// Takes a place for a client of the entries `filter` matches, from the first entry after
    /// `after` or, without it, from the first one written after this returns; its events come from
    /// the [`Reader`]. `hang_up` is called if the client is dropped for falling behind, so that
    /// whoever serves it can close its connection at once: a client that does not read would
    /// otherwise keep it, and its place.
    pub async fn open(
        self: &Arc<Self>,
        filter: Filter,
        after: Option<u64>,
        hang_up: impl Fn() + Send + Sync + 'static,
    ) -> Result<Reader, TailError> {
        let slot = (self.slots.clone().try_acquire_owned()).map_err(|error| match error {
            TryAcquireError::NoPermits => TailError::Full {
                max: self.max_clients,
            },
            TryAcquireError::Closed => TailError::Stopped,
        })?;
        let (receiver, position) = self
            .subscribe(filter.clone(), HangUp(Box::new(hang_up)))
            .await?;
        Ok(Reader {
            tail: self.clone(),
            filter,
            catching_up: Some(position),
            receiver,
            last: after.unwrap_or(position),
            ready: VecDeque::new(),
            awaiting: BTreeSet::new(),
            _slot: slot,
        })
    }

    /// Follows the journal while clients listen, until `stopping` turns true; then lets no client in
    /// any more and ends every stream once its client has what was handed to it.
    pub async fn run(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        let mut written = self.store.change_signal();
        let mut follower = Follower::default();
        while !*stopping.borrow() {
            let Some(position) = self.position(&mut follower).await else {
                tokio::select! {
                    () = self.subscribed.notified() => {}
                    _ = stopping.changed() => {}
                }
                continue;
            };
            let more = match self.round(&mut follower, position).await {
                Ok(more) => more,
                Err(error) => {
                    tracing::warn!(%error, "Cannot follow the journal for the event stream; retrying.");
                    false
                }
            };
            if !more {
                tokio::select! {
                    () = written.wait(self.poll_interval) => {}
                    _ = stopping.changed() => {}
                }
            }
        }
        self.slots.close();
        let mut state = self.state.lock().await;
        state.subscribers.clear();
        state.following = false;
    }

    /// Where to read from; `None` when no client listens, and the follower is to idle.
    async fn position(&self, follower: &mut Follower) -> Option<u64> {
        let mut state = self.state.lock().await;
        state.subscribers.retain(|s| !s.sender.is_closed());
        if state.subscribers.is_empty() {
            state.following = false;
            state.awaited.clear();
            return None;
        }
        if state.generation != follower.generation {
            follower.generation = state.generation;
            follower.gap = None;
        }
        Some(state.position)
    }

    /// One read of the journal after `position` and, when due, of the awaited outcomes, handed to
    /// the clients; true when there is more to read at once.
    async fn round(&self, follower: &mut Follower, position: u64) -> Result<bool, StoreError> {
        let (passed, mut more) = self.read(follower, position).await?;
        let now = Instant::now();
        let mut outcomes = Vec::new();
        if follower.outcomes_due.is_none_or(|due| due <= now) {
            let awaited: Vec<u64> = self.state.lock().await.awaited.keys().copied().collect();
            if !awaited.is_empty() {
                outcomes = self.store.processed_among(&awaited, READ_PAGE).await?;
            }
            // A full page of outcomes: there may be more, to be read at once.
            let full = outcomes.len() == READ_PAGE as usize;
            more |= full;
            follower.outcomes_due = (!full).then(|| now + self.poll_interval);
        }
        let mut state = self.state.lock().await;
        for change in passed {
            let change = Arc::new(change);
            state.position = change.seq;
            if change.outcome.is_none() {
                state.awaited.insert(change.seq, now);
            }
            fan_out(&mut state.subscribers, &Item::Change(change));
        }
        for change in outcomes {
            if state.awaited.remove(&change.seq).is_some() {
                fan_out(&mut state.subscribers, &Item::Outcome(Arc::new(change)));
            }
        }
        state
            .awaited
            .retain(|_, since| now.duration_since(*since) < OUTCOME_WAIT);
        trim(&mut state.awaited);
        Ok(more)
    }

    /// The entries after `position` that may be handed out now, in `seq` order, and whether to read
    /// again at once. Stops at a gap until the transactions that could fill it have ended.
    async fn read(
        &self,
        follower: &mut Follower,
        position: u64,
    ) -> Result<(Vec<Change>, bool), StoreError> {
        let page = self.store.list_changes(None, position, READ_PAGE).await?;
        let more = page.len() == READ_PAGE as usize;
        let mut at = position;
        let mut passed = Vec::new();
        for change in page {
            if change.seq != at + 1 {
                match follower.gap.as_mut() {
                    Some(gap) if gap.after == at && gap.settled => {}
                    Some(gap) if gap.after == at => {
                        if gap.since.elapsed() >= GAP_WAIT {
                            tracing::warn!(
                                after = at,
                                next = change.seq,
                                "A journal gap stayed open too long; passing it. If the transactions \
                                 holding it commit, their entries are in the journal but not streamed."
                            );
                            gap.settled = true;
                        } else {
                            let writers = self.store.journal_writers().await?;
                            if gap.writers.iter().any(|w| writers.contains(w)) {
                                return Ok((passed, false));
                            }
                            // Read again: the gap may have been filled before they ended.
                            gap.settled = true;
                            return Ok((passed, true));
                        }
                    }
                    _ => {
                        let writers = self.store.journal_writers().await?;
                        follower.gap = Some(Gap {
                            after: at,
                            settled: writers.is_empty(),
                            writers,
                            since: Instant::now(),
                        });
                        return Ok((passed, true));
                    }
                }
            }
            at = change.seq;
            passed.push(change);
        }
        Ok((passed, more))
    }

    /// Adds a client; answers the position after which the follower hands it every entry.
    async fn subscribe(
        &self,
        filter: Filter,
        hang_up: HangUp,
    ) -> Result<(mpsc::Receiver<Item>, u64), TailError> {
        let mut state = self.state.lock().await;
        if self.slots.is_closed() {
            return Err(TailError::Stopped);
        }
        if !state.following {
            // The follower idled and its position is stale: it goes on from the end of the journal.
            state.position = self.store.last_seq().await?;
            state.following = true;
            state.generation += 1;
            self.subscribed.notify_one();
        }
        let (sender, receiver) = mpsc::channel(CLIENT_BUFFER);
        state.subscribers.push(Subscriber {
            filter,
            sender,
            hang_up,
        });
        Ok((receiver, state.position))
    }

    /// Looks for the outcomes of `seqs`, which a client read unprocessed from the journal.
    async fn await_outcomes(&self, seqs: &[u64]) {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        for &seq in seqs {
            state.awaited.entry(seq).or_insert(now);
        }
        trim(&mut state.awaited);
    }
}

/// Hands `item` to every subscriber it matches; one whose buffer is full is dropped and hung up on.
fn fan_out(subscribers: &mut Vec<Subscriber>, item: &Item) {
    subscribers.retain(|subscriber| {
        if !subscriber.filter.matches(item.change()) {
            return true;
        }
        match subscriber.sender.try_send(item.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::info!(
                    buffer = CLIENT_BUFFER,
                    "Dropped an event stream client that fell behind; it may resume with Last-Event-ID."
                );
                (subscriber.hang_up.0)();
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    });
}

/// Keeps the newest [`MAX_AWAITED`] entries.
fn trim<T>(awaited: &mut BTreeMap<u64, T>) {
    while awaited.len() > MAX_AWAITED {
        awaited.pop_first();
    }
}

/// One client's events: what it missed, from the journal, then what the follower hands it. Its
/// place is given back when it is dropped.
#[derive(Debug)]
pub struct Reader {
    tail: Arc<Tail>,
    filter: Filter,
    /// While this client reads what it missed from the journal: up to where, the follower's position
    /// when it subscribed.
    catching_up: Option<u64>,
    receiver: mpsc::Receiver<Item>,
    /// The highest `seq` this client has been sent or had no need of.
    last: u64,
    ready: VecDeque<Item>,
    /// The entries this client was sent unprocessed: their outcomes are its to get.
    awaiting: BTreeSet<u64>,
    _slot: OwnedSemaphorePermit,
}

impl Reader {
    /// The next event; `None` once the stream ends: the client fell behind, the service is stopping,
    /// or the journal could not be read (each logged where it happened).
    pub async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            match self.catching_up {
                Some(until) => {
                    if self.receiver.is_closed() {
                        return None;
                    }
                    self.catch_up(until).await?;
                }
                None => {
                    let item = self.receiver.recv().await?;
                    self.take(item);
                }
            }
        }
    }

    /// The stream of [`Reader::next`].
    pub fn into_stream(self) -> impl Stream<Item = Item> + Send {
        futures_util::stream::unfold(self, |mut reader| async move {
            reader.next().await.map(|item| (item, reader))
        })
    }

    /// Reads the next page of what this client missed, up to `until`.
    async fn catch_up(&mut self, until: u64) -> Option<()> {
        if self.last >= until {
            self.catching_up = None;
            return Some(());
        }
        let plant = self.filter.plant_id.as_deref();
        let page = match (self.tail.store)
            .list_changes(plant, self.last, CATCH_UP_PAGE)
            .await
        {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, "Cannot read the journal for an event stream; ending it.");
                return None;
            }
        };
        // Everything up to `until` is in this page if it is the last or reaches `until`.
        let reached = page.len() < CATCH_UP_PAGE as usize
            || page.last().is_some_and(|change| change.seq >= until);
        let mut unprocessed = Vec::new();
        for change in page.into_iter().take_while(|change| change.seq <= until) {
            self.last = change.seq;
            if self.filter.matches(&change) {
                if change.outcome.is_none() {
                    unprocessed.push(change.seq);
                }
                self.send(Arc::new(change));
            }
        }
        if !unprocessed.is_empty() {
            self.tail.await_outcomes(&unprocessed).await;
        }
        if reached {
            self.last = self.last.max(until);
            self.catching_up = None;
        }
        Some(())
    }

    /// Takes what the follower handed over: each entry once, and the outcomes this client awaits.
    fn take(&mut self, item: Item) {
        match item {
            Item::Change(change) if change.seq > self.last => {
                self.last = change.seq;
                self.send(change);
            }
            Item::Outcome(change) if self.awaiting.remove(&change.seq) => {
                self.ready.push_back(Item::Outcome(change));
            }
            _ => {}
        }
    }

    fn send(&mut self, change: Arc<Change>) {
        if change.outcome.is_none() {
            self.awaiting.insert(change.seq);
            trim_set(&mut self.awaiting);
        }
        self.ready.push_back(Item::Change(change));
    }
}

/// Keeps the newest [`MAX_AWAITED`] entries.
fn trim_set(awaiting: &mut BTreeSet<u64>) {
    while awaiting.len() > MAX_AWAITED {
        awaiting.pop_first();
    }
}
