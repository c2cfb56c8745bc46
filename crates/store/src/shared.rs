//! What both backends share: SQL that reads the same on each, the JSON arrays the set-based writes
//! take as one parameter, and the verdicts drawn from what a statement touched.

use std::time::Duration;

use super::{Attempts, Fence, Processed, SinkStats, StoreError};
use plant_monitor_core::domain::{OutcomeKind, PlantDraft};

/// Every region with plants, unprocessed journal entries or pending deliveries; the same SQL on every
/// backend. Each source is read by skipping through its region index, one probe per region, so the
/// cost does not grow with the number of plants, entries or deliveries: the keeper runs it often.
pub const ACTIVE_REGIONS: &str = "WITH RECURSIVE \
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

/// A row of the sink statistics query: name, pending, delivered, dead, failed attempts, disabled
/// reason and time, last error and time.
pub type SinkStatsRow = (
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

pub fn sink_stats(row: SinkStatsRow) -> (String, SinkStats) {
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
pub const UNPROCESS: &str = "UPDATE plant_changes SET processed_at = NULL, outcome = NULL, \
     outcome_plugin = NULL, outcome_reason = NULL, event = NULL WHERE seq = $1";

/// A draft's attributes as the JSON object text every backend stores.
pub fn attributes_json(draft: &PlantDraft) -> String {
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
pub fn readiness(applied: Option<i64>, required: i64) -> Result<(), StoreError> {
    if applied == Some(required) {
        Ok(())
    } else {
        Err(StoreError::NotMigrated { applied, required })
    }
}

/// A missing migrations table means the database answers but was never migrated.
pub fn no_migrations_table(error: sqlx::Error) -> Result<Option<i64>, sqlx::Error> {
    match error {
        sqlx::Error::Database(_) => Ok(None),
        other => Err(other),
    }
}

/// Why a write conditional on `expected` touched no row, given the plant's `current` version.
pub fn missed(id: &str, current: Option<i64>, expected: Option<u64>) -> StoreError {
    match (current, expected) {
        (Some(current), Some(expected)) => StoreError::VersionMismatch {
            id: id.to_owned(),
            expected,
            current: current as u64,
        },
        _ => StoreError::NotFound { id: id.to_owned() },
    }
}

/// One delivery a processed batch queues: one per sink its event was routed to, and a dead letter
/// without a sink for a change a plugin failed on.
pub struct Queued<'a> {
    pub seq: u64,
    pub sink: Option<&'a str>,
    pub plant_id: &'a str,
    pub region: &'a str,
    pub status: &'static str,
    pub error: Option<String>,
}

/// The deliveries `batch` queues, in batch order.
pub fn queued(batch: &[Processed]) -> impl Iterator<Item = Queued<'_>> {
    batch.iter().flat_map(|p| {
        let delivery = |sink, status, error| Queued {
            seq: p.seq,
            sink,
            plant_id: &p.plant_id,
            region: &p.region,
            status,
            error,
        };
        let failed = (p.result == OutcomeKind::Failed).then(|| {
            let error = format!(
                "plugin {}: {}",
                p.plugin.as_deref().unwrap_or("?"),
                p.reason.as_deref().unwrap_or("failed")
            );
            delivery(None, "dead", Some(error))
        });
        (p.sinks.iter())
            .map(move |sink| delivery(Some(sink), "pending", None))
            .chain(failed)
    })
}

/// A processed batch as the JSON arrays the set-based writes read: one `[seq, result, plugin, reason,
/// event, pipeline]` per change and one `[seq, sink, plant_id, region, status, error]` per delivery
/// ([`queued`]).
pub fn batch_json(batch: &[Processed]) -> (String, String) {
    let outcomes = serde_json::Value::from_iter(batch.iter().map(|p| {
        serde_json::json!([
            p.seq,
            p.result.as_str(),
            p.plugin,
            p.reason,
            p.event,
            p.pipeline
        ])
    }));
    let deliveries = serde_json::Value::from_iter(
        queued(batch)
            .map(|q| serde_json::json!([q.seq, q.sink, q.plant_id, q.region, q.status, q.error])),
    );
    (outcomes.to_string(), deliveries.to_string())
}

/// The longest a retry is put off, whatever the caller asks: the configuration holds `backoff_max`
/// below it, and a longer wait would park the plant's later events behind it for as long.
pub const LONGEST_RETRY_DELAY: Duration = Duration::from_secs(24 * 3600);

/// The ids of a sink's delivered events, nearly every attempt: they go as a plain list of ids, the
/// cheapest to join on.
pub fn delivered_ids(attempts: &Attempts) -> Vec<i64> {
    attempts
        .delivered
        .iter()
        .map(|delivered| delivered.id)
        .collect()
}

/// A sink's failed attempts as the JSON arrays the set-based writes read, one statement each and none
/// for an empty one: one `[id, error, delay_ms]` per retry, one `[id, error]` per dead letter.
pub struct AttemptsJson {
    pub retries: Option<String>,
    pub dead: Option<String>,
}

pub fn attempts_json(attempts: &Attempts) -> AttemptsJson {
    let array = |values: Vec<serde_json::Value>| {
        (!values.is_empty()).then(|| serde_json::Value::from(values).to_string())
    };
    AttemptsJson {
        retries: array(
            (attempts.retries.iter())
                .map(|retry| {
                    let delay_ms = retry.after.min(LONGEST_RETRY_DELAY).as_millis() as u64;
                    serde_json::json!([retry.id, retry.error, delay_ms])
                })
                .collect(),
        ),
        dead: array(
            (attempts.dead.iter())
                .map(|dead| serde_json::json!([dead.id, dead.error]))
                .collect(),
        ),
    }
}

/// Fences as the JSON array the fencing statement reads: one `[lease, holder, epoch]` each.
pub fn fences_json(fences: &[Fence]) -> String {
    serde_json::Value::from_iter(
        fences
            .iter()
            .map(|f| serde_json::json!([f.lease, f.holder, f.epoch])),
    )
    .to_string()
}

/// The verdict of a fencing statement that touched the lease rows named `touched`: every fence must
/// have matched its row.
pub fn fenced(fences: &[Fence], touched: &[String]) -> Result<(), StoreError> {
    match fences.iter().find(|f| !touched.contains(&f.lease)) {
        Some(lost) => Err(StoreError::Fenced {
            lease: lost.lease.clone(),
        }),
        None => Ok(()),
    }
}

/// Regions as the JSON array the region filters read.
pub fn regions_json(regions: &[String]) -> String {
    serde_json::Value::from(regions).to_string()
}

/// Journal `seq`s as one JSON array parameter.
pub fn seqs_json(seqs: &[u64]) -> String {
    serde_json::Value::from(seqs).to_string()
}

/// Backfills' sink lists from rows of id and JSON array.
pub fn sink_lists(rows: Vec<(i64, String)>) -> Result<Vec<(i64, Vec<String>)>, StoreError> {
    rows.into_iter()
        .map(|(id, sinks)| {
            let sinks = serde_json::from_str(&sinks).map_err(|error| StoreError::Corrupt {
                what: format!("backfill {id} sinks"),
                source: Box::new(error),
            })?;
            Ok((id, sinks))
        })
        .collect()
}
