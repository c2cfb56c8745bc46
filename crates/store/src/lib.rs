//! The store: plants, the change journal, backfills, leases, the outbox, activity statistics and
//! retention, each a trait of its own so that every consumer names only what it uses (the lease keeper
//! takes [`LeaseStore`], the feed [`JournalStore`], the sink workers [`OutboxStore`]). [`Store`] is all of them plus the schema, with
//! one implementation per database backend, each keeping its SQL together per concern; callers never
//! see SQL, and a new backend fits beside the others. The journal itself is written by database
//! triggers (see `migrations/`), or on PostgreSQL from its write-ahead log ([`CaptureStore`]), so
//! every writer, not only this process, is captured.

// Product code handles every failure; tests may unwrap (see clippy.toml).
#![warn(clippy::unwrap_used)]

mod decode;
mod migrations;
mod model;
mod postgres;
mod shared;
mod signal;
mod sqlite;
pub mod stats;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use plant_monitor_core::config::{Backend, CaptureMode, DatabaseConfig};
use plant_monitor_core::domain::{Change, Plant, PlantDraft, TraceParent};

pub use model::{
    Acquisition, Attempts, Backfill, BackfillFilter, BackfillState, BackfillStep, CaptureStatus,
    Connections, Dead, DeadLetters, Delivered, Delivery, DeliveryRecord, DeliveryStatus, Fence,
    Lease, PlantFilter, Processed, Recorded, RegionLag, Replay, Retry, SinkStats,
};
pub use postgres::PostgresStore;
pub use signal::ChangeSignal;
pub use sqlite::SqliteStore;
pub use stats::{DeliveryOutcome, DeliverySeries, EventSeries, LatencySeries, Stats};

/// About how many bytes of plant images or events one read of the feed or of a sink worker brings
/// (the first row always comes): large rows make a shorter batch, not a larger one.
pub const READ_BYTES: u64 = 16 << 20;

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
    Open {
        /// Shown with its password hidden.
        url: String,
        source: sqlx::Error,
    },
    /// A write whose transaction failed (or never ran), and with it every write committed alongside.
    #[error("the write was not committed: {reason}")]
    NotCommitted { reason: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("migrations are not applied (database at {applied:?}, this build needs {required})")]
    NotMigrated { applied: Option<i64>, required: i64 },
    #[error("lease {lease} is no longer ours: another instance acquired it")]
    Fenced { lease: String },
    /// `wal` capture cannot run here, and why.
    #[error("wal capture is not possible: {reason}")]
    CaptureUnavailable { reason: String },
    /// The replication stream sent what the capture cannot read.
    #[error("the replication stream cannot be captured: {reason}")]
    CaptureStream { reason: String },
    #[error("the replication connection failed: {0}")]
    Replication(#[from] pgwire_replication::PgWireError),
    #[error("stored {what} is not valid: {source}")]
    Corrupt {
        what: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The registry of plants, as the API reads and writes it.
#[async_trait]
pub trait PlantStore: Send + Sync + std::fmt::Debug {
    /// Creates a plant. Its journal entry records `trace`, the trace of the request that wrote it;
    /// without one (as for any other SQL client) the database starts a trace of its own.
    async fn create_plant(
        &self,
        draft: &PlantDraft,
        trace: Option<&TraceParent>,
    ) -> Result<Plant, StoreError>;

    async fn get_plant(&self, id: &str) -> Result<Option<Plant>, StoreError>;

    /// Plants matching `filter` with an id greater than `after`, ordered by id, at most `limit`.
    async fn list_plants(
        &self,
        filter: &PlantFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Plant>, StoreError>;

    /// Replaces a plant's writable fields; with `expected_version`, only if the plant is still at it.
    /// `trace` as for [`PlantStore::create_plant`].
    async fn replace_plant(
        &self,
        id: &str,
        draft: &PlantDraft,
        expected_version: Option<u64>,
        trace: Option<&TraceParent>,
    ) -> Result<Plant, StoreError>;

    /// Deletes a plant; with `expected_version`, only if the plant is still at it. `trace` as for
    /// [`PlantStore::create_plant`].
    async fn delete_plant(
        &self,
        id: &str,
        expected_version: Option<u64>,
        trace: Option<&TraceParent>,
    ) -> Result<(), StoreError>;
}

/// The change journal: read by the API, fed through the pipeline by the leader of each region.
#[async_trait]
pub trait JournalStore: Send + Sync + std::fmt::Debug {
    /// Journal entries with `seq > after`, oldest first, at most `limit`; of one plant when `plant_id` is set.
    async fn list_changes(
        &self,
        plant_id: Option<&str>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Change>, StoreError>;

    /// The last `limit` processed journal entries, oldest first, with what the pipeline made of each:
    /// the event it kept and the sinks it was routed to (as long as retention keeps those rows).
    async fn recorded(&self, limit: u32) -> Result<Vec<Recorded>, StoreError>;

    /// A wake-up for one reader of the journal, signalled whenever a change may have been written:
    /// at once for writes of this process, and for any other writer's commit: on PostgreSQL through
    /// `NOTIFY`, on SQLite within a fraction of a millisecond through the wal-index's watcher.
    fn change_signal(&self) -> ChangeSignal;

    /// The highest `seq` in the journal, 0 when it is empty: where a reader that wants only what comes
    /// next starts.
    async fn last_seq(&self) -> Result<u64, StoreError>;

    /// The entries among `seqs` that have been processed, in `seq` order, at most `limit`: how a
    /// reader that saw entries unprocessed learns their outcome.
    async fn processed_among(&self, seqs: &[u64], limit: u32) -> Result<Vec<Change>, StoreError>;

    /// The transactions that may still commit journal entries, one opaque id each. An entry becomes
    /// visible when its transaction commits, and on PostgreSQL concurrent transactions commit in any
    /// order, so an entry can appear after one with a larger `seq`: a reader following the journal by
    /// `seq` that finds a gap may read the gap as final once every transaction named here when it
    /// found the gap has ended (a transaction holds the journal for writing from before it takes a
    /// `seq` until it ends). Empty on SQLite, whose writers take turns, so that an entry is visible
    /// with every smaller one.
    async fn journal_writers(&self) -> Result<Vec<String>, StoreError>;

    /// Each region with unprocessed journal entries: how many, and how old the oldest commit is.
    async fn journal_lag(&self) -> Result<Vec<RegionLag>, StoreError>;

    /// The oldest unprocessed journal entries of `regions`, in `seq` order, at most `limit` and about
    /// [`READ_BYTES`] of images, leaving out those whose `seq` is in `in_flight`. An entry is
    /// passed over while an earlier entry of the same plant in another region is unprocessed, so a
    /// plant that moved regions keeps its order across leaders. `in_flight` names the entries of a
    /// batch whose record has not committed yet, so that the next batch can be read meanwhile; it is
    /// the caller's to record them first.
    async fn unprocessed_changes(
        &self,
        regions: &[String],
        limit: u32,
        in_flight: &[u64],
    ) -> Result<Vec<Change>, StoreError>;

    /// Marks changes processed with their outcome and inserts their deliveries, all in one transaction
    /// that first checks every fence: if one no longer holds, nothing is written and the answer is
    /// [`StoreError::Fenced`]. The entries marked are counted in the statistics of this minute.
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
}

/// Backfills: `snapshot` entries journaled again for the plants a filter matches, a batch at a time,
/// for chosen sinks. Any number of processes may step the same backfill: each step locks its row first,
/// so steps take turns and none journals a plant another already did.
#[async_trait]
pub trait BackfillStore: Send + Sync + std::fmt::Debug {
    /// Starts a backfill of the plants matching `filter` to `sinks`, counting them as its total.
    async fn create_backfill(
        &self,
        filter: &BackfillFilter,
        sinks: &[String],
    ) -> Result<Backfill, StoreError>;

    async fn get_backfill(&self, id: i64) -> Result<Option<Backfill>, StoreError>;

    /// Backfills with an id below `before` (all without it), newest first, at most `limit`.
    async fn list_backfills(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Backfill>, StoreError>;

    /// The ids of the backfills still running, oldest first.
    async fn running_backfills(&self) -> Result<Vec<i64>, StoreError>;

    /// Journals a `snapshot` entry for each of the next `limit` matching plants after the last one
    /// journaled, in id order, and moves the backfill past them, in one transaction; a batch shorter
    /// than `limit` finishes it. Nothing is journaled while `limit` of its entries still wait for
    /// the feed, so a large backfill never puts more than about two batches ahead of live changes.
    async fn step_backfill(&self, id: i64, limit: u32) -> Result<BackfillStep, StoreError>;

    /// The sinks of each of the backfills `ids`, for the feed to deliver their entries to.
    async fn backfill_sinks(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<String>)>, StoreError>;
}

/// Leases: which instance leads each region, decided by the database clock.
#[async_trait]
pub trait LeaseStore: Send + Sync + std::fmt::Debug {
    /// Every region with plants, unprocessed journal entries or pending deliveries: what there is to lead.
    async fn active_regions(&self) -> Result<Vec<String>, StoreError>;

    /// Takes the lease `name` for `ttl` if it is free, expired, or already `holder`'s; the epoch rises
    /// with every acquisition. One conditional statement on the database clock.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Acquisition, StoreError>;

    /// Extends a lease held under `fence` to `ttl` from now; false when it is no longer held so.
    async fn renew_lease(&self, fence: &Fence, ttl: Duration) -> Result<bool, StoreError>;

    /// Lets a lease held under `fence` expire now, so another instance can take it at once.
    async fn release_lease(&self, fence: &Fence) -> Result<(), StoreError>;

    /// Waits until a lease may have been released (true), or `at_most` has passed (false).
    async fn wait_for_lease_release(&self, at_most: Duration) -> bool;

    /// Every lease, by name.
    async fn leases(&self) -> Result<Vec<Lease>, StoreError>;
}

/// The outbox: deliveries to sinks, their attempts, dead letters and their replay, and sink state.
#[async_trait]
pub trait OutboxStore: Send + Sync + std::fmt::Debug {
    /// Deliveries of `regions` to `sink` that are due and whose plant has no earlier delivery still
    /// waiting (in any region), in id order, at most `limit` and about [`READ_BYTES`] of events; none
    /// while the sink is disabled.
    async fn due_deliveries(
        &self,
        sink: &str,
        regions: &[String],
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Records what `sink`'s requests came to, delivered, to be retried, or dead, in one set-based
    /// statement; a failure also becomes the sink's last error. The results are counted in the
    /// statistics of this minute, with the latencies of the deliveries, in the same transaction.
    async fn record_attempts(&self, sink: &str, attempts: &Attempts) -> Result<(), StoreError>;

    /// Stops `sink` for every replica (a receiver answered 410 Gone), until [`OutboxStore::enable_sink`].
    async fn disable_sink(&self, sink: &str, reason: &str) -> Result<(), StoreError>;

    /// Lets a disabled sink deliver again; false when it was not disabled.
    async fn enable_sink(&self, sink: &str) -> Result<bool, StoreError>;

    /// The outbox figures and shared state of every sink that has any, by name.
    async fn sink_stats(&self) -> Result<Vec<(String, SinkStats)>, StoreError>;

    /// Deliveries with `status` (of `sink` when given) with an id above `after`, in id order, at most
    /// `limit`. A plugin failure's dead letter has no sink.
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

    /// How many sinks' dead letters match `filter`.
    async fn count_dead(&self, filter: &DeadLetters) -> Result<u64, StoreError>;

    /// Puts the sinks' dead letters matching `filter` back to pending with their attempts reset, due
    /// now; returns how many. They keep their ids, so each plant's go out in `seq` order again.
    async fn retry_dead(&self, filter: &DeadLetters) -> Result<u64, StoreError>;

    /// Makes every pending delivery of `sink` that waits for a later retry due now; returns how many.
    async fn reschedule_pending(&self, sink: &str) -> Result<u64, StoreError>;
}

/// Activity statistics: the per-minute counts the feed and the sink workers add as they record their
/// work (see [`stats`]).
#[async_trait]
pub trait StatsStore: Send + Sync + std::fmt::Debug {
    /// The activity of `points` buckets of `step` minutes each, the last holding the current minute
    /// by the database clock, each starting at a multiple of `step` minutes since the Unix epoch.
    /// Reads those buckets' rows and nothing else.
    async fn stats(&self, step: u32, points: u32) -> Result<Stats, StoreError>;
}

/// Retention: finished work deleted once old enough.
#[async_trait]
pub trait RetentionStore: Send + Sync + std::fmt::Debug {
    /// Deletes up to `limit` delivered outbox rows older than `age`, then up to `limit` processed
    /// journal entries older than `age` that nothing is left to deliver; returns how many of each.
    async fn prune(&self, age: Duration, limit: u32) -> Result<(u64, u64), StoreError>;

    /// Deletes up to `limit` rows of each statistics table from minutes that ended `kept` or more
    /// ago; returns how many in all.
    async fn prune_stats(&self, kept: Duration, limit: u32) -> Result<u64, StoreError>;
}

/// How changes reach the journal: by triggers, or (PostgreSQL) from the write-ahead log by the one
/// replica that holds the `capture` lease.
#[async_trait]
pub trait CaptureStore: Send + Sync + std::fmt::Debug {
    /// Switches the database to `mode`, while writers run, losing and repeating no change; nothing to
    /// do when it is in that mode. Explains what is missing when the server cannot do it.
    async fn switch_capture(&self, mode: CaptureMode) -> Result<(), StoreError>;

    /// The capture leader's work under `fence`: journals the changes of the write-ahead log until
    /// `stop` turns true, or fails (the fence no longer holds, the stream or the database failed).
    async fn capture(
        &self,
        fence: &Fence,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), StoreError>;

    /// The capture mode, and what the replication slot costs the server.
    async fn capture_status(&self) -> Result<CaptureStatus, StoreError>;

    /// Switches the database to trigger capture (see [`CaptureStore::switch_capture`]) and drops the
    /// replication slot, which would otherwise keep the server's log from being recycled; the slot's
    /// name, if there was one.
    async fn drop_slot(&self) -> Result<Option<String>, StoreError>;
}

/// The whole database: every concern, and the schema they live in.
#[async_trait]
pub trait Store:
    PlantStore
    + JournalStore
    + BackfillStore
    + LeaseStore
    + OutboxStore
    + StatsStore
    + RetentionStore
    + CaptureStore
{
    /// Applies every pending migration; safe to call from several processes at once.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Succeeds when the database answers and the schema is the one this build expects.
    async fn check_ready(&self) -> Result<(), StoreError>;

    /// Closes every connection; pending operations finish first.
    async fn close(&self);

    /// The connections open now, and how many of them are idle.
    fn connections(&self) -> Connections;
}

/// Opens the database the configuration names, with the backend its URL chose.
pub async fn connect(config: &DatabaseConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match config.url.backend() {
        Backend::Sqlite => Arc::new(SqliteStore::connect(config).await?),
        Backend::Postgres => Arc::new(PostgresStore::connect(config).await?),
    })
}
