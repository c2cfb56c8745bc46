//! The outbox on SQLite: due deliveries in per-plant order, their attempts recorded set-based (and
//! counted in the statistics), sink state, dead letters and their replay.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Row, Sqlite, SqliteConnection};

use super::read_budget::fetch_within_read_budget;
use super::{MINUTE_NOW, SqliteStore};
use crate::decode::{decode_delivery, decode_delivery_record};
use crate::{
    Attempts, DeadLetters, Delivery, DeliveryRecord, DeliveryStatus, OutboxStore, Replay,
    SinkStats, StoreError, shared, stats,
};

/// The sinks' dead letters matching `?1` to `?5` (see [`bind_dead_letters`]). Times are compared as
/// the text the store writes, which sorts as they do.
const DEAD_LETTERS: &str = "status = 'dead' AND sink IS NOT NULL AND (?1 IS NULL OR sink = ?1) \
     AND (?2 IS NULL OR plant_id = ?2) AND (?3 IS NULL OR created_at >= ?3) \
     AND (?4 IS NULL OR created_at < ?4) AND (?5 IS NULL OR instr(last_error, ?5) > 0)";

fn bind_dead_letters<'q>(
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    filter: &'q DeadLetters,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    query
        .bind(filter.sink.as_deref())
        .bind(filter.plant_id.as_deref())
        .bind(filter.from.as_deref())
        .bind(filter.to.as_deref())
        .bind(filter.error.as_deref())
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn due_deliveries(
        &self,
        sink: &str,
        regions: &[String],
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let query = "WITH now AS (SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS at), \
                  led AS (SELECT value AS region FROM json_each(?2)) \
             SELECT d.id, d.seq, d.plant_id, d.region, d.attempts, c.event, c.outcome_pipeline, \
                    c.traceparent, c.committed_at, coalesce(octet_length(c.event), 0) AS read_bytes \
             FROM deliveries d JOIN plant_changes c ON c.seq = d.seq, now \
             WHERE d.sink = ?1 AND d.status = 'pending' AND d.region IN led \
               AND NOT EXISTS (SELECT 1 FROM sink_states s \
                               WHERE s.name = ?1 AND s.disabled_reason IS NOT NULL) \
               AND d.next_attempt_at <= now.at \
               AND NOT EXISTS (SELECT 1 FROM deliveries e \
                               WHERE e.sink = d.sink AND e.plant_id = d.plant_id \
                                 AND e.status = 'pending' AND e.id < d.id \
                                 AND (e.next_attempt_at > now.at OR e.region NOT IN led)) \
             ORDER BY d.id LIMIT ?3";
        let query = sqlx::query(query)
            .bind(sink)
            .bind(shared::regions_json(regions))
            .bind(i64::from(limit));
        let rows = fetch_within_read_budget(query, &self.pool).await?;
        rows.iter().map(decode_delivery).collect()
    }

    async fn record_attempts(&self, sink: &str, attempts: &Attempts) -> Result<(), StoreError> {
        let (sink, attempts) = (sink.to_owned(), attempts.clone());
        self.writer
            .run(Box::new(move |conn, before| {
                Box::pin(record_attempts(conn, before, sink, attempts))
            }))
            .await
    }

    async fn disable_sink(&self, sink: &str, reason: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sink_states (name, disabled_reason, disabled_at) \
             VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
             ON CONFLICT (name) DO UPDATE SET disabled_reason = excluded.disabled_reason, \
               disabled_at = excluded.disabled_at",
        )
        .bind(sink)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn enable_sink(&self, sink: &str) -> Result<bool, StoreError> {
        let enabled = sqlx::query(
            "UPDATE sink_states SET disabled_reason = NULL, disabled_at = NULL \
             WHERE name = ?1 AND disabled_reason IS NOT NULL",
        )
        .bind(sink)
        .execute(&self.pool)
        .await?;
        Ok(enabled.rows_affected() == 1)
    }

    async fn sink_stats(&self) -> Result<Vec<(String, SinkStats)>, StoreError> {
        let rows: Vec<shared::SinkStatsRow> = sqlx::query_as(
            "SELECT coalesce(c.sink, s.name), coalesce(c.pending, 0), coalesce(c.delivered, 0), \
               coalesce(c.dead, 0), coalesce(c.failed, 0), s.disabled_reason, \
               s.disabled_at, s.last_error, s.last_error_at \
             FROM sink_counts c FULL JOIN sink_states s ON s.name = c.sink ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(shared::sink_stats).collect())
    }

    async fn list_deliveries(
        &self,
        status: DeliveryStatus,
        sink: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.id, d.seq, d.sink, c.outcome_plugin AS plugin, d.plant_id, d.region, d.status, \
               d.attempts, d.last_error, d.created_at, d.next_attempt_at, d.delivered_at \
             FROM deliveries d JOIN plant_changes c ON c.seq = d.seq \
             WHERE d.status = ?1 AND (?2 IS NULL OR d.sink = ?2) AND d.id > ?3 \
             ORDER BY d.id LIMIT ?4",
        )
        .bind(status.as_str())
        .bind(sink)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_delivery_record).collect()
    }

    async fn retry_delivery(&self, id: i64) -> Result<Replay, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Writing first takes the write lock before reading (see the module comment).
        sqlx::query("UPDATE deliveries SET id = id WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let row: Option<(Option<String>, String, i64)> =
            sqlx::query_as("SELECT sink, status, seq FROM deliveries WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let replay = match row {
            None => return Ok(Replay::NotFound),
            Some((_, status, _)) if status != "dead" => return Ok(Replay::NotDead),
            Some((None, _, seq)) => {
                sqlx::query("DELETE FROM deliveries WHERE id = ?1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(shared::UNPROCESS)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                Replay::Reprocessed
            }
            Some(_) => {
                sqlx::query(
                    "UPDATE deliveries SET status = 'pending', attempts = 0, \
                     next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                Replay::Requeued
            }
        };
        tx.commit().await?;
        self.written.announce();
        Ok(replay)
    }

    async fn count_dead(&self, filter: &DeadLetters) -> Result<u64, StoreError> {
        let sql = format!("SELECT count(*) FROM deliveries WHERE {DEAD_LETTERS}");
        let row = bind_dead_letters(sqlx::query(&sql), filter)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?.max(0) as u64)
    }

    async fn retry_dead(&self, filter: &DeadLetters) -> Result<u64, StoreError> {
        let sql = format!(
            "UPDATE deliveries SET status = 'pending', attempts = 0, \
             next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE {DEAD_LETTERS}"
        );
        let retried = bind_dead_letters(sqlx::query(&sql), filter)
            .execute(&self.pool)
            .await?;
        Ok(retried.rows_affected())
    }

    async fn reschedule_pending(&self, sink: &str) -> Result<u64, StoreError> {
        let rescheduled = sqlx::query(
            "UPDATE deliveries SET next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
             WHERE sink = ?1 AND status = 'pending' \
               AND next_attempt_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(sink)
        .execute(&self.pool)
        .await?;
        Ok(rescheduled.rows_affected())
    }
}

/// Marks what a sink delivered, schedules its retries and buries its dead letters, set-based, with
/// the sink's statistics; inside the writer's transaction (see `group_commit`).
async fn record_attempts(
    conn: &mut SqliteConnection,
    before: String,
    sink: String,
    attempts: Attempts,
) -> Result<(), StoreError> {
    let json = shared::attempts_json(&attempts);
    let mut counted = Counted::default();
    // `before` heads the statements that mark deliveries delivered, the common case: they count
    // those still pending, as one JSON array, before marking them. The others count by
    // `rows_affected`, which over several statements would add in SQLite's count of an earlier
    // statement for each of `before`'s. The marked ids come as one value rather than one row each
    // (`RETURNING id`): every row is a hand-off from the connection's thread to the writer's, and
    // those made a sink's record cost 19 µs per delivery.
    if attempts.delivered.is_empty() {
        sqlx::query(&before).execute(&mut *conn).await?;
    } else {
        let ids = serde_json::Value::from(shared::delivered_ids(&attempts)).to_string();
        let marked: Vec<String> = sqlx::query_scalar(&format!(
            "{before}SELECT json_group_array(id) FROM deliveries \
             WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending'; \
             UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, \
               last_error = NULL, delivered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
             WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending'"
        ))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        counted.delivered = match marked.first() {
            Some(marked) => serde_json::from_str(marked).map_err(|error| StoreError::Corrupt {
                what: "the ids of deliveries marked delivered".into(),
                source: error.into(),
            })?,
            None => Vec::new(),
        };
    }
    if let Some(retries) = json.retries {
        counted.retried = sqlx::query(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = r.value ->> 1, \
               next_attempt_at = coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', \
                                          julianday('now') + (r.value ->> 2) / 86400000.0), \
                                          strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
             FROM json_each(?1) AS r \
             WHERE deliveries.id = r.value ->> 0 AND deliveries.status = 'pending'",
        )
        .bind(retries)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    if let Some(dead) = json.dead {
        counted.dead = sqlx::query(
            "UPDATE deliveries SET status = 'dead', attempts = attempts + 1, \
               last_error = x.value ->> 1 \
             FROM json_each(?1) AS x \
             WHERE deliveries.id = x.value ->> 0 AND deliveries.status = 'pending'",
        )
        .bind(dead)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    let (results, latencies) = counted.stats_json(&attempts);
    if let Some(results) = results {
        sqlx::query(&format!(
            "INSERT INTO stats_deliveries (minute, sink, outcome, count) \
             SELECT {MINUTE_NOW}, ?1, r.value ->> 0, r.value ->> 1 FROM json_each(?2) AS r \
             WHERE true ON CONFLICT (minute, sink, outcome) \
             DO UPDATE SET count = stats_deliveries.count + excluded.count"
        ))
        .bind(&sink)
        .bind(results)
        .execute(&mut *conn)
        .await?;
    }
    if let Some(latencies) = latencies {
        sqlx::query(&format!(
            "INSERT INTO stats_latency (minute, sink, bucket, count) \
             SELECT {MINUTE_NOW}, ?1, l.value ->> 0, l.value ->> 1 FROM json_each(?2) AS l \
             WHERE true ON CONFLICT (minute, sink, bucket) \
             DO UPDATE SET count = stats_latency.count + excluded.count"
        ))
        .bind(&sink)
        .bind(latencies)
        .execute(&mut *conn)
        .await?;
    }
    if let Some(error) = attempts.last_error() {
        sqlx::query(
            "INSERT INTO sink_states (name, last_error, last_error_at) \
             VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
             ON CONFLICT (name) DO UPDATE SET last_error = excluded.last_error, \
               last_error_at = excluded.last_error_at",
        )
        .bind(&sink)
        .bind(error)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What recording a sink's attempts changed, for the statistics: the deliveries it marked delivered,
/// and how many it put off for a retry or buried. An attempt whose delivery was no longer pending
/// (another leader recorded it first) changes nothing and is not counted.
#[derive(Debug, Default)]
struct Counted {
    delivered: Vec<i64>,
    retried: u64,
    dead: u64,
}

impl Counted {
    /// The JSON arrays the statistics' upserts read: the sink's results by outcome, and the
    /// latencies of what was marked delivered; none for an empty one.
    fn stats_json(&self, attempts: &Attempts) -> (Option<String>, Option<String>) {
        let latencies: HashMap<i64, Duration> = (attempts.delivered.iter())
            .filter_map(|delivered| Some((delivered.id, delivered.latency?)))
            .collect();
        let results = stats::deliveries_json(
            self.delivered.len() as u64,
            self.retried + self.dead,
            self.dead,
        );
        let latency = stats::latency_json(
            (self.delivered.iter()).filter_map(|id| latencies.get(id).copied()),
        );
        (results, latency)
    }
}
