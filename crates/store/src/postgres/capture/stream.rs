//! The capture leader's work: stream the slot's changes (`pgwire-replication`, which speaks the
//! replication protocol and hands over each pgoutput message), assemble them per transaction, and
//! journal whole transactions, as many as have arrived, in one database transaction fenced by the
//! `capture` lease. The entries are the triggers' own: `before_row` and `after_row` hold the rows
//! (cast from the stream's text, so each column goes through its type's own input), updates that
//! leave a plant's version alone are not journaled, and every entry of a transaction shares its trace
//! (the API's, or a new one). `committed_at` is the transaction's commit time, where the triggers
//! record its start.
//!
//! A transaction is held in memory until its commit arrives, so the largest transaction that
//! changes plants bounds the leader's memory.

use std::collections::HashMap;

use futures_util::FutureExt;
use pgwire_replication::client::ReplicationEvent;
use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig, TlsConfig};
use tokio::sync::watch;

use super::pgoutput::{self, Message, Relation, Tuple, Value};
use super::{MARKER_PREFIX, PUBLICATION, SWITCH_PREFIX, TRACE_PREFIX};
use crate::postgres::{CHANNEL, FENCES, PostgresStore};
use crate::shared;
use crate::{Fence, StoreError};
use plant_monitor_core::config::CaptureMode;

/// Journal entries written per database transaction at most (whole transactions: one larger than
/// this goes alone).
const BATCH_ROWS: usize = 5_000;

/// One decoded transaction that changed plants, or a switch of capture mode.
#[derive(Debug)]
struct Captured {
    /// Where its commit record ends: the position stored with its entries.
    end: Lsn,
    /// Microseconds since 2000-01-01 UTC, PostgreSQL's epoch.
    committed_micros: i64,
    /// The capture mode this transaction switched the database to.
    switch: Option<CaptureMode>,
    /// Whether its changes are the capture's to journal (else the triggers journaled them).
    journaled: bool,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    kind: &'static str,
    /// The rows as `power_plants` record literals.
    before: Option<String>,
    after: Option<String>,
    trace: String,
}

/// A transaction being decoded.
#[derive(Debug)]
struct Open {
    committed_micros: i64,
    trace: String,
    switch: Option<CaptureMode>,
    entries: Vec<Entry>,
}

/// Streams and journals until `stop` turns true, or fails: the fence no longer holds, the stream or
/// the database failed. The caller starts it again (after a pause) while it holds the lease.
pub(super) async fn capture(
    store: &PostgresStore,
    fence: &Fence,
    mut stop: watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let (mode, slot, stored): (String, Option<String>, Option<String>) =
        sqlx::query_as("SELECT mode, slot, lsn::text FROM capture")
            .fetch_one(&store.pool)
            .await?;
    let (Some(slot), "wal") = (slot, mode.as_str()) else {
        return Err(StoreError::CaptureUnavailable {
            reason: format!("the database is in {mode} capture, not wal"),
        });
    };
    let stored = stored.map(|lsn| parse_lsn(&lsn)).transpose()?;
    let mut capture = Capture {
        columns: columns(&store.pool).await?,
        relations: HashMap::new(),
        open: None,
        ready: Vec::new(),
        marker: None,
        journaling: stored.is_some(),
        stored,
    };
    let start = stored.unwrap_or(Lsn(0));
    let config = replication_config(store, &slot, start)?;
    let mut client = ReplicationClient::connect(config).await?;
    tracing::info!(slot, start = %start, "Capturing changes from the write-ahead log.");
    loop {
        let event = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return Ok(()),
            event = client.recv() => event?,
        };
        capture.take(event, &client)?;
        while capture.ready_rows() < BATCH_ROWS {
            match client.recv().now_or_never() {
                Some(event) => capture.take(event?, &client)?,
                None => break,
            }
        }
        if let Some(end) = capture.journal(store, fence).await? {
            client.update_applied_lsn(end);
            store.written.announce();
        }
    }
}

/// The decoding state of one stream.
struct Capture {
    /// `power_plants`'s columns in the database, in order: the record literals' fields.
    columns: Vec<String>,
    relations: HashMap<u32, Relation>,
    open: Option<Open>,
    ready: Vec<Captured>,
    /// Whether what is decoded now is the capture's to journal: after the switch to `wal` committed,
    /// before a switch back did.
    journaling: bool,
    /// A marker passed since the last journaling, to store with it.
    marker: Option<String>,
    /// The end of the last transaction journaled; none before the switch has been decoded.
    stored: Option<Lsn>,
}

impl Capture {
    fn ready_rows(&self) -> usize {
        self.ready.iter().map(|c| c.entries.len().max(1)).sum()
    }

    fn take(
        &mut self,
        event: Option<ReplicationEvent>,
        client: &ReplicationClient,
    ) -> Result<(), StoreError> {
        let Some(event) = event else {
            return Err(stream_error("the replication stream ended"));
        };
        match event {
            ReplicationEvent::Begin {
                commit_time_micros, ..
            } => {
                self.open = Some(Open {
                    committed_micros: commit_time_micros,
                    trace: new_trace(),
                    switch: None,
                    entries: Vec::new(),
                });
            }
            ReplicationEvent::XLogData { data, .. } => self.change(&data)?,
            ReplicationEvent::Message {
                transactional: true,
                prefix,
                content,
                ..
            } => {
                if let Some(open) = self.open.as_mut() {
                    let content = String::from_utf8_lossy(&content).into_owned();
                    match prefix.as_str() {
                        TRACE_PREFIX => open.trace = content,
                        SWITCH_PREFIX => {
                            open.switch = Some(if content == CaptureMode::Wal.as_str() {
                                CaptureMode::Wal
                            } else {
                                CaptureMode::Trigger
                            })
                        }
                        _ => {}
                    }
                }
            }
            ReplicationEvent::Commit { end_lsn, .. } => {
                if let Some(open) = self.open.take()
                    && (open.switch.is_some() || !open.entries.is_empty())
                {
                    self.ready.push(Captured {
                        end: end_lsn,
                        committed_micros: open.committed_micros,
                        switch: open.switch,
                        journaled: self.journaling,
                        entries: open.entries,
                    });
                    // What commits after a switch to `wal` is the capture's, after a switch back
                    // the triggers'.
                    if let Some(mode) = open.switch {
                        self.journaling = mode == CaptureMode::Wal;
                    }
                }
            }
            // Everything the server decoded before this point has arrived: with nothing unjournaled
            // in hand, the slot may let go of the log up to it, or it would keep all of it for as
            // long as no plant changes.
            ReplicationEvent::KeepAlive { wal_end, .. } => {
                if self.open.is_none() && self.ready.is_empty() && self.stored.is_some() {
                    client.update_applied_lsn(wal_end);
                }
            }
            ReplicationEvent::Message {
                transactional: false,
                prefix,
                content,
                ..
            } if prefix == MARKER_PREFIX => {
                self.marker = Some(String::from_utf8_lossy(&content).into_owned());
            }
            ReplicationEvent::Message { .. } | ReplicationEvent::StoppedAt { .. } => {}
        }
        Ok(())
    }

    /// Decodes one pgoutput message of the open transaction. Rows the triggers journal are passed
    /// over: without `REPLICA IDENTITY FULL` (trigger capture) an update has no old row.
    fn change(&mut self, data: &[u8]) -> Result<(), StoreError> {
        let message = pgoutput::decode(data).map_err(|error| stream_error(error.to_string()))?;
        if !self.journaling && !matches!(message, Message::Relation(_)) {
            return Ok(());
        }
        let (relation, kind, before, after) = match message {
            Message::Relation(relation) => {
                self.relations.insert(relation.id, relation);
                return Ok(());
            }
            Message::Insert { relation, new } => (relation, "created", None, Some(new)),
            Message::Update { relation, old, new } => (relation, "updated", old, Some(new)),
            Message::Delete { relation, old } => (relation, "deleted", Some(old), None),
            Message::Truncate { .. } => {
                tracing::error!(
                    "power_plants was truncated although its trigger refuses that: the plants it \
                     removed are not in the journal."
                );
                return Ok(());
            }
            Message::Other => return Ok(()),
        };
        let relation = self
            .relations
            .get(&relation)
            .ok_or_else(|| stream_error(format!("a change of unknown relation {relation}")))?;
        if relation.columns != self.columns {
            return Err(stream_error(format!(
                "{}.{} has the columns {:?} in the stream and {:?} in the database",
                relation.namespace, relation.name, relation.columns, self.columns
            )));
        }
        if kind == "updated" && before.is_none() {
            return Err(stream_error(
                "an update without its old row: power_plants is not REPLICA IDENTITY FULL",
            ));
        }
        let Some(open) = self.open.as_mut() else {
            return Err(stream_error("a change outside a transaction"));
        };
        let after = after
            .map(|new| record_literal(&new, before.as_ref()))
            .transpose()?;
        let before = before.map(|old| record_literal(&old, None)).transpose()?;
        open.entries.push(Entry {
            kind,
            before,
            after,
            trace: open.trace.clone(),
        });
        Ok(())
    }

    /// Journals the transactions that are ready and not journaled yet, and stores a marker passed;
    /// the end of the last transaction seen, to confirm to the slot once committed.
    async fn journal(
        &mut self,
        store: &PostgresStore,
        fence: &Fence,
    ) -> Result<Option<Lsn>, StoreError> {
        let last = self.ready.last().map(|c| c.end);
        let mut stored = self.stored;
        let mut entries = Vec::new();
        for captured in self.ready.drain(..) {
            match (stored, captured.switch) {
                // Sent again after a crash: journaled already.
                (Some(at), _) if captured.end <= at => continue,
                // Stored, so a leader starting anew knows where the capture's changes begin.
                (_, Some(_)) => {}
                (_, None) if !captured.journaled => continue,
                (_, None) => {}
            }
            stored = Some(captured.end);
            entries.extend(
                captured
                    .entries
                    .into_iter()
                    .map(|entry| (captured.committed_micros, entry)),
            );
        }
        if stored != self.stored || self.marker.is_some() {
            write(store, fence, &entries, stored, self.marker.as_deref()).await?;
            self.stored = stored;
            self.marker = None;
        }
        Ok(last)
    }
}

/// Under `fence`, inserts `entries` in order, stores `end` and `marker`, and wakes the feeds of other
/// processes that wait, as the journal trigger does (migration 0013): all in one statement, so one
/// round trip and its commit. The fence's row lock orders it against a new holder's acquisition, as
/// [`FENCES`] does in a transaction; the statement locks the journal's table before it runs, which is
/// what a reader arming its wake-up waits out before it relies on writers to notify.
async fn write(
    store: &PostgresStore,
    fence: &Fence,
    entries: &[(i64, Entry)],
    end: Option<Lsn>,
    marker: Option<&str>,
) -> Result<(), StoreError> {
    let mut kinds = Vec::with_capacity(entries.len());
    let mut befores = Vec::with_capacity(entries.len());
    let mut afters = Vec::with_capacity(entries.len());
    let mut micros = Vec::with_capacity(entries.len());
    let mut traces = Vec::with_capacity(entries.len());
    for (committed, entry) in entries {
        kinds.push(entry.kind);
        befores.push(entry.before.as_deref());
        afters.push(entry.after.as_deref());
        micros.push(*committed);
        traces.push(entry.trace.as_str());
    }
    // Without entries (a switch, a marker) the journal's table is left alone: a lock on it would name
    // this statement among the journal's writers.
    let journaled = if entries.is_empty() {
        ""
    } else {
        "journaled AS ( \
             INSERT INTO plant_changes (plant_id, region, kind, before_row, after_row, \
                                        committed_at, traceparent) \
             SELECT coalesce((r.a).id, (r.b).id), coalesce((r.a).region, (r.b).region), c.kind, \
                    r.b, r.a, \
                    timestamptz '2000-01-01 00:00:00+00' + c.micros * interval '1 microsecond', \
                    c.trace \
             FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[]) \
                  WITH ORDINALITY AS c (kind, b, a, micros, trace, n) \
             CROSS JOIN LATERAL (SELECT c.b::power_plants AS b, c.a::power_plants AS a) r \
             WHERE EXISTS (SELECT 1 FROM fence) \
               AND (c.kind <> 'updated' OR (r.b).version IS DISTINCT FROM (r.a).version) \
             ORDER BY c.n),"
    };
    let touched: Vec<String> = sqlx::query_scalar(&format!(
        "WITH fence AS ({FENCES}), {journaled} \
         stored AS ( \
             UPDATE capture SET lsn = $7::pg_lsn, marker = coalesce($9, marker) \
             WHERE EXISTS (SELECT 1 FROM fence)), \
         woken AS ( \
             SELECT pg_notify($8, '') WHERE EXISTS (SELECT 1 FROM fence) \
                AND pg_sequence_last_value('plant_changes_awake') \
                    > (extract(epoch FROM clock_timestamp()) * 1000)::bigint) \
         SELECT name FROM fence, (SELECT count(*) FROM woken) w"
    ))
    .bind(shared::fences_json(std::slice::from_ref(fence)))
    .bind(&kinds)
    .bind(&befores)
    .bind(&afters)
    .bind(&micros)
    .bind(&traces)
    .bind(end.map(Lsn::to_pg_string))
    .bind(CHANNEL)
    .bind(marker)
    .fetch_all(&store.pool)
    .await?;
    shared::fenced(std::slice::from_ref(fence), &touched)
}

/// A row as a `power_plants` record literal: each field quoted, `"` and `\` escaped, NULL left empty.
/// A TOASTed value the change left alone is taken from the old row.
fn record_literal(tuple: &Tuple, old: Option<&Tuple>) -> Result<String, StoreError> {
    let mut literal = String::from("(");
    for (i, value) in tuple.iter().enumerate() {
        if i > 0 {
            literal.push(',');
        }
        let value = match value {
            Value::Unchanged => old.and_then(|old| old.get(i)).unwrap_or(&Value::Unchanged),
            value => value,
        };
        match value {
            Value::Null => {}
            Value::Text(text) => {
                literal.push('"');
                for ch in text.chars() {
                    if ch == '"' || ch == '\\' {
                        literal.push('\\');
                    }
                    literal.push(ch);
                }
                literal.push('"');
            }
            Value::Unchanged => {
                return Err(stream_error(
                    "an unchanged TOASTed value without the old row to take it from",
                ));
            }
        }
    }
    literal.push(')');
    Ok(literal)
}

/// `power_plants`'s columns, in order.
async fn columns(pool: &sqlx::PgPool) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute \
         WHERE attrelid = 'power_plants'::regclass AND attnum > 0 AND NOT attisdropped \
         ORDER BY attnum",
    )
    .fetch_all(pool)
    .await?)
}

/// A trace for a transaction that brought none: a random one, as W3C recommends.
fn new_trace() -> String {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = uuid::Uuid::new_v4().simple().to_string();
    format!("00-{trace}-{}-01", &span[..16])
}

fn parse_lsn(text: &str) -> Result<Lsn, StoreError> {
    Lsn::parse(text).map_err(|error| StoreError::Corrupt {
        what: "capture.lsn".into(),
        source: Box::new(error),
    })
}

fn stream_error(reason: impl Into<String>) -> StoreError {
    StoreError::CaptureStream {
        reason: reason.into(),
    }
}

/// The replication connection to the store's database, as its URL says, starting at `start`. The
/// session's date style and time zone are pinned, so timestamps come as the casts read them.
fn replication_config(
    store: &PostgresStore,
    slot: &str,
    start: Lsn,
) -> Result<ReplicationConfig, StoreError> {
    let url =
        url::Url::parse(store.url.expose()).map_err(|error| StoreError::CaptureUnavailable {
            reason: format!("the database URL cannot be read for replication: {error}"),
        })?;
    let decoded = |text: &str| {
        url::form_urlencoded::parse(format!("x={text}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let user = match url.username() {
        "" => query
            .get("user")
            .cloned()
            .unwrap_or_else(|| "postgres".into()),
        user => decoded(user),
    };
    let password = url.password().map(decoded).unwrap_or_default();
    let database = url.path().trim_start_matches('/');
    let database = match database {
        "" => user.clone(),
        name => decoded(name),
    };
    let host = url.host_str().unwrap_or("localhost").to_owned();
    let tls = match query.get("sslmode").map(String::as_str) {
        Some("require") => TlsConfig::require(),
        Some("verify-ca") => TlsConfig::verify_ca(None),
        Some("verify-full") => TlsConfig::verify_full(None),
        _ => TlsConfig::disabled(),
    };
    Ok(
        ReplicationConfig::new(host, user, password, database, slot, PUBLICATION)
            .with_port(url.port().unwrap_or(5432))
            .with_tls(tls)
            .with_start_lsn(start)
            .with_options("-c DateStyle=ISO -c TimeZone=UTC")
            .with_application_name("plant-monitor capture"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_literal_quotes_every_field_and_takes_untouched_values_from_the_old_row() {
        let old = vec![
            Value::Text("p1".into()),
            Value::Text("{\"a\": \"x\\\"y\"}".into()),
        ];
        let new = vec![Value::Null, Value::Unchanged];
        assert_eq!(
            record_literal(&new, Some(&old)).unwrap(),
            r#"(,"{\"a\": \"x\\\"y\"}")"#
        );
        assert!(record_literal(&new, None).is_err());
    }

    #[test]
    fn a_new_trace_is_a_w3c_traceparent() {
        let trace = new_trace();
        assert_eq!(trace.len(), 55, "{trace}");
        assert!(
            trace.starts_with("00-") && trace.ends_with("-01"),
            "{trace}"
        );
    }
}
