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
    Acquisition, Attempts, Change, ChangeKind, Dead, Delivery, DeliveryRecord, DeliveryStatus,
    Fence, Fuel, Lease, Outcome, OutcomeKind, PLUGIN_DEAD_LETTER, Plant, PlantDraft, PlantFilter,
    Processed, Replay, Retry, SinkStats, Status, is_region,
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
    #[error("lease {lease} is no longer ours: another instance acquired it")]
    Fenced { lease: String },
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

    /// The oldest unprocessed journal entries of `regions`, in `seq` order, at most `limit`. An entry is
    /// passed over while an earlier entry of the same plant in another region is unprocessed, so a
    /// plant that moved regions keeps its order across leaders.
    async fn unprocessed_changes(
        &self,
        regions: &[String],
        limit: u32,
    ) -> Result<Vec<Change>, StoreError>;

    /// Marks changes processed with their outcome and inserts their deliveries, all in one transaction
    /// that first checks every fence: if one no longer holds, nothing is written and the answer is
    /// [`StoreError::Fenced`].
    async fn record_processed(
        &self,
        batch: &[Processed],
        fences: &[Fence],
    ) -> Result<(), StoreError>;

    /// Appends a `snapshot` entry for every plant of `region` that has no unprocessed change (which
    /// will bring its state anyway), unless `only_first` and the region was snapshotted before;
    /// returns how many entries were added. One fenced transaction, so a snapshot
    /// cut off by a crash is wholly absent and the next leader takes it.
    async fn snapshot(
        &self,
        region: &str,
        only_first: bool,
        fence: &Fence,
    ) -> Result<u64, StoreError>;

    /// Every region with plants, unprocessed journal entries or pending deliveries.
    async fn active_regions(&self) -> Result<Vec<String>, StoreError>;

    /// Takes the lease `name` for `ttl` if it is free, expired, or already `holder`'s; the epoch rises
    /// with every acquisition. One conditional statement on the database clock.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Acquisition, StoreError>;

    /// Extends a lease held under `fence` to `ttl` from now; false when it is no longer held so.
    async fn renew_lease(
        &self,
        fence: &Fence,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;

    /// Lets a lease held under `fence` expire now, so another instance can take it at once.
    async fn release_lease(&self, fence: &Fence) -> Result<(), StoreError>;

    /// Waits until a lease may have been released (true), or `at_most` has passed (false).
    async fn wait_for_lease_release(&self, at_most: std::time::Duration) -> bool;

    /// Every lease, by name.
    async fn leases(&self) -> Result<Vec<Lease>, StoreError>;

    /// Deliveries of `regions` to `sink` that are due and whose plant has no earlier delivery still
    /// waiting (in any region), in id order, at most `limit`; none while the sink is disabled.
    async fn due_deliveries(
        &self,
        sink: &str,
        regions: &[String],
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Records what `sink`'s requests came to: delivered, to be retried, or dead; a failure also
    /// becomes the sink's last error.
    async fn record_attempts(&self, sink: &str, attempts: &Attempts) -> Result<(), StoreError>;

    /// Stops `sink` for every replica (a receiver answered 410 Gone), until [`Store::enable_sink`].
    async fn disable_sink(&self, sink: &str, reason: &str) -> Result<(), StoreError>;

    /// Lets a disabled sink deliver again; false when it was not disabled.
    async fn enable_sink(&self, sink: &str) -> Result<bool, StoreError>;

    /// The outbox figures and shared state of every sink that has any, by name.
    async fn sink_stats(&self) -> Result<Vec<(String, SinkStats)>, StoreError>;

    /// Deliveries with `status` (of `sink` when given; `PLUGIN_DEAD_LETTER` names plugin failures)
    /// with an id above `after`, in id order, at most `limit`.
    async fn list_deliveries(
        &self,
        status: DeliveryStatus,
        sink: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Replays one dead letter: a sink's goes back to pending with its attempts reset; a plugin's
    /// journal entry goes back to unprocessed, so the current pipeline runs it again.
    async fn retry_delivery(&self, id: i64) -> Result<Replay, StoreError>;

    /// Puts every dead letter of `sink` back to pending; returns how many.
    async fn retry_dead(&self, sink: &str) -> Result<u64, StoreError>;

    /// Deletes up to `limit` delivered outbox rows older than `age`, then up to `limit` processed
    /// journal entries older than `age` that nothing is left to deliver; returns how many of each.
    async fn prune(&self, age: std::time::Duration, limit: u32) -> Result<(u64, u64), StoreError>;

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

/// Every region with plants, unprocessed journal entries or pending deliveries; the same SQL on every
/// backend. Each source is read by skipping through its region index, one probe per region, so the
/// cost does not grow with the number of plants, entries or deliveries: the keeper runs it often.
const ACTIVE_REGIONS: &str = "WITH RECURSIVE \
     p(region) AS (SELECT min(region) FROM power_plants \
       UNION ALL SELECT (SELECT min(region) FROM power_plants WHERE region > p.region) \
       FROM p WHERE p.region IS NOT NULL), \
     c(region) AS (SELECT min(region) FROM plant_changes WHERE processed_at IS NULL \
       UNION ALL SELECT (SELECT min(region) FROM plant_changes \
                         WHERE processed_at IS NULL AND region > c.region) \
       FROM c WHERE c.region IS NOT NULL), \
     d(region) AS (SELECT min(region) FROM deliveries WHERE status = 'pending' \
       UNION ALL SELECT (SELECT min(region) FROM deliveries \
                         WHERE status = 'pending' AND region > d.region) \
       FROM d WHERE d.region IS NOT NULL) \
     SELECT region FROM p WHERE region IS NOT NULL \
     UNION SELECT region FROM c WHERE region IS NOT NULL \
     UNION SELECT region FROM d WHERE region IS NOT NULL";

/// Per-sink outbox counts as the CTE `counts`, the same SQL on every backend. Failed attempts are all
/// attempts but the one that succeeded.
const SINK_COUNTS: &str = "WITH counts AS (SELECT sink, \
       count(*) FILTER (WHERE status = 'pending') AS pending, \
       count(*) FILTER (WHERE status = 'delivered') AS delivered, \
       count(*) FILTER (WHERE status = 'dead') AS dead, \
       sum(attempts - CASE WHEN status = 'delivered' THEN 1 ELSE 0 END) AS failed \
     FROM deliveries WHERE sink <> '' GROUP BY sink)";

/// A row of the sink statistics query: name, pending, delivered, dead, failed attempts, disabled
/// reason and time, last error and time.
type SinkStatsRow = (
    String,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn sink_stats(row: SinkStatsRow) -> (String, SinkStats) {
    let (name, pending, delivered, dead, failed, disabled_reason, disabled_at, last_error, at) =
        row;
    let count = |n: i64| n.max(0) as u64;
    (
        name,
        SinkStats {
            pending: count(pending),
            delivered: count(delivered),
            dead: count(dead),
            failed_attempts: count(failed),
            disabled_reason,
            disabled_at,
            last_error,
            last_error_at: at,
        },
    )
}

/// Puts a journal entry back to unprocessed, so the feed runs it through the pipeline again.
const UNPROCESS: &str = "UPDATE plant_changes SET processed_at = NULL, outcome = NULL, \
     outcome_plugin = NULL, outcome_reason = NULL, event = NULL WHERE seq = $1";

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
/// event]` per change and one `[seq, sink, plant_id, region, status, error]` per delivery, where a
/// change a plugin failed on becomes a dead letter without a sink.
fn batch_json(batch: &[Processed]) -> (String, String) {
    let outcomes = serde_json::Value::from_iter(
        batch
            .iter()
            .map(|p| serde_json::json!([p.seq, p.result.as_str(), p.plugin, p.reason, p.event])),
    );
    let deliveries = serde_json::Value::from_iter(batch.iter().flat_map(|p| {
        let failed = (p.result == OutcomeKind::Failed).then(|| {
            let error = format!(
                "plugin {}: {}",
                p.plugin.as_deref().unwrap_or("?"),
                p.reason.as_deref().unwrap_or("failed")
            );
            serde_json::json!([
                p.seq,
                PLUGIN_DEAD_LETTER,
                p.plant_id,
                p.region,
                "dead",
                error
            ])
        });
        p.sinks
            .iter()
            .map(|sink| serde_json::json!([p.seq, sink, p.plant_id, p.region, "pending", null]))
            .chain(failed)
    }));
    (outcomes.to_string(), deliveries.to_string())
}

/// Fences as the JSON array the fencing statement reads: one `[lease, holder, epoch]` each.
fn fences_json(fences: &[Fence]) -> String {
    serde_json::Value::from_iter(
        fences
            .iter()
            .map(|f| serde_json::json!([f.lease, f.holder, f.epoch])),
    )
    .to_string()
}

/// The verdict of a fencing statement that touched the lease rows named `touched`: every fence must
/// have matched its row.
fn fenced(fences: &[Fence], touched: &[String]) -> Result<(), StoreError> {
    match fences.iter().find(|f| !touched.contains(&f.lease)) {
        Some(lost) => Err(StoreError::Fenced {
            lease: lost.lease.clone(),
        }),
        None => Ok(()),
    }
}

/// Regions as the JSON array the region filters read.
fn regions_json(regions: &[String]) -> String {
    serde_json::Value::from(regions).to_string()
}
