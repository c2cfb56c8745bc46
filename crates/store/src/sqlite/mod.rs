//! The embedded SQLite backend: one database file in WAL mode, shared safely by several processes.
//! Writes start with the write itself, so a transaction never has to upgrade a read lock (which SQLite
//! would refuse under contention); the busy timeout then orders concurrent writers. The SQL lives in
//! one file per concern.

mod journal;
mod leases;
mod outbox;
mod plants;
mod retention;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqliteConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::Notify;

use super::migrations::{self, Embedded};
use super::{Fence, Store, StoreError, shared};
use plant_monitor_core::config::DatabaseConfig;

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
    /// Signalled after every write this process commits, so the feed need not wait for its next poll.
    written: Arc<Notify>,
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
        if let Some(folder) = options.get_filename().parent()
            && !folder.as_os_str().is_empty()
        {
            std::fs::create_dir_all(folder).map_err(|error| open_error(sqlx::Error::Io(error)))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections.get())
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        let leases = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(LEASE_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        Ok(SqliteStore {
            pool,
            leases,
            written: Arc::new(Notify::new()),
            released: Arc::new(Notify::new()),
        })
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

    async fn close(&self) {
        self.pool.close().await;
        self.leases.close().await;
    }
}

/// Checks every fence inside `tx`. The transaction holds SQLite's write lock from this first write to
/// its end, so no acquisition can come between the check and the writes it guards.
async fn check_fences(tx: &mut SqliteConnection, fences: &[Fence]) -> Result<(), StoreError> {
    let touched: Vec<String> = sqlx::query_scalar(
        "UPDATE leases SET epoch = leases.epoch FROM json_each(?1) AS f \
         WHERE leases.name = f.value ->> 0 AND leases.holder = f.value ->> 1 \
           AND leases.epoch = f.value ->> 2 \
         RETURNING leases.name",
    )
    .bind(shared::fences_json(fences))
    .fetch_all(tx)
    .await?;
    shared::fenced(fences, &touched)
}

/// A duration as an SQLite date modifier, to the millisecond.
fn seconds_modifier(duration: Duration) -> String {
    format!("+{:.3} seconds", duration.as_secs_f64())
}
