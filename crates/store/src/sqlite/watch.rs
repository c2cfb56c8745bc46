//! Wake-ups for commits made by other connections. SQLite has no notifications, but in WAL mode every
//! commit, by any connection of any process, rewrites the header of the wal-index, the first 48 bytes
//! of the `-shm` file beside the database (its change counter and last frame; see "The WAL-Index
//! Header" in <https://www.sqlite.org/walformat.html>), and a read that starts after that sees the
//! commit. A thread of the watcher's own reads those bytes every [`BUSY`] while the file changes, and
//! every [`QUIET`] once it has not for [`QUIET_AFTER`]; a change wakes the journal's readers. A look
//! is one `pread` of the page cache: no lock, no SQL, no connection's worker thread to wake. So a
//! row any SQL client writes reaches the feed a fraction of a millisecond after its commit rather
//! than at the feed's next `poll_interval`. A header rewritten by a checkpoint, or by this
//! process's own commit, wakes the readers for nothing, which costs one read of the journal.
//!
//! SQLite deletes the `-shm` file when the last connection to the database closes, and a new one
//! creates a new file that this thread would not see; so the watcher keeps a connection open (one
//! it never uses) for as long as it watches.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// `written`. Without a wal-index to read, readers find other connections' commits only at their
    /// next poll; that is logged, not refused.
    pub(super) fn start(database: &Path, holding: SqlitePool, written: Written) -> Watcher {
        let running = Arc::new(AtomicBool::new(true));
        let shm = wal_index(database);
        match File::open(&shm) {
            Ok(file) => {
                let running = Arc::downgrade(&running);
                let spawned = std::thread::Builder::new()
                    .name("sqlite-watcher".into())
                    .spawn(move || watch(&file, &running, &written));
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
fn wal_index(database: &Path) -> PathBuf {
    let mut shm = database.as_os_str().to_owned();
    shm.push("-shm");
    PathBuf::from(shm)
}

fn not_watched(shm: &Path, error: &io::Error) {
    tracing::warn!(file = %shm.display(), %error, "Cannot watch SQLite's wal-index; the feed finds writes of other connections at its next poll.");
}

fn watch(file: &File, running: &Weak<AtomicBool>, written: &Written) {
    let mut seen = [0; HEADER];
    let mut header = [0; HEADER];
    let mut changed_at = Instant::now();
    let mut failing = false;
    while running
        .upgrade()
        .is_some_and(|running| running.load(Ordering::Relaxed))
    {
        match file.read_exact_at(&mut header, 0) {
            Ok(()) => {
                failing = false;
                if header != seen {
                    seen = header;
                    changed_at = Instant::now();
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
