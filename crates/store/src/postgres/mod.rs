//! The PostgreSQL backend, for replicas sharing one database. Writes are single conditional statements
//! where possible (`RETURNING` gives the row as the triggers left it). A `LISTEN` on `plant_changes`,
//! which the journal trigger notifies while some reader waits (see [`awake`]), wakes the feed when any
//! writer commits; after the listening connection is lost and re-established the feed is woken too,
//! since notifications may have been missed in between. The SQL lives in one file per concern.

mod awake;
mod backfills;
mod capture;
mod journal;
mod leases;
mod outbox;
mod plant_row;
mod plants;
mod retention;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgConnection;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::migrations::{self, Embedded};
use super::signal::Written;
use super::{Connections, Fence, Store, StoreError, shared};
use plant_monitor_core::config::{DatabaseConfig, DatabaseUrl};

// The per-plant `NOT EXISTS` checks of the journal and the outbox end in `OFFSET 0`, which keeps
// PostgreSQL from turning them into an anti-join. Planned as a join, under statistics that lag a burst
// of writes (autovacuum has not analyzed yet), the probe scanned every pending row once per candidate:
// 61 s per round at 100k pending deliveries. As a correlated subplan it is an index probe on
// (sink, plant_id, id): 12 ms.

/// How long a lease statement waits for the lease connection: the keeper then tries again soon.
const LEASE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// The notification channel the journal trigger signals.
const CHANNEL: &str = "plant_changes";

/// The transactions that may still add journal entries: an INSERT takes its table lock before it
/// evaluates the seq's default, and keeps it until its transaction ends; readers take only
/// AccessShareLock.
const JOURNAL_WRITERS: &str = "SELECT DISTINCT virtualtransaction FROM pg_locks \
     WHERE locktype = 'relation' \
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
       AND relation = 'plant_changes'::regclass AND mode <> 'AccessShareLock' AND granted";

/// The notification channel a released lease is announced on, so a standby takes it at once.
const LEASE_CHANNEL: &str = "plant_monitor_leases";

/// A fenced write holds its lease's row until it commits, so that no successor can take the lease
/// in between. A process paused or cut off inside such a transaction would hold it, and keep the
/// region from its successor, for as long as it is gone: the server ends a transaction that has
/// waited on its client this long. Ours never wait on anything but the database between statements.
const IDLE_IN_TRANSACTION: &str = "SET idle_in_transaction_session_timeout = '2s'";

/// The current minute by the database clock (the transaction's start), in minutes since the Unix
/// epoch: the statistics' bucket of work recorded now.
const MINUTE_NOW: &str = "floor(extract(epoch FROM now()) / 60)::bigint";

/// A pool of connections to one PostgreSQL database, and the listener that wakes the journal's readers.
#[derive(Debug)]
pub struct PostgresStore {
    /// The database's URL, for the replication connection of `wal` capture.
    url: DatabaseUrl,
    pool: PgPool,
    /// A connection of the lease keeper's own, so that no load on the others (the API's reads, the
    /// feed, the sinks) can delay a renewal until the lease is lost.
    leases: PgPool,
    /// Announced after every write this process commits and on every `NOTIFY` of the journal trigger.
    written: Written,
    released: Arc<Notify>,
    listener: AbortHandle,
    awake: AbortHandle,
}

impl PostgresStore {
    pub async fn connect(config: &DatabaseConfig) -> Result<PostgresStore, StoreError> {
        let open_error = |source| StoreError::Open {
            url: config.url.to_string(),
            source,
        };
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.get())
            .after_connect(|connection, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(connection, IDLE_IN_TRANSACTION)
                        .await
                        .map(drop)
                })
            })
            .connect(config.url.expose())
            .await
            .map_err(open_error)?;
        let leases = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(LEASE_ACQUIRE_TIMEOUT)
            .connect(config.url.expose())
            .await
            .map_err(open_error)?;
        let mut listener = PgListener::connect_with(&pool).await.map_err(open_error)?;
        listener
            .listen_all([CHANNEL, LEASE_CHANNEL])
            .await
            .map_err(open_error)?;
        let written = Written::new();
        let released = Arc::new(Notify::new());
        let listener =
            tokio::spawn(listen(listener, written.clone(), released.clone())).abort_handle();
        let awake = tokio::spawn(awake::keep_awake(pool.clone(), written.clone())).abort_handle();
        Ok(PostgresStore {
            url: config.url.clone(),
            pool,
            leases,
            written,
            released,
            listener,
            awake,
        })
    }
}

/// Turns notifications into wake-ups for as long as the store lives.
async fn listen(mut listener: PgListener, written: Written, released: Arc<Notify>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) if notification.channel() == LEASE_CHANNEL => {
                crate::signal::announce_release(&released);
            }
            Ok(Some(_)) => written.announce(),
            // The connection was lost; the next call reconnects. What was committed meanwhile went
            // unannounced, so look now.
            Ok(None) => {
                written.announce();
                crate::signal::announce_release(&released);
            }
            Err(error) => {
                tracing::warn!(%error, "Lost the PostgreSQL change notifications; polling until they return.");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate::Migrator::new(Embedded(migrations::POSTGRES))
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
        shared::readiness(applied, migrations::latest(migrations::POSTGRES))
    }

    fn connections(&self) -> Connections {
        let pools = [&self.pool, &self.leases];
        Connections {
            open: pools.iter().map(|pool| pool.size()).sum(),
            idle: pools.iter().map(|pool| pool.num_idle() as u32).sum(),
        }
    }

    async fn close(&self) {
        self.listener.abort();
        self.awake.abort();
        self.pool.close().await;
        self.leases.close().await;
    }
}

/// Touches the lease row of every fence in `$1` (see [`shared::fences_json`]) that still holds,
/// returning its name, and keeps it locked until the transaction ends: that orders the write after
/// any acquisition that committed before it and before any that comes after.
pub(super) const FENCES: &str = "UPDATE leases l SET epoch = l.epoch FROM jsonb_array_elements($1::jsonb) AS f \
     WHERE l.name = f ->> 0 AND l.holder = f ->> 1 AND l.epoch = (f ->> 2)::bigint \
     RETURNING l.name";

/// Checks every fence inside `tx` ([`FENCES`]).
async fn check_fences(tx: &mut PgConnection, fences: &[Fence]) -> Result<(), StoreError> {
    let touched: Vec<String> = sqlx::query_scalar(FENCES)
        .bind(shared::fences_json(fences))
        .fetch_all(tx)
        .await?;
    shared::fenced(fences, &touched)
}

/// `query`'s rows (ordered by `order`) for as long as the sizes summed before each stay under
/// [`READ_BYTES`](super::READ_BYTES): the first row always comes, and a batch of large rows is
/// shorter, not larger. `size` is a row's size, an expression over the columns of `q`. The server
/// makes the cut, so the rows left out never cross the network (SQLite cuts as the rows arrive, see
/// `sqlite::read_budget`).
fn within_read_budget(query: &str, size: &str, order: &str) -> String {
    format!(
        "SELECT * FROM (SELECT q.*, sum({size}) OVER (ORDER BY q.{order} ROWS UNBOUNDED PRECEDING) \
           - ({size}) AS bytes_before FROM ({query}) q) budgeted \
         WHERE bytes_before < {} ORDER BY {order}",
        super::READ_BYTES
    )
}
