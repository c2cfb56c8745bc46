//! What the store answers and is told beyond the domain model: the feed's verdicts, the outbox's
//! deliveries and their attempts, sink state, backfills, and leases with the fences writes carry. The
//! API shows some of them, so those serialize as the public contract shows them.

use serde::{Deserialize, Serialize};

use plant_monitor_core::domain::{Change, Fuel, OutcomeKind, Status};

/// The feed's verdict on one change, written together with its deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub seq: u64,
    pub plant_id: String,
    pub region: String,
    pub result: OutcomeKind,
    pub plugin: Option<String>,
    pub reason: Option<String>,
    /// The event's `data` object as JSON, when it is to be delivered.
    pub event: Option<String>,
    pub sinks: Vec<String>,
    /// The id of the pipeline snapshot that processed it.
    pub pipeline: String,
}

/// A processed journal entry and what the pipeline made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub change: Change,
    /// The event's `data` object as JSON, as the enrichers left it (none when filtered).
    pub event: Option<String>,
    /// The sinks it was routed to, by name; empty once its delivered rows are pruned.
    pub sinks: Vec<String>,
}

/// One event due at one sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub seq: u64,
    pub plant_id: String,
    pub region: String,
    pub attempts: u32,
    /// The event's `data` object as JSON.
    pub event: String,
    /// The pipeline snapshot that produced it (none for an entry processed before snapshots had ids).
    pub pipeline: Option<String>,
    /// The W3C `traceparent` of the write that caused the change (none for entries journaled before
    /// traces were recorded).
    pub traceparent: Option<String>,
    /// When the change was committed (RFC 3339), for the delivery latency.
    pub committed_at: String,
}

/// A delivery attempt that failed and is to be retried.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub id: i64,
    pub after: std::time::Duration,
    pub error: String,
}

/// A delivery that failed for good: it reached `max_attempts`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dead {
    pub id: i64,
    pub error: String,
}

/// A delivery its receiver acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub id: i64,
    /// From its change's commit to the receiver's 2xx, for the latency statistics; none when the
    /// commit time could not be read.
    pub latency: Option<std::time::Duration>,
}

/// What a sink's requests came to, recorded in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attempts {
    pub delivered: Vec<Delivered>,
    pub retries: Vec<Retry>,
    pub dead: Vec<Dead>,
}

impl Attempts {
    pub fn is_empty(&self) -> bool {
        self.delivered.is_empty() && self.retries.is_empty() && self.dead.is_empty()
    }

    /// The error the sink's state shows as its last: of the retries if any, else of the dead letters.
    pub fn last_error(&self) -> Option<&str> {
        (self.dead.iter().map(|d| d.error.as_str()))
            .chain(self.retries.iter().map(|r| r.error.as_str()))
            .last()
    }

    pub fn extend(&mut self, other: Attempts) {
        self.delivered.extend(other.delivered);
        self.retries.extend(other.retries);
        self.dead.extend(other.dead);
    }
}

plant_monitor_core::word_enum! {
    /// Where a delivery stands.
    pub enum DeliveryStatus {
        Pending => "pending", Delivered => "delivered", Dead => "dead",
    }
}

/// A delivery as `/v1/deliveries` shows it. A dead letter of a plugin failure has no sink but the
/// plugin's name, and its `last_error` is the plugin's reason.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeliveryRecord {
    pub id: i64,
    pub seq: u64,
    pub sink: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    pub plant_id: String,
    pub region: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: String,
    pub next_attempt_at: String,
    pub delivered_at: Option<String>,
}

/// What asking to retry a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// A sink's dead letter is pending again, with its attempts reset.
    Requeued,
    /// A plugin's dead letter goes through the current pipeline again.
    Reprocessed,
    /// It is not a dead letter.
    NotDead,
    NotFound,
}

/// One sink's outbox figures and shared state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SinkStats {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    pub failed_attempts: u64,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

/// Which dead letters a bulk retry takes; `None` matches everything. Only sinks' dead letters are ever
/// among them: a plugin's has no sink to send to again, its retry reruns the pipeline (see
/// [`OutboxStore::retry_delivery`](crate::OutboxStore::retry_delivery)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeadLetters {
    pub sink: Option<String>,
    pub plant_id: Option<String>,
    /// Created at or after this time, written as the store writes times (RFC 3339 in UTC to the
    /// millisecond, `2026-11-22T10:00:00.000Z`, between years 1970 and 9999).
    pub from: Option<String>,
    /// Created before this time, written as `from` is.
    pub to: Option<String>,
    /// Whose last error contains this text (as written, case and all).
    pub error: Option<String>,
}

plant_monitor_core::word_enum! {
    /// Where a backfill stands: `done` once every matching plant has been journaled.
    pub enum BackfillState {
        Running => "running", Done => "done",
    }
}

/// The plants a backfill journals again: those matching every given field; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillFilter {
    /// Only plants in this region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub region: Option<String>,
    /// Only plants of this fuel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<Fuel>,
    /// Only plants in this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Only the plants with these ids (at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 1000)]
    pub ids: Option<Vec<String>>,
}

/// A backfill as `/v1/backfills` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Backfill {
    pub id: i64,
    pub filter: BackfillFilter,
    /// Where its events go, instead of where the routers would send them.
    pub sinks: Vec<String>,
    pub state: BackfillState,
    /// The plants matching when it was created (raised if more are journaled); once it is done, the
    /// number journaled.
    pub total: u64,
    /// Snapshot entries journaled so far.
    pub emitted: u64,
    /// Of those, how many the feed has processed (delivered to the sinks' queues, filtered or failed).
    pub done: u64,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// What one step of a backfill did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillStep {
    /// Journaled `entries` snapshot entries; `finished` when no matching plant is left.
    Emitted { entries: u64, finished: bool },
    /// A batch of its entries still waits for the feed; nothing was journaled.
    Waiting,
    /// It is done, or there is no such backfill.
    NotRunning,
}

/// Filters for listing plants; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct PlantFilter {
    pub region: Option<String>,
    pub fuel: Option<Fuel>,
    pub status: Option<Status>,
}

/// The proof a leader shows with each write: the lease it holds, as who, and since which acquisition.
/// A write whose fence no longer matches the lease row is refused, so a deposed leader cannot write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: String,
    pub holder: String,
    pub epoch: u64,
}

/// What an attempt to acquire a lease found.
#[derive(Debug, Clone, PartialEq)]
pub enum Acquisition {
    /// The lease is ours from this epoch on.
    Acquired { epoch: u64 },
    /// Someone else holds it for `remaining` more, by the database clock.
    Held {
        holder: String,
        remaining: std::time::Duration,
    },
}

/// A lease row as `/v1/leases` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub epoch: u64,
    pub expires_at: String,
    /// Whether it has not expired yet, by the database clock.
    pub held: bool,
}

/// How the journal is captured, as `/v1/leases` shows it: the mode, and in `wal` capture (or while a
/// slot is left from it) what the replication slot costs the server.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CaptureStatus {
    /// `trigger` or `wal`.
    pub mode: String,
    /// The replication slot, if there is one.
    pub slot: Option<String>,
    /// Whether a capture leader streams from the slot now.
    pub active: bool,
    /// Bytes of the server's log the slot keeps from being recycled.
    pub retained_bytes: Option<u64>,
    /// Bytes of the log written since the last position the capture confirmed.
    pub lag_bytes: Option<u64>,
}

/// How far the feed is behind in one region.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionLag {
    pub region: String,
    /// Journal entries not yet processed.
    pub entries: u64,
    /// Seconds since the oldest of them was committed.
    pub oldest_seconds: f64,
}

/// The database connections of a store's pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Connections {
    pub open: u32,
    pub idle: u32,
}
