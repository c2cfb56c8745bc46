//! The embedded SQLite backend: one database file in WAL mode, shared safely by several processes.
//! Writes start with the write itself, so a transaction never has to upgrade a read lock (which SQLite
//! would refuse under contention); the busy timeout then orders concurrent writers. The API's plant
//! writes and the records of the feed and the sinks queue for one writer task that commits them in
//! groups (see `group_commit`). The SQL lives in one file per concern.

mod backfills;
mod checkpoint;
mod group_commit;
mod journal;
mod leases;
mod outbox;
mod plant_columns;
mod plants;
mod read_budget;
mod retention;
mod stats;
mod watch;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, SqliteConnection};
use tokio::sync::Notify;

use self::checkpoint::Checkpointer;
use self::group_commit::GroupCommit;
use self::watch::{OwnWrites, Watcher};
use super::migrations::{self, Embedded};
use super::signal::Written;
use super::{CaptureStatus, CaptureStore, Connections, Fence, Store, StoreError, shared};
use plant_monitor_core::config::{CaptureMode, DatabaseConfig};

/// How long a writer waits for another's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a lease statement waits for the lease connection: the keeper then tries again soon.
const LEASE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// A pool of connections to one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// A connection of the lease keeper's own, so that no load on the others (the API's reads, the
    /// feed, the sinks) can delay a renewal until the lease is lost.
    leases: SqlitePool,
    /// The one connection the API's plant writes and the feed's and sinks' records are
    /// group-committed on (see `group_commit`).
    writer: GroupCommit,
    /// Announced after every write this process commits, and when the watcher sees another
    /// connection's commit (see `watch`), so the journal's readers need not wait for their next poll.
    written: Written,
    watcher: Watcher,
    /// The lease keeper's writes, which the watcher need not look busily after.
    own: OwnWrites,
    /// Signalled when this process releases a lease. Other processes on the file find out by polling.
    released: Arc<Notify>,
}

impl SqliteStore {
    /// Opens (creating if missing) the file `config.url` names, and its folder.
    pub async fn connect(config: &DatabaseConfig) -> Result<SqliteStore, StoreError> {
        let open_error = |source| StoreError::Open {
            url: config.url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(config.url.expose())
            .map_err(open_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a change acknowledged to a client survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let file = options.get_filename().to_owned();
        if let Some(folder) = file.parent()
            && !folder.as_os_str().is_empty()
        {
            std::fs::create_dir_all(folder).map_err(|error| open_error(sqlx::Error::Io(error)))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections.get())
            // A connection to a file in this process does not break while idle, and the pool pings
            // each one as it comes back already: a second ping on the way out was a round trip to
            // its thread more for every read.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        let leases = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(LEASE_ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        let holding = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        // A first read opens the write-ahead log and its wal-index, which the watcher and the
        // checkpointer read.
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .execute(&holding)
            .await
            .map_err(open_error)?;
        let checkpointer = Checkpointer::open(&watch::wal_index(&file), options.clone());
        let writer_options = match &checkpointer {
            Some(checkpointer) => checkpointer.writer_options(options),
            None => options,
        };
        let writer = writer_options.connect().await.map_err(open_error)?;
        let written = Written::new();
        let own = OwnWrites::default();
        let watcher = Watcher::start(&file, holding, written.clone(), own.clone());
        Ok(SqliteStore {
            pool,
            leases,
            writer: GroupCommit::start(
                writer,
                writer_options,
                written.clone(),
                own.clone(),
                checkpointer,
            )
            .map_err(|error| open_error(sqlx::Error::Io(error)))?,
            written,
            watcher,
            own,
            released: Arc::new(Notify::new()),
        })
    }
}

/// SQLite has no log another process could decode: its journal triggers are the only capture.
#[async_trait]
impl CaptureStore for SqliteStore {
    async fn switch_capture(&self, mode: CaptureMode) -> Result<(), StoreError> {
        match mode {
            CaptureMode::Trigger => Ok(()),
            CaptureMode::Wal => Err(no_wal()),
        }
    }

    async fn capture(
        &self,
        _: &Fence,
        _: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        Err(no_wal())
    }

    async fn drop_slot(&self) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    async fn capture_status(&self) -> Result<CaptureStatus, StoreError> {
        Ok(CaptureStatus {
            mode: CaptureMode::Trigger.as_str().into(),
            slot: None,
            active: false,
            retained_bytes: None,
            lag_bytes: None,
        })
    }
}

fn no_wal() -> StoreError {
    StoreError::CaptureUnavailable {
        reason: "SQLite journals by triggers only; capture.mode = \"wal\" is for PostgreSQL".into(),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate::Migrator::new(Embedded(migrations::SQLITE))
            .await?
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .or_else(shared::no_migrations_table)?;
        shared::readiness(applied, migrations::latest(migrations::SQLITE))
    }

    fn connections(&self) -> Connections {
        let pools = [&self.pool, &self.leases, self.watcher.holding()];
        let (writer_open, writer_idle) = self.writer.connection();
        Connections {
            open: pools.iter().map(|pool| pool.size()).sum::<u32>() + u32::from(writer_open),
            idle: pools.iter().map(|pool| pool.num_idle() as u32).sum::<u32>()
                + u32::from(writer_idle),
        }
    }

    async fn close(&self) {
        self.pool.close().await;
        self.leases.close().await;
        self.writer.close().await;
        self.watcher.stop().await;
    }
}

/// Checks every fence inside `tx`. The transaction holds SQLite's write lock from this first write to
/// its end, so no acquisition can come between the check and the writes it guards.
async fn check_fences(tx: &mut SqliteConnection, fences: &[Fence]) -> Result<(), StoreError> {
    let touched: Vec<String> = sqlx::query_scalar(FENCES)
        .bind(fences_json(fences))
        .fetch_all(tx)
        .await?;
    shared::fenced(fences, &touched)
}

/// Touches the lease of every fence in `?1`'s `fences` (see [`fences_json`]) that still holds,
/// returning its name: a write, so it takes the write lock, and a fence whose name is missing has
/// been lost.
const FENCES: &str = "UPDATE leases SET epoch = leases.epoch FROM json_each(?1, '$.fences') AS f \
     WHERE leases.name = f.value ->> 0 AND leases.holder = f.value ->> 1 \
       AND leases.epoch = f.value ->> 2 \
     RETURNING leases.name";

/// `fences` as the JSON object [`FENCES`] reads.
fn fences_json(fences: &[Fence]) -> String {
    format!(r#"{{"fences":{}}}"#, shared::fences_json(fences))
}

/// The current minute by the database clock, in minutes since the Unix epoch: the statistics' bucket
/// of work recorded now.
const MINUTE_NOW: &str = "(unixepoch('now') / 60)";

/// A duration as an SQLite date modifier, to the millisecond.
fn seconds_modifier(duration: Duration) -> String {
    format!("+{:.3} seconds", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use sqlx::SqlitePool;

    /// `.cargo/config.toml` compiles the bundled SQLite without it: a build that lost the flag would
    /// put every allocation of every connection behind one mutex again.
    #[tokio::test]
    async fn the_bundled_sqlite_keeps_no_process_wide_count_of_its_memory() {
        let pool = SqlitePool::connect("sqlite::memory:")
            .await
            .expect("opened");
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&pool)
            .await
            .expect("read");
        assert!(
            options.iter().any(|option| option == "DEFAULT_MEMSTATUS=0"),
            "compiled with {options:?}"
        );
    }
}
