//! Reading rows into the store's types, the same for every backend: each backend selects plant images,
//! journal images and timestamps as text in the contract's format, so one decoder serves them all.
//! PostgreSQL's plant rows, which it sends as they are, are read by `postgres::plant_row`.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{
    Backfill, BackfillState, Delivery, DeliveryRecord, DeliveryStatus, Lease, Recorded, RegionLag,
    StoreError,
};
use plant_monitor_core::domain::{Change, ChangeKind, Outcome, OutcomeKind, Plant};

/// The column types a backend's rows must decode for the functions below.
pub trait TextRow: Row
where
    for<'r> &'r str: ColumnIndex<Self>,
{
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn optional_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn integer(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn optional_integer(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn real(&self, column: &str) -> Result<f64, sqlx::Error>;
}

impl<R> TextRow for R
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        self.try_get(column)
    }

    fn optional_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }

    fn integer(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.try_get(column)
    }

    fn optional_integer(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }

    fn real(&self, column: &str) -> Result<f64, sqlx::Error> {
        self.try_get(column)
    }
}

/// A region's lag from the columns region, entries and oldest_seconds.
pub fn decode_lag<R: TextRow>(row: &R) -> Result<RegionLag, StoreError>
where
    for<'r> &'r str: ColumnIndex<R>,
{
    Ok(RegionLag {
        region: row.text("region")?,
        entries: row.integer("entries")? as u64,
        oldest_seconds: row.real("oldest_seconds")?.max(0.0),
    })
}

/// A plant from its `image` column.
pub fn decode_plant<R: TextRow>(row: &R) -> Result<Plant, StoreError>
where
    for<'r> &'r str: ColumnIndex<R>,
{
    parse_image("plant image", &row.text("image")?)
}

/// A journal entry from the columns `CHANGE_COLUMNS` of each backend name.
pub fn decode_change<R: TextRow>(row: &R) -> Result<Change, StoreError>
where
    for<'r> &'r str: ColumnIndex<R>,
{
    let seq = row.integer("seq")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        what: format!("journal entry {seq}"),
        source: reason.into(),
    };
    let kind = row.text("kind")?;
    let image = |column: &str| -> Result<Option<Plant>, StoreError> {
        row.optional_text(column)?
            .map(|text| parse_image(&format!("journal entry {seq} {column}"), &text))
            .transpose()
    };
    Ok(Change {
        seq: seq as u64,
        kind: ChangeKind::parse(&kind).ok_or_else(|| corrupt(format!("unknown kind {kind:?}")))?,
        plant_id: row.text("plant_id")?,
        region: row.text("region")?,
        before: image("before")?,
        after: image("after")?,
        changed_fields: serde_json::from_str(&row.text("changed_fields")?).map_err(|error| {
            StoreError::Corrupt {
                what: format!("journal entry {seq} changed_fields"),
                source: Box::new(error),
            }
        })?,
        committed_at: row.text("committed_at")?,
        outcome: decode_outcome(row).map_err(corrupt)?,
        traceparent: row.optional_text("traceparent")?,
        backfill: row.optional_integer("backfill_id")?,
    })
}

fn decode_outcome<R: TextRow>(row: &R) -> Result<Option<Outcome>, String>
where
    for<'r> &'r str: ColumnIndex<R>,
{
    let field = |name: &str| row.optional_text(name).map_err(|e| e.to_string());
    let (Some(processed_at), Some(result)) = (field("processed_at")?, field("outcome")?) else {
        return Ok(None);
    };
    Ok(Some(Outcome {
        result: OutcomeKind::parse(&result).ok_or_else(|| format!("unknown outcome {result:?}"))?,
        plugin: field("outcome_plugin")?,
        reason: field("outcome_reason")?,
        pipeline: field("outcome_pipeline")?,
        processed_at,
    }))
}

/// A processed entry from the columns [`decode_change`] reads, `event` and `sinks` (a JSON array).
pub fn decode_recorded<R: TextRow>(row: &R) -> Result<Recorded, StoreError>
where
    for<'r> &'r str: ColumnIndex<R>,
{
    let change = decode_change(row)?;
    let mut sinks: Vec<String> =
        serde_json::from_str(&row.text("sinks")?).map_err(|error| StoreError::Corrupt {
            what: format!("journal entry {} sinks", change.seq),
            source: error.into(),
        })?;
    sinks.sort();
    Ok(Recorded {
        event: row.optional_text("event")?,
        sinks,
        change,
    })
}

/// A due delivery from the columns id, seq, plant_id, region, attempts, event and outcome_pipeline.
pub fn decode_delivery<R: TextRow>(row: &R) -> Result<Delivery, StoreError>
where
    for<'r> &'r str: ColumnIndex<R>,
{
    Ok(Delivery {
        id: row.integer("id")?,
        seq: row.integer("seq")? as u64,
        plant_id: row.text("plant_id")?,
        region: row.text("region")?,
        attempts: row.integer("attempts")? as u32,
        event: row.text("event")?,
        pipeline: row.optional_text("outcome_pipeline")?,
        traceparent: row.optional_text("traceparent")?,
        committed_at: row.text("committed_at")?,
    })
}

/// A delivery as listed, from the columns id, seq, sink, plugin, plant_id, region, status, attempts,
/// last_error, created_at, next_attempt_at and delivered_at.
pub fn decode_delivery_record<R: TextRow>(row: &R) -> Result<DeliveryRecord, StoreError>
where
    for<'r> &'r str: ColumnIndex<R>,
{
    let status = row.text("status")?;
    let sink = row.optional_text("sink")?;
    let plugin_failure = sink.is_none();
    Ok(DeliveryRecord {
        id: row.integer("id")?,
        seq: row.integer("seq")? as u64,
        plugin: row.optional_text("plugin")?.filter(|_| plugin_failure),
        sink,
        plant_id: row.text("plant_id")?,
        region: row.text("region")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            what: "delivery status".into(),
            source: format!("unknown status {status:?}").into(),
        })?,
        attempts: row.integer("attempts")? as u32,
        last_error: row.optional_text("last_error")?,
        created_at: row.text("created_at")?,
        next_attempt_at: row.text("next_attempt_at")?,
        delivered_at: row.optional_text("delivered_at")?,
    })
}

/// A backfill from the columns id, filter and sinks (JSON), state, total, emitted, done, created_at and
/// finished_at.
pub fn decode_backfill<R: TextRow>(row: &R) -> Result<Backfill, StoreError>
where
    for<'r> &'r str: ColumnIndex<R>,
{
    let id = row.integer("id")?;
    let corrupt =
        |what: &str, source: Box<dyn std::error::Error + Send + Sync>| StoreError::Corrupt {
            what: format!("backfill {id} {what}"),
            source,
        };
    let state = row.text("state")?;
    let count = |column: &str| row.integer(column).map(|n| n.max(0) as u64);
    Ok(Backfill {
        id,
        filter: serde_json::from_str(&row.text("filter")?)
            .map_err(|error| corrupt("filter", error.into()))?,
        sinks: serde_json::from_str(&row.text("sinks")?)
            .map_err(|error| corrupt("sinks", error.into()))?,
        state: BackfillState::parse(&state)
            .ok_or_else(|| corrupt("state", format!("unknown state {state:?}").into()))?,
        total: count("total")?,
        emitted: count("emitted")?,
        done: count("done")?,
        created_at: row.text("created_at")?,
        finished_at: row.optional_text("finished_at")?,
    })
}

/// A lease from the columns name, holder, epoch, expires_at (text) and held (0 or 1).
pub fn decode_lease<R: TextRow>(row: &R) -> Result<Lease, StoreError>
where
    for<'r> &'r str: ColumnIndex<R>,
{
    Ok(Lease {
        name: row.text("name")?,
        holder: row.text("holder")?,
        epoch: row.integer("epoch")? as u64,
        expires_at: row.text("expires_at")?,
        held: row.integer("held")? != 0,
    })
}

fn parse_image(what: &str, image: &str) -> Result<Plant, StoreError> {
    serde_json::from_str(image).map_err(|error| StoreError::Corrupt {
        what: what.to_owned(),
        source: Box::new(error),
    })
}
