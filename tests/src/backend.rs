//! The database backends the store, API, journal and delivery tests run on, each from one body:
//! [`Backend`] names one (PostgreSQL once per capture mode), [`on_every_backend!`](crate::on_every_backend)
//! turns a list of `async fn NAME(backend: Backend)` into a test per backend (ripgrep's `rgtest!`
//! pattern), and a fresh database or a migrated store of any backend is one call away.

use std::ops::Deref;
use std::sync::Arc;

use plant_monitor::config::{CaptureMode, Config, DatabaseConfig};
use plant_monitor::store::{self, Acquisition, Fence, Store, StoreError};
use sqlx::AnyPool;
use tempfile::TempDir;

use crate::TestDatabase;

/// A database backend the product runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// The machine's PostgreSQL server (see [`TestDatabase`]), journaling by triggers.
    Postgres,
    /// The same, journaling from the write-ahead log (`capture.mode = "wal"`).
    PostgresWal,
}

impl Backend {
    /// A fresh, empty database of this backend, deleted when dropped.
    pub async fn database(self) -> FreshDatabase {
        match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary folder");
                let url = format!("sqlite://{}", dir.path().join("plant-monitor.db").display());
                FreshDatabase::Sqlite { url, _dir: dir }
            }
            Backend::Postgres | Backend::PostgresWal => {
                FreshDatabase::Postgres(TestDatabase::create().await)
            }
        }
    }

    /// Whether this is PostgreSQL, whatever its capture mode.
    pub fn is_postgres(self) -> bool {
        self != Backend::Sqlite
    }

    /// `config` made to run on this backend: its capture mode.
    pub fn configure(self, config: &mut Config) {
        if self == Backend::PostgresWal {
            config.capture.mode = CaptureMode::Wal;
        }
    }

    /// A migrated store on a fresh database of this backend, opened as the service opens it.
    pub async fn store(self) -> TestStore {
        let database = self.database().await;
        let store = store::connect(&DatabaseConfig {
            url: database.url().parse().expect("a database URL"),
            max_connections: 4.try_into().expect("not 0"),
        })
        .await
        .expect("the store opens");
        store.migrate().await.expect("the store migrates");
        let capture = match self {
            Backend::PostgresWal => Some(CaptureLeader::start(store.clone()).await),
            Backend::Sqlite | Backend::Postgres => None,
        };
        TestStore {
            store,
            _capture: capture,
            database,
        }
    }
}

/// A capture leader for a store switched to `wal` capture, run as the service runs it (the store's
/// capture under the `capture` lease), until [`CaptureLeader::stop`] or until dropped. The tests'
/// stores and the benchmarks use it.
#[derive(Debug)]
pub struct CaptureLeader {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
}

impl CaptureLeader {
    /// Switches `store`'s database to `wal` capture, while whatever writes to it goes on, takes the
    /// free `capture` lease and starts capturing.
    pub async fn start(store: Arc<dyn Store>) -> CaptureLeader {
        store
            .switch_capture(CaptureMode::Wal)
            .await
            .expect("the database switches to wal capture");
        let holder = "test-capture".to_owned();
        let ttl = std::time::Duration::from_secs(3600);
        let Acquisition::Acquired { epoch } = store
            .acquire_lease("capture", &holder, ttl)
            .await
            .expect("the capture lease")
        else {
            panic!("a fresh database's capture lease is free");
        };
        let fence = Fence {
            lease: "capture".into(),
            holder,
            epoch,
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move { store.capture(&fence, stopped).await });
        CaptureLeader {
            stop,
            task: Some(task),
        }
    }

    /// Stops capturing; how the capture ended. (Dropped instead, it stops without saying: a test that
    /// drops the slot ends the stream on purpose, one that needed it fails on the journal it checks.)
    pub async fn stop(mut self) -> Result<(), StoreError> {
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(task) => task.await.expect("the capture task does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for CaptureLeader {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A database created for one test: an SQLite file in a folder of its own, or a PostgreSQL database of
/// its own. Dropping it deletes it.
#[derive(Debug)]
pub enum FreshDatabase {
    Sqlite { url: String, _dir: TempDir },
    Postgres(TestDatabase),
}

impl FreshDatabase {
    pub fn url(&self) -> &str {
        match self {
            FreshDatabase::Sqlite { url, .. } => url,
            FreshDatabase::Postgres(database) => &database.url,
        }
    }

    /// A connection pool to this database, as any other SQL client would open it. SQL written for it
    /// runs on both backends when its binds are `$1`, `$2`, …, which SQLite reads as named parameters.
    pub async fn sql(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPool::connect(self.url())
            .await
            .expect("a second SQL client connects")
    }
}

/// A store on a database of its own, which lives as long as the store: use it as a `dyn Store`.
#[derive(Debug)]
pub struct TestStore {
    store: Arc<dyn Store>,
    _capture: Option<CaptureLeader>,
    database: FreshDatabase,
}

impl TestStore {
    /// Another SQL client on the store's database (see [`FreshDatabase::sql`]).
    pub async fn sql(&self) -> AnyPool {
        self.database.sql().await
    }

    /// The store's database URL.
    pub fn url(&self) -> &str {
        self.database.url()
    }

    /// Switches the store's database to `wal` capture, while whatever writes to it goes on, and runs a
    /// capture leader for it from now on.
    pub async fn capture_from_wal(&mut self) {
        self._capture = Some(CaptureLeader::start(self.store.clone()).await);
    }

    /// Returns once every change committed before the call is journaled (see [`captured`]).
    pub async fn captured(&self) {
        if self._capture.is_some() {
            captured(&self.sql().await).await;
        }
    }
}

/// In `wal` capture, journal entries appear once the capture leader has decoded their transaction:
/// waits until it has passed a marker written now, and so every transaction committed before.
pub async fn captured(sql: &AnyPool) {
    captured_within(sql, crate::WAIT).await
}

/// [`captured`], waiting at most `limit` (a new leader may first have to wait out a lease).
pub async fn captured_within(sql: &AnyPool, limit: std::time::Duration) {
    static MARKERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let token = format!(
        "{}-{}",
        std::process::id(),
        MARKERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    sqlx::query("SELECT pg_logical_emit_message(false, 'plant_monitor.marker', $1)::text")
        .bind(&token)
        .execute(sql)
        .await
        .expect("a marker for the capture leader");
    crate::eventually(limit, || async {
        let passed: Option<String> = sqlx::query_scalar("SELECT marker FROM capture")
            .fetch_one(sql)
            .await
            .expect("the capture state");
        match passed {
            Some(marker) if marker == token => Ok(()),
            other => Err(format!(
                "the capture leader is at marker {other:?}, not {token}"
            )),
        }
    })
    .await
}

impl Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &(dyn Store + 'static) {
        &*self.store
    }
}

/// Runs each `async fn NAME(backend: Backend)` listed as three tests, `sqlite::NAME`, `postgres::NAME`
/// and `postgres_wal::NAME`, so one body covers every backend and stays an ordinary function rustfmt
/// formats.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {
        $crate::on_every_backend!(@module sqlite Sqlite $($name),+);
        $crate::on_every_backend!(@module postgres Postgres $($name),+);
        $crate::on_every_backend!(@module postgres_wal PostgresWal $($name),+);
    };
    (@module $module:ident $backend:ident $($name:ident),+) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::Backend::$backend).await
                }
            )+
        }
    };
}

/// Waits (up to `limit`) until the capture leader has journaled everything committed, then checks
/// the journal against the plants: `expected` entries, each change once, in order (see
/// [`journal_is_exact`]). `log` says what the service logged, for a failure.
pub async fn assert_captured_exactly(
    sql: &AnyPool,
    limit: std::time::Duration,
    expected: u64,
    log: impl Fn() -> String,
) {
    captured_within(sql, limit).await;
    let journaled = journal_is_exact(sql)
        .await
        .unwrap_or_else(|wrong| panic!("{wrong}\n{}", log()));
    assert_eq!(journaled as u64, expected, "entries journaled");
}

/// Every plant's journal, checked against the plant itself: each change journaled exactly once and in
/// order, so its entries' versions run 1, 2, 3, … up to the plant's version now (snapshots aside).
/// Answers the number of entries checked, or what is wrong.
pub async fn journal_is_exact(sql: &AnyPool) -> Result<usize, String> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT p.id, p.version, \
                coalesce(string_agg(((c.after_row).version)::text, ',' ORDER BY c.seq), '') \
         FROM power_plants p LEFT JOIN plant_changes c ON c.plant_id = p.id AND c.kind <> 'snapshot' \
         GROUP BY p.id, p.version ORDER BY p.id",
    )
    .fetch_all(sql)
    .await
    .map_err(|error| error.to_string())?;
    let mut entries = 0;
    for (id, version, journaled) in rows {
        let expected: Vec<String> = (1..=version).map(|v| v.to_string()).collect();
        if journaled != expected.join(",") {
            return Err(format!(
                "plant {id} is at version {version}; its journal has versions [{journaled}]"
            ));
        }
        entries += expected.len();
    }
    Ok(entries)
}
