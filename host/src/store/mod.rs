//! The store: plants, the change journal, and the schema they live in. One trait, [`Store`], with one
//! implementation per database backend, so callers never see SQL and a new backend fits beside the others
//! without rewriting them. The journal itself is written by database triggers (see `migrations/`), so
//! every writer, not only this process, is captured.

mod decode;
mod migrations;
mod model;
mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::DatabaseConfig;

pub use model::{
    Change, ChangeKind, Delivery, Fuel, Outcome, OutcomeKind, Plant, PlantDraft, PlantFilter,
    Processed, Retry, Status,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A failed store operation, naming the plant where one is involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("plant {id} not found")]
    NotFound { id: String },
    #[error("plant {id} is at version {current}, not the expected {expected}")]
    VersionMismatch {
        id: String,
        expected: u64,
        current: u64,
    },
    #[error("cannot open database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("migrations are not applied (database at {applied:?}, this build needs {required})")]
    NotMigrated { applied: Option<i64>, required: i64 },
    #[error("stored {what} is not valid: {reason}")]
    Corrupt { what: String, reason: String },
}

/// Everything the rest of the program asks of the database.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Applies every pending migration; safe to call from several processes at once.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Succeeds when the database answers and the schema is the one this build expects.
    async fn check_ready(&self) -> Result<(), StoreError>;

    async fn create_plant(&self, draft: &PlantDraft) -> Result<Plant, StoreError>;

    async fn get_plant(&self, id: &str) -> Result<Option<Plant>, StoreError>;

    /// Plants matching `filter` with an id greater than `after`, ordered by id, at most `limit`.
    async fn list_plants(
        &self,
        filter: &PlantFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Plant>, StoreError>;

    /// Replaces a plant's writable fields; with `expected_version`, only if the plant is still at it.
    async fn replace_plant(
        &self,
        id: &str,
        draft: &PlantDraft,
        expected_version: Option<u64>,
    ) -> Result<Plant, StoreError>;

    /// Deletes a plant; with `expected_version`, only if the plant is still at it.
    async fn delete_plant(&self, id: &str, expected_version: Option<u64>)
    -> Result<(), StoreError>;

    /// Journal entries with `seq > after`, oldest first, at most `limit`; of one plant when `plant_id` is set.
    async fn list_changes(
        &self,
        plant_id: Option<&str>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Change>, StoreError>;

    /// Waits until a change may have been written, or `at_most` has passed. In-process writes wake it
    /// at once; writes by other processes are found by the caller's next poll.
    async fn wait_for_changes(&self, at_most: std::time::Duration);

    /// The oldest journal entries not yet processed by the feed, in `seq` order, at most `limit`.
    async fn unprocessed_changes(&self, limit: u32) -> Result<Vec<Change>, StoreError>;

    /// Marks changes processed with their outcome and inserts their deliveries, all in one transaction.
    async fn record_processed(&self, batch: &[Processed]) -> Result<(), StoreError>;

    /// Appends a `snapshot` entry for every plant, unless `only_first` and `scope` was snapshotted
    /// before; returns how many entries were added.
    async fn snapshot(&self, scope: &str, only_first: bool) -> Result<u64, StoreError>;

    /// Deliveries to `sink` that are due and whose plant has no earlier delivery still waiting, in id
    /// order, at most `limit`.
    async fn due_deliveries(&self, sink: &str, limit: u32) -> Result<Vec<Delivery>, StoreError>;

    /// Records the attempts of one round: `delivered` ids are done, `retries` wait and go again.
    async fn finish_deliveries(
        &self,
        delivered: &[i64],
        retries: &[Retry],
    ) -> Result<(), StoreError>;

    /// Closes every connection; pending operations finish first.
    async fn close(&self);
}

/// Opens the database the configuration names; the URL scheme chooses the backend.
pub async fn connect(config: &DatabaseConfig) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres(&config.url) {
        Ok(Arc::new(PostgresStore::connect(config).await?))
    } else {
        Ok(Arc::new(SqliteStore::connect(config).await?))
    }
}

/// Whether a database URL names PostgreSQL (otherwise it is SQLite).
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A draft's attributes as the JSON object text every backend stores.
fn attributes_json(draft: &PlantDraft) -> String {
    serde_json::Value::from_iter(
        draft
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str()))),
    )
    .to_string()
}

/// The readiness verdict from the newest applied migration (`None`: never migrated) and the one this
/// build needs.
fn readiness(applied: Option<i64>, required: i64) -> Result<(), StoreError> {
    if applied == Some(required) {
        Ok(())
    } else {
        Err(StoreError::NotMigrated { applied, required })
    }
}

/// A missing migrations table means the database answers but was never migrated.
fn no_migrations_table(error: sqlx::Error) -> Result<Option<i64>, sqlx::Error> {
    match error {
        sqlx::Error::Database(_) => Ok(None),
        other => Err(other),
    }
}

/// Why a write conditional on `expected` touched no row, given the plant's `current` version.
fn missed(id: &str, current: Option<i64>, expected: Option<u64>) -> StoreError {
    match (current, expected) {
        (Some(current), Some(expected)) => StoreError::VersionMismatch {
            id: id.to_owned(),
            expected,
            current: current as u64,
        },
        _ => StoreError::NotFound { id: id.to_owned() },
    }
}

/// A processed batch as the JSON arrays the set-based writes read: one `[seq, result, plugin, reason,
/// event]` per change and one `[seq, sink, plant_id]` per delivery.
fn batch_json(batch: &[Processed]) -> (String, String) {
    let outcomes = serde_json::Value::from_iter(
        batch
            .iter()
            .map(|p| serde_json::json!([p.seq, p.result.as_str(), p.plugin, p.reason, p.event])),
    );
    let deliveries = serde_json::Value::from_iter(batch.iter().flat_map(|p| {
        p.sinks
            .iter()
            .map(|sink| serde_json::json!([p.seq, sink, p.plant_id]))
    }));
    (outcomes.to_string(), deliveries.to_string())
}
