//! The journal's entries: one change to one plant, with its before and after images, and what the feed
//! made of it once processed.

use serde::Serialize;

use super::Plant;

crate::word_enum! {
    /// What happened to a plant.
    pub enum ChangeKind {
        Created => "created", Updated => "updated", Deleted => "deleted", Snapshot => "snapshot",
    }
}

/// One journal entry, written by the database triggers in the writer's transaction.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
    /// The W3C `traceparent` of the write that caused it, sent on every sink request for it; null for
    /// entries journaled before traces were recorded.
    pub traceparent: Option<String>,
    /// The backfill that journaled this `snapshot` entry, whose sinks its event goes to; null for
    /// every other entry.
    pub backfill: Option<i64>,
}

crate::word_enum! {
    /// What the feed did with a change.
    pub enum OutcomeKind {
        Routed => "routed", Unrouted => "unrouted", Filtered => "filtered", Failed => "failed",
    }
}

impl OutcomeKind {
    /// The outcome of an event the pipeline let through to `sinks`: none is unrouted.
    pub fn delivered_to(sinks: &[String]) -> OutcomeKind {
        if sinks.is_empty() {
            OutcomeKind::Unrouted
        } else {
            OutcomeKind::Routed
        }
    }
}

/// A processed change's fate, as the journal shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    pub result: OutcomeKind,
    /// The plugin that filtered or failed the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The pipeline snapshot (plugin versions, by id) that processed the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    pub processed_at: String,
}
