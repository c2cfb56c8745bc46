//! The PostgreSQL backend, for replicas sharing one database. Writes are single conditional statements
//! where possible (`RETURNING` gives the row as the triggers left it). A `LISTEN` on `plant_changes`,
//! which the journal trigger notifies, wakes the feed when any writer commits; after the listening
//! connection is lost and re-established the feed is woken too, since notifications may have been
//! missed in between.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgArguments;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::decode::{
    decode_change, decode_delivery, decode_delivery_record, decode_lease, decode_plant,
};
use super::migrations::{self, Embedded};
use super::{
    Acquisition, Attempts, Change, Delivery, DeliveryRecord, DeliveryStatus, Fence, Lease, Plant,
    PlantDraft, PlantFilter, Processed, Replay, SinkStats, Store, StoreError,
};
use crate::config::DatabaseConfig;

// The per-plant `NOT EXISTS` checks below end in `OFFSET 0`, which keeps PostgreSQL from turning them
// into an anti-join. Planned as a join, under statistics that lag a burst of writes (autovacuum has
// not analyzed yet), the probe scanned every pending row once per candidate: 61 s per round at 100k
// pending deliveries. As a correlated subplan it is an index probe on (sink, plant_id, id): 12 ms.

/// The notification channel the journal trigger signals.
const CHANNEL: &str = "plant_changes";

/// The notification channel a released lease is announced on, so a standby takes it at once.
const LEASE_CHANNEL: &str = "plant_monitor_leases";

/// The columns [`decode_change`] reads, as text in the contract's format.
const CHANGE_COLUMNS: &str = "seq, plant_id, region, kind, before::text AS before, after::text AS after, \
     changed_fields::text AS changed_fields, plant_time(committed_at) AS committed_at, \
     plant_time(processed_at) AS processed_at, outcome, outcome_plugin, outcome_reason";

/// A pool of connections to one PostgreSQL database, and the listener that wakes the feed.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    written: Arc<Notify>,
    released: Arc<Notify>,
    listener: AbortHandle,
}

impl PostgresStore {
    pub async fn connect(config: &DatabaseConfig) -> Result<PostgresStore, StoreError> {
        let open_error = |source| StoreError::Open {
            url: config.url.clone(),
            source,
        };
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .connect(&config.url)
            .await
            .map_err(open_error)?;
        let mut listener = PgListener::connect_with(&pool).await.map_err(open_error)?;
        listener
            .listen_all([CHANNEL, LEASE_CHANNEL])
            .await
            .map_err(open_error)?;
        let written = Arc::new(Notify::new());
        let released = Arc::new(Notify::new());
        let listener =
            tokio::spawn(listen(listener, written.clone(), released.clone())).abort_handle();
        Ok(PostgresStore {
            pool,
            written,
            released,
            listener,
        })
    }

    async fn plant_in(conn: &mut PgConnection, id: &str) -> Result<Option<Plant>, StoreError> {
        let row =
            sqlx::query("SELECT plant_image(p)::text AS image FROM power_plants p WHERE id = $1")
                .bind(id)
                .fetch_optional(conn)
                .await?;
        row.map(|row| decode_plant(&row)).transpose()
    }

    /// Explains why a conditional write touched no row.
    async fn missed(&self, id: &str, expected: Option<u64>) -> Result<StoreError, StoreError> {
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM power_plants WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(super::missed(id, current, expected))
    }
}

/// Turns notifications into wake-ups for as long as the store lives.
async fn listen(mut listener: PgListener, written: Arc<Notify>, released: Arc<Notify>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) if notification.channel() == LEASE_CHANNEL => {
                released.notify_one()
            }
            Ok(Some(_)) => written.notify_one(),
            // The connection was lost; the next call reconnects. What was committed meanwhile went
            // unannounced, so look now.
            Ok(None) => {
                written.notify_one();
                released.notify_one();
            }
            Err(error) => {
                tracing::warn!(%error, "Lost the PostgreSQL change notifications; polling until they return.");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate::Migrator::new(Embedded(migrations::POSTGRES))
            .await?
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .or_else(super::no_migrations_table)?;
        super::readiness(applied, migrations::latest(migrations::POSTGRES))
    }

    async fn create_plant(&self, draft: &PlantDraft) -> Result<Plant, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let insert = sqlx::query(
            "INSERT INTO power_plants (id, name, region, fuel, capacity_mw, output_mw, status, \
             latitude, longitude, attributes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb) \
             RETURNING plant_image(power_plants)::text AS image",
        )
        .bind(&id);
        let row = bind_draft(insert, draft).fetch_one(&self.pool).await?;
        self.written.notify_one();
        decode_plant(&row)
    }

    async fn get_plant(&self, id: &str) -> Result<Option<Plant>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::plant_in(&mut conn, id).await
    }

    async fn list_plants(
        &self,
        filter: &PlantFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Plant>, StoreError> {
        let rows = sqlx::query(
            "SELECT plant_image(p)::text AS image FROM power_plants p \
             WHERE ($1::text IS NULL OR region = $1) AND ($2::text IS NULL OR fuel = $2) \
               AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR id > $4) \
             ORDER BY id LIMIT $5",
        )
        .bind(filter.region.as_deref())
        .bind(filter.fuel.map(|f| f.as_str()))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_plant).collect()
    }

    async fn replace_plant(
        &self,
        id: &str,
        draft: &PlantDraft,
        expected_version: Option<u64>,
    ) -> Result<Plant, StoreError> {
        let update = sqlx::query(
            "UPDATE power_plants SET name = $2, region = $3, fuel = $4, capacity_mw = $5, \
             output_mw = $6, status = $7, latitude = $8, longitude = $9, attributes = $10::jsonb \
             WHERE id = $1 AND ($11::bigint IS NULL OR version = $11) \
             RETURNING plant_image(power_plants)::text AS image",
        )
        .bind(id);
        let row = bind_draft(update, draft)
            .bind(expected_version.map(|v| v as i64))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => {
                self.written.notify_one();
                decode_plant(&row)
            }
            None => Err(self.missed(id, expected_version).await?),
        }
    }

    async fn delete_plant(
        &self,
        id: &str,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM power_plants WHERE id = $1 AND ($2::bigint IS NULL OR version = $2)",
        )
        .bind(id)
        .bind(expected_version.map(|v| v as i64))
        .execute(&self.pool)
        .await?;
        if deleted.rows_affected() == 0 {
            return Err(self.missed(id, expected_version).await?);
        }
        self.written.notify_one();
        Ok(())
    }

    async fn list_changes(
        &self,
        plant_id: Option<&str>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM plant_changes \
             WHERE seq > $1 AND ($2::text IS NULL OR plant_id = $2) ORDER BY seq LIMIT $3"
        ))
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(plant_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_change).collect()
    }

    async fn wait_for_changes(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.written.notified()).await;
    }

    async fn unprocessed_changes(
        &self,
        regions: &[String],
        limit: u32,
    ) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM plant_changes c \
             WHERE c.processed_at IS NULL AND c.region = ANY($1) \
               AND NOT EXISTS (SELECT 1 FROM plant_changes e \
                               WHERE e.plant_id = c.plant_id AND e.seq < c.seq \
                                 AND e.processed_at IS NULL AND e.region <> ALL($1) \
                               OFFSET 0) \
             ORDER BY c.seq LIMIT $2"
        ))
        .bind(regions)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_change).collect()
    }

    async fn record_processed(
        &self,
        batch: &[Processed],
        fences: &[Fence],
    ) -> Result<(), StoreError> {
        // Set-based, as in the SQLite store: two statements per batch however large.
        let (outcomes, deliveries) = super::batch_json(batch);
        let mut tx = self.pool.begin().await?;
        check_fences(&mut tx, fences).await?;
        sqlx::query(
            "UPDATE plant_changes c SET processed_at = now(), outcome = o ->> 1, \
             outcome_plugin = o ->> 2, outcome_reason = o ->> 3, event = o ->> 4 \
             FROM jsonb_array_elements($1::jsonb) AS o \
             WHERE c.seq = (o ->> 0)::bigint AND c.processed_at IS NULL",
        )
        .bind(outcomes)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO deliveries (seq, sink, plant_id, region, status, last_error) \
             SELECT (d ->> 0)::bigint, d ->> 1, d ->> 2, d ->> 3, d ->> 4, d ->> 5 \
             FROM jsonb_array_elements($1::jsonb) AS d",
        )
        .bind(deliveries)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn snapshot(
        &self,
        region: &str,
        only_first: bool,
        fence: &Fence,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        check_fences(&mut tx, std::slice::from_ref(fence)).await?;
        let first = sqlx::query(
            "INSERT INTO feed_snapshots (scope, taken_at) VALUES ($1, now()) \
             ON CONFLICT (scope) DO UPDATE SET taken_at = excluded.taken_at WHERE NOT $2",
        )
        .bind(region)
        .bind(only_first)
        .execute(&mut *tx)
        .await?;
        if first.rows_affected() == 0 {
            return Ok(0);
        }
        // FOR SHARE waits for writers of these rows and reads what they committed, so no snapshot
        // entry carries an image older than a change journaled before it. A plant with a change
        // still to be fed is left out: that change brings its state anyway.
        let added = sqlx::query(
            "INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields) \
             SELECT id, region, 'snapshot', NULL, plant_image(p), '[]' FROM power_plants p \
             WHERE region = $1 AND NOT EXISTS (SELECT 1 FROM plant_changes c \
                                               WHERE c.plant_id = p.id AND c.processed_at IS NULL) \
             ORDER BY id FOR SHARE OF p",
        )
        .bind(region)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(added.rows_affected())
    }

    async fn active_regions(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(super::ACTIVE_REGIONS)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Acquisition, StoreError> {
        let epoch: Option<i64> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, epoch, expires_at) \
             VALUES ($1, $2, 1, now() + make_interval(secs => $3)) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = leases.epoch + 1, \
               expires_at = excluded.expires_at \
             WHERE leases.expires_at <= now() OR leases.holder = excluded.holder \
             RETURNING epoch",
        )
        .bind(name)
        .bind(holder)
        .bind(ttl.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(epoch) = epoch {
            return Ok(Acquisition::Acquired {
                epoch: epoch as u64,
            });
        }
        let (holder, remaining): (String, f64) = sqlx::query_as(
            "SELECT holder, greatest(extract(epoch FROM expires_at - now()), 0)::float8 \
             FROM leases WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or_default();
        Ok(Acquisition::Held {
            holder,
            remaining: Duration::from_secs_f64(remaining),
        })
    }

    async fn renew_lease(&self, fence: &Fence, ttl: Duration) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE leases SET expires_at = now() + make_interval(secs => $4) \
             WHERE name = $1 AND holder = $2 AND epoch = $3",
        )
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.epoch as i64)
        .bind(ttl.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release_lease(&self, fence: &Fence) -> Result<(), StoreError> {
        sqlx::query(
            "WITH released AS (UPDATE leases SET expires_at = now() \
                               WHERE name = $1 AND holder = $2 AND epoch = $3 RETURNING name) \
             SELECT pg_notify($4, name) FROM released",
        )
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.epoch as i64)
        .bind(LEASE_CHANNEL)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn wait_for_lease_release(&self, at_most: Duration) -> bool {
        tokio::time::timeout(at_most, self.released.notified())
            .await
            .is_ok()
    }

    async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, holder, epoch, plant_time(expires_at) AS expires_at, \
             (expires_at > now())::int::bigint AS held FROM leases ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_lease).collect()
    }

    async fn due_deliveries(
        &self,
        sink: &str,
        regions: &[String],
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.id, d.seq, d.plant_id, d.region, d.attempts::bigint AS attempts, c.event \
             FROM deliveries d JOIN plant_changes c ON c.seq = d.seq \
             WHERE d.sink = $1 AND d.status = 'pending' AND d.region = ANY($2) \
               AND NOT EXISTS (SELECT 1 FROM sink_states s \
                               WHERE s.name = $1 AND s.disabled_reason IS NOT NULL) \
               AND d.next_attempt_at <= now() \
               AND NOT EXISTS (SELECT 1 FROM deliveries e \
                               WHERE e.sink = d.sink AND e.plant_id = d.plant_id \
                                 AND e.status = 'pending' AND e.id < d.id \
                                 AND (e.next_attempt_at > now() OR e.region <> ALL($2)) \
                               OFFSET 0) \
             ORDER BY d.id LIMIT $3",
        )
        .bind(sink)
        .bind(regions)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_delivery).collect()
    }

    async fn record_attempts(&self, sink: &str, attempts: &Attempts) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, last_error = NULL, \
             delivered_at = now() WHERE id = ANY($1) AND status = 'pending'",
        )
        .bind(&attempts.delivered)
        .execute(&mut *tx)
        .await?;
        for retry in &attempts.retries {
            sqlx::query(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = $2, \
                 next_attempt_at = now() + make_interval(secs => $3) \
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(retry.id)
            .bind(&retry.error)
            .bind(retry.after.as_secs_f64())
            .execute(&mut *tx)
            .await?;
        }
        for dead in &attempts.dead {
            sqlx::query(
                "UPDATE deliveries SET status = 'dead', attempts = attempts + 1, last_error = $2 \
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(dead.id)
            .bind(&dead.error)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(error) = attempts.last_error() {
            sqlx::query(
                "INSERT INTO sink_states (name, last_error, last_error_at) VALUES ($1, $2, now()) \
                 ON CONFLICT (name) DO UPDATE SET last_error = excluded.last_error, \
                   last_error_at = excluded.last_error_at",
            )
            .bind(sink)
            .bind(error)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
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
        let rows: Vec<super::SinkStatsRow> = sqlx::query_as(&format!(
            "{} SELECT coalesce(c.sink, s.name), coalesce(c.pending, 0), \
               coalesce(c.delivered, 0), coalesce(c.dead, 0), coalesce(c.failed, 0), \
               s.disabled_reason, plant_time(s.disabled_at), s.last_error, plant_time(s.last_error_at) \
             FROM counts c FULL JOIN sink_states s ON s.name = c.sink ORDER BY 1",
            super::SINK_COUNTS
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(super::sink_stats).collect())
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
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT sink, status, seq FROM deliveries WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let replay = match row {
            None => return Ok(Replay::NotFound),
            Some((_, status, _)) if status != "dead" => return Ok(Replay::NotDead),
            Some((sink, _, seq)) if sink == super::PLUGIN_DEAD_LETTER => {
                sqlx::query("DELETE FROM deliveries WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(super::UNPROCESS)
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
        self.written.notify_one();
        Ok(replay)
    }

    async fn retry_dead(&self, sink: &str) -> Result<u64, StoreError> {
        let retried = sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now() \
             WHERE sink = $1 AND status = 'dead'",
        )
        .bind(sink)
        .execute(&self.pool)
        .await?;
        Ok(retried.rows_affected())
    }

    async fn prune(&self, age: Duration, limit: u32) -> Result<(u64, u64), StoreError> {
        let deliveries = sqlx::query(
            "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
               WHERE status = 'delivered' AND delivered_at < now() - make_interval(secs => $1) \
               LIMIT $2)",
        )
        .bind(age.as_secs_f64())
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        let changes = sqlx::query(
            "DELETE FROM plant_changes WHERE seq IN (SELECT seq FROM plant_changes c \
               WHERE c.processed_at < now() - make_interval(secs => $1) \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = c.seq) \
               ORDER BY seq LIMIT $2)",
        )
        .bind(age.as_secs_f64())
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok((deliveries.rows_affected(), changes.rows_affected()))
    }

    async fn close(&self) {
        self.listener.abort();
        self.pool.close().await;
    }
}

/// Checks every fence inside `tx` and keeps its lease row locked until `tx` ends, which orders the
/// write after any acquisition that committed before it and before any that comes after.
async fn check_fences(tx: &mut PgConnection, fences: &[Fence]) -> Result<(), StoreError> {
    let touched: Vec<String> = sqlx::query_scalar(
        "UPDATE leases l SET epoch = l.epoch FROM jsonb_array_elements($1::jsonb) AS f \
         WHERE l.name = f ->> 0 AND l.holder = f ->> 1 AND l.epoch = (f ->> 2)::bigint \
         RETURNING l.name",
    )
    .bind(super::fences_json(fences))
    .fetch_all(tx)
    .await?;
    super::fenced(fences, &touched)
}

/// Binds the draft's fields as parameters $2 to $10 (after the id as $1), in column order.
fn bind_draft<'q>(
    query: Query<'q, Postgres, PgArguments>,
    draft: &'q PlantDraft,
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(&draft.name)
        .bind(&draft.region)
        .bind(draft.fuel.as_str())
        .bind(draft.capacity_mw)
        .bind(draft.output_mw)
        .bind(draft.status.as_str())
        .bind(draft.latitude)
        .bind(draft.longitude)
        .bind(super::attributes_json(draft))
}
