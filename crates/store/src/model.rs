//! What the store answers and is told beyond the domain model: the feed's verdicts, the outbox's
//! deliveries and their attempts, sink state, and leases with the fences writes carry. The API shows
//! some of them, so those serialize as the public contract shows them.

use serde::Serialize;

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

/// What a sink's requests came to, recorded in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attempts {
    pub delivered: Vec<i64>,
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub epoch: u64,
    pub expires_at: String,
    /// Whether it has not expired yet, by the database clock.
    pub held: bool,
}
