//! Wake-ups for commits made by other connections. SQLite has no notifications, but in WAL mode every
//! commit, by any connection of any process, rewrites the header of the wal-index, the first 48 bytes
//! of the `-shm` file beside the database (its change counter and last frame; see "The WAL-Index
//! Header" in <https://www.sqlite.org/walformat.html>), and a read that starts after that sees the
//! commit. A thread of the watcher's own reads those bytes every [`BUSY`] while other connections
//! write, and every [`QUIET`] once they have not for [`QUIET_AFTER`]; a change wakes the journal's
//! readers. A look is one `pread` of the page cache: no lock, no SQL, no connection's worker thread
//! to wake. So a row any SQL client writes reaches the feed a fraction of a millisecond after its
//! commit rather than at the feed's next `poll_interval`. A header rewritten by a checkpoint, or by
//! this process's own commit, wakes the readers for nothing, which costs one read of the journal.
//!
//! This process's own writes ([`OwnWrites`]: the writer task's groups, the lease keeper's
//! statements) do not make the watcher look busily: the writer announces its commits itself, and
//! the keeper's renewals (every region's, each a third of `lease_ttl`) had kept it looking every
//! 200 µs all the time, idle or not: an idle service leading four regions spent 59 ms of CPU a
//! second, and 15 without (see BENCHMARKS). A commit of another connection that lands while one of
//! this process's writes is under way is taken for this process's own; it is still announced.
//!
//! SQLite deletes the `-shm` file when the last connection to the database closes, and a new one
//! creates a new file that this thread would not see; so the watcher keeps a connection open (one
//! it never uses) for as long as it watches.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sqlx::SqlitePool;

use crate::signal::Written;

/// The pause between looks while the file changes.
const BUSY: Duration = Duration::from_micros(200);

/// The pause between looks once it has been quiet for [`QUIET_AFTER`].
const QUIET: Duration = Duration::from_millis(4);

const QUIET_AFTER: Duration = Duration::from_secs(1);

/// The wal-index header: the part of the `-shm` file every commit rewrites.
const HEADER: usize = 48;

/// Watches a database file until [`Watcher::stop`] or until every clone of it is dropped.
#[derive(Debug, Clone)]
pub(super) struct Watcher {
    /// The connection that keeps the `-shm` file in place.
    holding: SqlitePool,
    /// Whether the thread should go on; it holds this weakly, so dropping the last clone ends it too.
    running: Arc<AtomicBool>,
}

impl Watcher {
    /// Starts watching the database at `database` (held open by `holding`), announcing commits on
    /// `written`, looking busily after those `own` does not explain. Without a wal-index to read,
    /// readers find other connections' commits only at their next poll; that is logged, not refused.
    pub(super) fn start(
        database: &Path,
        holding: SqlitePool,
        written: Written,
        own: OwnWrites,
    ) -> Watcher {
        let running = Arc::new(AtomicBool::new(true));
        let shm = wal_index(database);
        match File::open(&shm) {
            Ok(file) => {
                let running = Arc::downgrade(&running);
                let spawned = std::thread::Builder::new()
                    .name("sqlite-watcher".into())
                    .spawn(move || watch(&file, &running, &written, &own));
                if let Err(error) = spawned {
                    not_watched(&shm, &error);
                }
            }
            Err(error) => not_watched(&shm, &error),
        }
        Watcher { holding, running }
    }

    /// Stops the thread (within one pause) and closes the connection held for it.
    pub(super) async fn stop(&self) {
        self.running.store(false, Ordering::Relaxed);
        self.holding.close().await;
    }

    /// The connection held open, for the store's count of its connections.
    pub(super) fn holding(&self) -> &SqlitePool {
        &self.holding
    }
}

/// The `-shm` file of the database at `database`.
pub(super) fn wal_index(database: &Path) -> PathBuf {
    let mut shm = database.as_os_str().to_owned();
    shm.push("-shm");
    PathBuf::from(shm)
}

fn not_watched(shm: &Path, error: &io::Error) {
    tracing::warn!(file = %shm.display(), %error, "Cannot watch SQLite's wal-index; the feed finds writes of other connections at its next poll.");
}

/// The writes this process makes to the file, each from [`OwnWrites::begin`] until its guard drops,
/// so that the watcher can tell a change of the header they explain.
#[derive(Debug, Clone, Default)]
pub(super) struct OwnWrites(Arc<OwnCounts>);

#[derive(Debug, Default)]
struct OwnCounts {
    under_way: AtomicUsize,
    ended: AtomicU64,
}

/// One of this process's writes, under way until dropped: after its commit (or rollback) has returned.
pub(super) struct OwnWrite(Arc<OwnCounts>);

impl OwnWrites {
    pub(super) fn begin(&self) -> OwnWrite {
        self.0.under_way.fetch_add(1, Ordering::SeqCst);
        OwnWrite(self.0.clone())
    }

    /// Whether one of this process's writes was under way at some time since the last call, whose
    /// count of ended writes `ended` holds and is updated. Called after each read of the header: a
    /// write whose commit the header shows had begun by then, so it is still under way or has ended
    /// since the last call (unless it ended between the last read and the last call: then its commit
    /// is taken for another connection's, which costs a second of busy looks, nothing more).
    fn explain(&self, ended: &mut u64) -> bool {
        // `under_way` first: a write counts itself ended before it stops counting as under way.
        let under_way = self.0.under_way.load(Ordering::SeqCst) > 0;
        let now = self.0.ended.load(Ordering::SeqCst);
        let explained = under_way || now != *ended;
        *ended = now;
        explained
    }
}

impl Drop for OwnWrite {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, Ordering::SeqCst);
        self.0.under_way.fetch_sub(1, Ordering::SeqCst);
    }
}

fn watch(file: &File, running: &Weak<AtomicBool>, written: &Written, own: &OwnWrites) {
    let mut seen = [0; HEADER];
    let mut header = [0; HEADER];
    let mut ended = 0;
    let mut changed_at = Instant::now();
    let mut failing = false;
    while running
        .upgrade()
        .is_some_and(|running| running.load(Ordering::Relaxed))
    {
        match file.read_exact_at(&mut header, 0) {
            Ok(()) => {
                failing = false;
                // A look that finds the header as it was still brings `ended` up to date, so that a
                // write ended long ago explains no later change.
                let explained = own.explain(&mut ended);
                if header != seen {
                    seen = header;
                    if !explained {
                        changed_at = Instant::now();
                    }
                    written.announce();
                }
            }
            Err(error) => {
                // The readers still poll at their own interval; the next look tries again.
                if !failing {
                    tracing::warn!(%error, "Cannot read SQLite's wal-index; retrying.");
                }
                failing = true;
            }
        }
        let pause = if changed_at.elapsed() < QUIET_AFTER {
            BUSY
        } else {
            QUIET
        };
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::OwnWrites;

    #[test]
    fn a_change_with_none_of_this_process_s_writes_is_not_explained() {
        let own = OwnWrites::default();
        let mut ended = 0;
        assert!(!own.explain(&mut ended));
    }

    #[test]
    fn a_write_under_way_explains_a_change() {
        let own = OwnWrites::default();
        let mut ended = 0;
        let write = own.begin();
        assert!(own.explain(&mut ended));
        assert!(own.explain(&mut ended), "still under way");
        drop(write);
    }

    #[test]
    fn a_write_that_ended_explains_the_next_change_only() {
        let own = OwnWrites::default();
        let mut ended = 0;
        assert!(!own.explain(&mut ended));
        drop(own.begin());
        assert!(own.explain(&mut ended), "ended since the last look");
        assert!(!own.explain(&mut ended), "ended before the last look");
    }

    #[test]
    fn writes_at_once_explain_changes_until_the_last_has_ended() {
        let own = OwnWrites::default();
        let mut ended = 0;
        let (first, second) = (own.begin(), own.begin());
        drop(first);
        assert!(own.explain(&mut ended));
        assert!(own.explain(&mut ended), "the second is still under way");
        drop(second);
        assert!(own.explain(&mut ended));
        assert!(!own.explain(&mut ended));
    }
}
