//! Checkpoints of the write-ahead log, mostly on a connection of their own. SQLite's default is for
//! the connection that commits to copy the log back into the database file once the log holds 1,000
//! pages, inside its `COMMIT`: on the writer task's connection, which every write of this process
//! queues for, a drain's groups waited for those copies and their syncs. So the writer's connection
//! turns its automatic checkpoints off, and after each of its commits, once it has answered the
//! group's writes, looks at the wal-index (one `pread`, as the watcher does, see `watch`). Once the
//! log holds [`PAGES`] pages, a task of its own copies them with a passive checkpoint while the
//! writer goes on.
//!
//! The log starts over only at a transaction of the writer that begins with everything in it copied
//! (and no reader in it), and a writer that goes on while the task copies never finds that: when the
//! task ran beside the writer alone, an API under load restarted its log only by a fallback at 4,000
//! pages, after a checkpoint of the task at every commit. So the writer copies the tail itself: after
//! a commit that leaves at most [`TAIL`] pages uncopied, with the task idle, it checkpoints on its own
//! connection, as SQLite would have, but only those few pages; its next transaction then starts the
//! log over. At [`LIMIT`] pages (readers kept the log from starting over) it checkpoints whatever
//! remains, so the log stays bounded. Measured (see BENCHMARKS): the drain about 3 % faster in a
//! fast phase of the machine, API writes and commit → receipt unchanged.
//!
//! Where the wal-index cannot be read the writer keeps SQLite's own checkpoints.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How many pages the log holds before a checkpoint: SQLite's own threshold.
const PAGES: u32 = 1000;

/// How many uncopied pages the writer copies itself, once the log holds [`PAGES`].
const TAIL: u32 = PAGES / 4;

/// How many pages the log holds before the writer checkpoints it itself, however many are uncopied.
const LIMIT: u32 = 4 * PAGES;

/// The first bytes of the `-shm` file read for the log's size: the wal-index header, its copy, and
/// the start of the checkpoint information (see "The WAL-Index Format" in
/// <https://www.sqlite.org/walformat.html>). Written in the machine's byte order.
const READ: usize = 100;
/// `mxFrame`: the last valid frame of the log.
const LAST_FRAME: usize = 16;
/// `nBackfill`: the frames already copied into the database file.
const COPIED: usize = 96;

/// The checkpointer of one database file, before it is started on the writer task's runtime.
#[derive(Debug)]
pub(super) struct Checkpointer {
    wal_index: File,
    options: SqliteConnectOptions,
}

impl Checkpointer {
    /// A checkpointer for the database `options` opens, whose `-shm` file is at `shm` and must
    /// exist (a connection has read the database); none, logged, if it cannot be opened.
    pub(super) fn open(shm: &Path, options: SqliteConnectOptions) -> Option<Checkpointer> {
        match File::open(shm) {
            Ok(wal_index) => Some(Checkpointer { wal_index, options }),
            Err(error) => {
                tracing::warn!(file = %shm.display(), %error, "Cannot read SQLite's wal-index; the writer's commits checkpoint the log themselves.");
                None
            }
        }
    }

    /// The options for the writer's connection: without SQLite's own checkpoints, which this takes
    /// over.
    pub(super) fn writer_options(&self, options: SqliteConnectOptions) -> SqliteConnectOptions {
        options.pragma("wal_autocheckpoint", "0")
    }

    /// Starts the checkpoint task on the current runtime.
    pub(super) fn start(self) -> Checkpoints {
        let wake = Arc::new(Notify::new());
        let copying = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(self.options, wake.clone(), copying.clone()));
        Checkpoints {
            wal_index: self.wal_index,
            wake,
            copying,
            task,
        }
    }
}

/// The running checkpoint task, woken by [`Checkpoints::committed`].
#[derive(Debug)]
pub(super) struct Checkpoints {
    wal_index: File,
    wake: Arc<Notify>,
    /// Whether the task has been woken and has not finished its checkpoint yet.
    copying: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Checkpoints {
    /// After each of the writer's commits on `conn`, once the log holds [`PAGES`] pages: copies
    /// them on `conn` if at most [`TAIL`] are left uncopied and the task is idle, or the log holds
    /// [`LIMIT`]; else wakes the task if it is idle. A failed checkpoint is logged; the writes
    /// committed stay committed.
    pub(super) async fn committed(&self, conn: &mut SqliteConnection) {
        let mut header = [0; READ];
        // A header torn by a concurrent commit only moves one checkpoint a little.
        if self.wal_index.read_exact_at(&mut header, 0).is_err() {
            return;
        }
        let last = frame(&header, LAST_FRAME);
        let uncopied = last.saturating_sub(frame(&header, COPIED));
        if last < PAGES || uncopied == 0 {
            return;
        }
        let copying = self.copying.load(Ordering::SeqCst);
        if last >= LIMIT || (uncopied <= TAIL && !copying) {
            if let Err(error) = checkpoint(conn).await {
                failed(&error);
            }
        } else if !copying {
            self.copying.store(true, Ordering::SeqCst);
            self.wake.notify_one();
        }
    }

    /// Ends the task, and with it its connection (a checkpoint under way runs to its end first, on
    /// the connection's thread).
    pub(super) async fn stop(self) {
        self.task.abort();
        self.task.await.ok();
    }
}

fn frame(header: &[u8; READ], at: usize) -> u32 {
    u32::from_ne_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
}

/// Runs a passive checkpoint at each wake-up, on a connection opened at the first and again after
/// one failed, and clears `copying` after each. A checkpoint never waits for the writer or readers,
/// and a failed one is logged: the writer's commits wake the task again, and the log grows
/// meanwhile; nothing is lost.
async fn run(options: SqliteConnectOptions, wake: Arc<Notify>, copying: Arc<AtomicBool>) {
    let mut conn: Option<SqliteConnection> = None;
    loop {
        wake.notified().await;
        let checkpointed = async {
            let conn = match &mut conn {
                Some(conn) => conn,
                None => conn.insert(options.connect().await?),
            };
            checkpoint(conn).await
        }
        .await;
        if let Err(error) = checkpointed {
            failed(&error);
            conn = None;
        }
        copying.store(false, Ordering::SeqCst);
    }
}

/// Copies what the log holds into the database file, as far as no reader still needs it, without
/// waiting for anyone.
async fn checkpoint(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(conn)
        .await
        .map(drop)
}

fn failed(error: &sqlx::Error) {
    tracing::warn!(%error, "A checkpoint of SQLite's write-ahead log failed; the log grows until one succeeds.");
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};

    use super::*;
    use crate::sqlite::watch::wal_index;

    /// A database in WAL mode with a table for the writer, its log's path, and a checkpointer with
    /// the writer's connection, as the store opens them.
    async fn database(dir: &tempfile::TempDir) -> (PathBuf, Checkpoints, SqliteConnection) {
        let file = dir.path().join("log.db");
        let options = SqliteConnectOptions::new()
            .filename(&file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // The sync of each commit is not what these tests are about, and slows them.
            .synchronous(SqliteSynchronous::Normal);
        let mut writer = options.connect().await.expect("opened");
        sqlx::query("CREATE TABLE filler (bytes BLOB)")
            .execute(&mut writer)
            .await
            .expect("created");
        let checkpointer = Checkpointer::open(&wal_index(&file), options.clone()).expect("opened");
        let writer = (checkpointer.writer_options(options).connect().await).expect("opened");
        let mut log = file.into_os_string();
        log.push("-wal");
        (PathBuf::from(log), checkpointer.start(), writer)
    }

    /// Commits `transactions` transactions of `pages` pages each, as the writer task does: each
    /// followed by [`Checkpoints::committed`], without a pause.
    async fn write(dir: &tempfile::TempDir, transactions: u32, pages: u32) -> PathBuf {
        let (log, checkpoints, mut writer) = database(dir).await;
        for _ in 0..transactions {
            sqlx::query("INSERT INTO filler (bytes) VALUES (randomblob(?1))")
                .bind(i64::from(pages) * 4000)
                .execute(&mut writer)
                .await
                .expect("written");
            checkpoints.committed(&mut writer).await;
        }
        checkpoints.stop().await;
        log
    }

    /// The size of the log, in pages.
    fn pages(log: &Path) -> u32 {
        // Each page in the log has a header of 24 bytes, and the log one of 32.
        let bytes = std::fs::metadata(log).expect("the log").len();
        u32::try_from((bytes - 32) / (4096 + 24)).expect("a log of fewer pages")
    }

    /// Small transactions, 48 MB in all: the task copies the log, the writer its tail, and the
    /// log starts over near [`PAGES`].
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_never_pauses_starts_the_log_over_after_the_task_s_checkpoints() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let log = write(&dir, 1200, 10).await;
        assert!(pages(&log) <= 2 * PAGES, "{} pages", pages(&log));
    }

    /// Transactions larger than [`TAIL`], 48 MB in all: the tail is never short, and the writer
    /// checkpoints at [`LIMIT`].
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_of_large_transactions_checkpoints_itself_at_the_limit() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let log = write(&dir, 40, 300).await;
        assert!(pages(&log) <= LIMIT + 2 * 310, "{} pages", pages(&log));
    }
}
