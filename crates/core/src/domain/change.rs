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

impl Change {
    /// The journal's `changed_fields` for a change from `before` to `after`, in the plant's own field
    /// order: for a creation the fields it set (a plant created without attributes has not set them),
    /// for a deletion none.
    pub fn fields_changed(before: Option<&Plant>, after: Option<&Plant>) -> Vec<String> {
        let Some(after) = after else {
            return Vec::new();
        };
        let fields = match before {
            Some(before) => [
                ("name", before.name != after.name),
                ("region", before.region != after.region),
                ("fuel", before.fuel != after.fuel),
                ("capacity_mw", before.capacity_mw != after.capacity_mw),
                ("output_mw", before.output_mw != after.output_mw),
                ("status", before.status != after.status),
                ("latitude", before.latitude != after.latitude),
                ("longitude", before.longitude != after.longitude),
                ("attributes", before.attributes != after.attributes),
            ],
            None => [
                ("name", true),
                ("region", true),
                ("fuel", true),
                ("capacity_mw", true),
                ("output_mw", after.output_mw.is_some()),
                ("status", true),
                ("latitude", after.latitude.is_some()),
                ("longitude", after.longitude.is_some()),
                ("attributes", !after.attributes.is_empty()),
            ],
        };
        fields
            .into_iter()
            .filter(|&(_, changed)| changed)
            .map(|(name, _)| name.to_owned())
            .collect()
    }
}
