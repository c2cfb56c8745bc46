//! The outbox on PostgreSQL: due deliveries in per-plant order, their attempts recorded set-based (and
//! counted in the statistics), sink state, dead letters and their replay.

use async_trait::async_trait;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Row};

use super::{MINUTE_NOW, PostgresStore, within_read_budget};
use crate::decode::{decode_delivery, decode_delivery_record};
use crate::{
    Attempts, DeadLetters, Delivery, DeliveryRecord, DeliveryStatus, OutboxStore, Replay,
    SinkStats, StoreError, shared, stats,
};

/// The sinks' dead letters matching `$1` to `$5` (see [`bind_dead_letters`]).
const DEAD_LETTERS: &str = "status = 'dead' AND sink IS NOT NULL \
     AND ($1::text IS NULL OR sink = $1) AND ($2::text IS NULL OR plant_id = $2) \
     AND ($3::timestamptz IS NULL OR created_at >= $3::timestamptz) \
     AND ($4::timestamptz IS NULL OR created_at < $4::timestamptz) \
     AND ($5::text IS NULL OR strpos(last_error, $5) > 0)";

fn bind_dead_letters<'q>(
    query: Query<'q, Postgres, PgArguments>,
    filter: &'q DeadLetters,
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(filter.sink.as_deref())
        .bind(filter.plant_id.as_deref())
        .bind(filter.from.as_deref())
        .bind(filter.to.as_deref())
        .bind(filter.error.as_deref())
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn due_deliveries(
        &self,
        sink: &str,
        regions: &[String],
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        // The probe for a plant's earlier delivery names its status as deliveries_unsettled_by_plant
        // does (migration 0018), so that index is the only one it can use.
        let query = "SELECT d.id, d.seq, d.plant_id, d.region, d.attempts::bigint AS attempts, c.event, \
               c.outcome_pipeline, \
               plant_traceparent(c.traceparent, c.xact, c.committed_at) AS traceparent, \
               plant_time(c.committed_at) AS committed_at \
             FROM deliveries d JOIN plant_changes c ON c.seq = d.seq \
             WHERE d.sink = $1 AND d.status = 'pending' AND d.region = ANY($2) \
               AND NOT EXISTS (SELECT 1 FROM sink_states s \
                               WHERE s.name = $1 AND s.disabled_reason IS NOT NULL) \
               AND d.next_attempt_at <= now() \
               AND NOT EXISTS (SELECT 1 FROM deliveries e \
                               WHERE e.sink = d.sink AND e.plant_id = d.plant_id \
                                 AND e.status NOT IN ('delivered', 'dead') AND e.id < d.id \
                                 AND (e.next_attempt_at > now() OR e.region <> ALL($2)) \
                               OFFSET 0) \
             ORDER BY d.id LIMIT $3";
        let rows = sqlx::query(&within_read_budget(
            query,
            "coalesce(octet_length(q.event), 0)",
            "id",
        ))
        .bind(sink)
        .bind(regions)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_delivery).collect()
    }

    async fn record_attempts(&self, sink: &str, attempts: &Attempts) -> Result<(), StoreError> {
        // One statement, so one round trip and no explicit transaction: the sink's results are the
        // commonest write there is, and on this server each statement costs more than its work. The
        // statistics count what the updates changed (a delivery recorded twice counts once); the
        // upserts go in key order, so replicas recording for one sink wait instead of deadlocking.
        // The failed ids go again as a plain list ($8), so those updates find their rows by key:
        // joined to the JSON alone, they scanned every pending delivery (a hash join over
        // deliveries_pending_by_region), a cost per record that grows with the backlog.
        let json = shared::attempts_json(attempts);
        let failed: Vec<i64> = (attempts.retries.iter().map(|retry| retry.id))
            .chain(attempts.dead.iter().map(|dead| dead.id))
            .collect();
        let latency = latency_buckets(attempts);
        sqlx::query(&format!(
            "WITH delivered AS ( \
               UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, \
                 last_error = NULL, delivered_at = now() \
               WHERE id = ANY($2) AND status = 'pending' RETURNING id), \
             retried AS ( \
               UPDATE deliveries d SET attempts = d.attempts + 1, last_error = r ->> 1, \
                 next_attempt_at = now() + make_interval(secs => (r ->> 2)::float8 / 1000) \
               FROM jsonb_array_elements(coalesce($3::jsonb, '[]')) AS r \
               WHERE d.id = (r ->> 0)::bigint AND d.id = ANY($8) AND d.status = 'pending' \
               RETURNING d.id), \
             dead AS ( \
               UPDATE deliveries d SET status = 'dead', attempts = d.attempts + 1, \
                 last_error = x ->> 1 \
               FROM jsonb_array_elements(coalesce($4::jsonb, '[]')) AS x \
               WHERE d.id = (x ->> 0)::bigint AND d.id = ANY($8) AND d.status = 'pending' \
               RETURNING d.id), \
             results AS ( \
               INSERT INTO stats_deliveries (minute, sink, outcome, count) \
               SELECT {MINUTE_NOW}, $1, o.outcome, o.count FROM (VALUES \
                 ('dead', (SELECT count(*) FROM dead)), \
                 ('delivered', (SELECT count(*) FROM delivered)), \
                 ('failed', (SELECT count(*) FROM retried) + (SELECT count(*) FROM dead)) \
               ) AS o(outcome, count) WHERE o.count > 0 ORDER BY o.outcome \
               ON CONFLICT (minute, sink, outcome) \
               DO UPDATE SET count = stats_deliveries.count + excluded.count), \
             latencies AS ( \
               INSERT INTO stats_latency (minute, sink, bucket, count) \
               SELECT {MINUTE_NOW}, $1, l.bucket, count(*) \
               FROM unnest($5::bigint[], $6::smallint[]) AS l(id, bucket) \
               JOIN delivered ON delivered.id = l.id GROUP BY l.bucket ORDER BY l.bucket \
               ON CONFLICT (minute, sink, bucket) \
               DO UPDATE SET count = stats_latency.count + excluded.count), \
             state AS ( \
               INSERT INTO sink_states (name, last_error, last_error_at) \
               SELECT $1, $7, now() WHERE $7::text IS NOT NULL \
               ON CONFLICT (name) DO UPDATE SET last_error = excluded.last_error, \
                 last_error_at = excluded.last_error_at) \
             SELECT 1"
        ))
        .bind(sink)
        .bind(shared::delivered_ids(attempts))
        .bind(json.retries)
        .bind(json.dead)
        .bind(latency.ids)
        .bind(latency.buckets)
        .bind(attempts.last_error())
        .bind(failed)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn disable_sink(&self, sink: &str, reason: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sink_states (name, disabled_reason, disabled_at) VALUES ($1, $2, now()) \
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
             WHERE name = $1 AND disabled_reason IS NOT NULL",
        )
        .bind(sink)
        .execute(&self.pool)
        .await?;
        Ok(enabled.rows_affected() == 1)
    }

    async fn sink_stats(&self) -> Result<Vec<(String, SinkStats)>, StoreError> {
        fold_sink_counts(&self.pool).await?;
        let rows: Vec<shared::SinkStatsRow> = sqlx::query_as(
            "SELECT coalesce(c.sink, s.name), coalesce(c.pending, 0), coalesce(c.delivered, 0), \
               coalesce(c.dead, 0), coalesce(c.failed, 0), s.disabled_reason, \
               plant_time(s.disabled_at), s.last_error, plant_time(s.last_error_at) \
             FROM sink_totals c FULL JOIN sink_states s ON s.name = c.sink ORDER BY 1",
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
               d.attempts::bigint AS attempts, d.last_error, plant_time(d.created_at) AS created_at, \
               plant_time(d.next_attempt_at) AS next_attempt_at, \
               plant_time(d.delivered_at) AS delivered_at \
             FROM deliveries d JOIN plant_changes c ON c.seq = d.seq \
             WHERE d.status = $1 AND ($2::text IS NULL OR d.sink = $2) AND d.id > $3 \
             ORDER BY d.id LIMIT $4",
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
        let row: Option<(Option<String>, String, i64)> =
            sqlx::query_as("SELECT sink, status, seq FROM deliveries WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let replay = match row {
            None => return Ok(Replay::NotFound),
            Some((_, status, _)) if status != "dead" => return Ok(Replay::NotDead),
            Some((None, _, seq)) => {
                sqlx::query("DELETE FROM deliveries WHERE id = $1")
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
                    "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now() \
                     WHERE id = $1",
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
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now() \
             WHERE {DEAD_LETTERS}"
        );
        let retried = bind_dead_letters(sqlx::query(&sql), filter)
            .execute(&self.pool)
            .await?;
        Ok(retried.rows_affected())
    }

    async fn reschedule_pending(&self, sink: &str) -> Result<u64, StoreError> {
        let rescheduled = sqlx::query(
            "UPDATE deliveries SET next_attempt_at = now() \
             WHERE sink = $1 AND status = 'pending' AND next_attempt_at > now()",
        )
        .bind(sink)
        .execute(&self.pool)
        .await?;
        Ok(rescheduled.rows_affected())
    }
}

/// The delivered events that carry a latency, as two aligned arrays for `unnest`: their ids and their
/// latencies' statistics buckets.
struct LatencyBuckets {
    ids: Vec<i64>,
    buckets: Vec<i16>,
}

fn latency_buckets(attempts: &Attempts) -> LatencyBuckets {
    let (ids, buckets) = (attempts.delivered.iter())
        .filter_map(|delivered| {
            let bucket = stats::latency_bucket(delivered.latency?);
            Some((delivered.id, i16::try_from(bucket).unwrap_or(i16::MAX)))
        })
        .unzip();
    LatencyBuckets { ids, buckets }
}

/// Moves the sinks' figures appended since the last fold into their totals (migration 0013), in a
/// transaction of its own: it waits on no writer of deliveries, only on another fold.
pub(super) async fn fold_sink_counts(pool: &sqlx::PgPool) -> Result<(), StoreError> {
    sqlx::query("SELECT sink_counts_fold()")
        .execute(pool)
        .await?;
    Ok(())
}
