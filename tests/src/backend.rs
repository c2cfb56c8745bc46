//! The database backends the store, API, journal and delivery tests run on, each from one body:
//! [`Backend`] names one, [`on_both_backends!`](crate::on_both_backends) turns a list of
//! `async fn NAME(backend: Backend)` into a test per backend (ripgrep's `rgtest!` pattern), and a fresh
//! database or a migrated store of either backend is one call away.

use std::ops::Deref;
use std::sync::Arc;

use plant_monitor::config::DatabaseConfig;
use plant_monitor::store::{self, Store};
use sqlx::AnyPool;
use tempfile::TempDir;

use crate::TestDatabase;

/// A database backend the product runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// The machine's PostgreSQL server (see [`TestDatabase`]).
    Postgres,
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
            Backend::Postgres => FreshDatabase::Postgres(TestDatabase::create().await),
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
        TestStore { store, database }
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
    database: FreshDatabase,
}

impl TestStore {
    /// Another SQL client on the store's database (see [`FreshDatabase::sql`]).
    pub async fn sql(&self) -> AnyPool {
        self.database.sql().await
    }
}

impl Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &(dyn Store + 'static) {
        &*self.store
    }
}

/// Runs each `async fn NAME(backend: Backend)` listed as two tests, `sqlite::NAME` and `postgres::NAME`,
/// so one body covers both backends and stays an ordinary function rustfmt formats.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $crate::on_both_backends!(@module sqlite Sqlite $($name),+);
        $crate::on_both_backends!(@module postgres Postgres $($name),+);
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
