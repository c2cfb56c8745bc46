//! The event that flows from the journal through the plugins to the sinks. Serialized, it is the `data`
//! object of every CloudEvent a sink receives, and what `plugin run --event` reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Change, ChangeKind, Plant};

/// One change to one plant, with the labels enrichers added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub seq: u64,
    pub kind: ChangeKind,
    pub plant_id: String,
    pub region: String,
    pub before: Option<Plant>,
    pub after: Option<Plant>,
    pub changed_fields: Vec<String>,
    /// When the change was committed; the CloudEvent `time`.
    #[serde(default)]
    pub committed_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl From<Change> for Event {
    fn from(change: Change) -> Self {
        Event {
            seq: change.seq,
            kind: change.kind,
            plant_id: change.plant_id,
            region: change.region,
            before: change.before,
            after: change.after,
            changed_fields: change.changed_fields,
            committed_at: change.committed_at,
            labels: BTreeMap::new(),
        }
    }
}
