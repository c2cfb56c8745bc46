//! The database a benchmark runs on: an SQLite file, or a PostgreSQL database created for the run and
//! dropped with it (the tests' [`TestDatabase`], so creating and dropping one exists once).

use std::time::Duration;

use plant_monitor::config::{CaptureMode, Config, DatabaseConfig, SnapshotMode};
use plant_monitor::store;
use plant_monitor_tests::TestDatabase;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

/// The database under test.
pub enum Database {
    Sqlite(String),
    Postgres(TestDatabase),
}

impl Database {
    /// A PostgreSQL database on the server `admin` reaches when given, else the SQLite file `file` in
    /// `dir`.
    pub async fn open(
        admin: Option<&str>,
        dir: &std::path::Path,
        file: &str,
    ) -> anyhow::Result<Database> {
        match admin {
            Some(admin) => Ok(Database::Postgres(TestDatabase::create_on(admin).await?)),
            None => Ok(Database::Sqlite(format!(
                "sqlite://{}",
                dir.join(file).display()
            ))),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Database::Sqlite(url) => url,
            Database::Postgres(database) => &database.url,
        }
    }

    /// A pool of `connections` writers opened as the store opens its own (crates/store/src/sqlite):
    /// on SQLite write-ahead log, `synchronous = FULL`, foreign keys and a busy timeout that orders
    /// concurrent writers; so a rate measured through it is the rate the service's writers would get.
    pub async fn writers(&self, connections: u32) -> anyhow::Result<AnyPool> {
        sqlx::any::install_default_drivers();
        let sqlite = matches!(self, Database::Sqlite(_));
        Ok(AnyPoolOptions::new()
            .max_connections(connections)
            .min_connections(connections)
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if sqlite {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 10000",
                        ] {
                            sqlx::Executor::execute(&mut *connection, pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(self.url())
            .await?)
    }

    /// Migrates the schema as the service does at start, for benchmarks whose writers come before it
    /// or without it.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.prepare(CaptureMode::Trigger).await
    }

    /// Migrates the schema and switches the database to capture `mode`, as the service does at start.
    pub async fn prepare(&self, mode: CaptureMode) -> anyhow::Result<()> {
        let store = store::connect(&DatabaseConfig {
            url: self.url().parse().map_err(anyhow::Error::msg)?,
            ..DatabaseConfig::default()
        })
        .await?;
        store.migrate().await?;
        store.switch_capture(mode).await?;
        store.close().await;
        Ok(())
    }

    /// A service on this database with no plugins, no start-up snapshot, an API on a free port and the
    /// one sink `name` configured by `sink` (a sink's configuration as JSON).
    pub fn service_config(
        &self,
        dir: &std::path::Path,
        name: &str,
        sink: serde_json::Value,
    ) -> anyhow::Result<Config> {
        let mut config = Config::default();
        config.database.url = self.url().parse().map_err(anyhow::Error::msg)?;
        config.server.listen = "127.0.0.1:0".parse()?;
        config.plugins.dir = dir.join("no-plugins");
        config.feed.snapshot = SnapshotMode::Never;
        config
            .sinks
            .insert(name.into(), serde_json::from_value(sink)?);
        Ok(config)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "SQLite",
            Database::Postgres(_) => "PostgreSQL",
        }
    }
}
