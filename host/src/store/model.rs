//! The facts the store keeps: plants, the drafts clients write, and the journal of changes. These are the
//! shapes every later stage (API, feed, plugins, sinks) reads, so they serialize exactly as the public
//! contract shows them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Declares a closed set of lowercase words: the enum, its serde form and its text form, from one list.
macro_rules! word_enum {
    ($(#[$meta:meta])* pub enum $ty:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $ty {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $ty {
            /// Every accepted word, in documentation order.
            pub const ALL: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($ty::$variant),)+ _ => None }
            }
        }
    };
}

word_enum! {
    /// The kinds of generating plant the registry knows.
    pub enum Fuel {
        Solar => "solar", Wind => "wind", Hydro => "hydro", Nuclear => "nuclear", Coal => "coal",
        Gas => "gas", Oil => "oil", Biomass => "biomass", Geothermal => "geothermal",
        Storage => "storage", Other => "other",
    }
}

word_enum! {
    /// Where a plant is in its life; new plants are `planned` unless told otherwise.
    #[derive(Default)]
    pub enum Status {
        #[default]
        Planned => "planned", Operational => "operational", Maintenance => "maintenance",
        Offline => "offline", Decommissioned => "decommissioned",
    }
}

word_enum! {
    /// What happened to a plant.
    pub enum ChangeKind {
        Created => "created", Updated => "updated", Deleted => "deleted", Snapshot => "snapshot",
    }
}

/// The fields a client may write; validated before it reaches the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlantDraft {
    pub name: String,
    pub region: String,
    pub fuel: Fuel,
    pub capacity_mw: f64,
    pub output_mw: Option<f64>,
    pub status: Status,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub attributes: BTreeMap<String, String>,
}

/// A plant as stored: the draft plus what the server owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plant {
    pub id: String,
    pub name: String,
    pub region: String,
    pub fuel: Fuel,
    pub capacity_mw: f64,
    pub output_mw: Option<f64>,
    pub status: Status,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub attributes: BTreeMap<String, String>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl Plant {
    /// The writable part, e.g. as the base a merge patch applies to.
    pub fn draft(&self) -> PlantDraft {
        PlantDraft {
            name: self.name.clone(),
            region: self.region.clone(),
            fuel: self.fuel,
            capacity_mw: self.capacity_mw,
            output_mw: self.output_mw,
            status: self.status,
            latitude: self.latitude,
            longitude: self.longitude,
            attributes: self.attributes.clone(),
        }
    }
}

/// One journal entry, written by the database triggers in the writer's transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub seq: u64,
    pub kind: ChangeKind,
    pub plant_id: String,
    pub region: String,
    pub before: Option<Plant>,
    pub after: Option<Plant>,
    pub changed_fields: Vec<String>,
    pub committed_at: String,
    /// What the feed did with it; null until it has been processed.
    pub outcome: Option<Outcome>,
}

word_enum! {
    /// What the feed did with a change.
    pub enum OutcomeKind {
        Routed => "routed", Unrouted => "unrouted", Filtered => "filtered", Failed => "failed",
    }
}

/// A processed change's fate, as the journal shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub result: OutcomeKind,
    /// The plugin that filtered or failed the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub processed_at: String,
}

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

word_enum! {
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

/// The sink name of a plugin failure's dead letter: no configured sink can have it.
pub const PLUGIN_DEAD_LETTER: &str = "";

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

/// Whether `text` is a region name, `^[a-z0-9][a-z0-9-]{0,62}$`, checked without a regex engine.
pub fn is_region(text: &str) -> bool {
    let bytes = text.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (1..=63).contains(&bytes.len())
        && allowed(&bytes[0])
        && bytes[1..].iter().all(|b| allowed(b) || *b == b'-')
}
