//! The embedded SQLite backend: one database file in WAL mode, shared safely by several processes.
//! Writes start with the write itself, so a transaction never has to upgrade a read lock (which SQLite
//! would refuse under contention); the busy timeout then orders concurrent writers.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection};
use tokio::sync::Notify;

use super::decode::{
    decode_change, decode_delivery, decode_delivery_record, decode_lease, decode_plant,
};
use super::migrations::{self, Embedded};
use super::{
    Acquisition, Attempts, Change, Delivery, DeliveryRecord, DeliveryStatus, Fence, Lease, Plant,
    PlantDraft, PlantFilter, Processed, Replay, SinkStats, Store, StoreError,
};
use crate::config::DatabaseConfig;

/// How long a writer waits for another's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of connections to one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Signalled after every write this process commits, so the feed need not wait for its next poll.
    written: Arc<Notify>,
    /// Signalled when this process releases a lease. Other processes on the file find out by polling.
    released: Arc<Notify>,
}

impl SqliteStore {
    /// Opens (creating if missing) the file `config.url` names, and its folder.
    pub async fn connect(config: &DatabaseConfig) -> Result<SqliteStore, StoreError> {
        let open_error = |source| StoreError::Open {
            url: config.url.clone(),
            source,
        };
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(open_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a change acknowledged to a client survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        if let Some(folder) = options.get_filename().parent()
            && !folder.as_os_str().is_empty()
        {
            std::fs::create_dir_all(folder).map_err(|error| open_error(sqlx::Error::Io(error)))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        Ok(SqliteStore {
            pool,
            written: Arc::new(Notify::new()),
            released: Arc::new(Notify::new()),
        })
    }

    async fn plant_in(conn: &mut SqliteConnection, id: &str) -> Result<Option<Plant>, StoreError> {
        let row = sqlx::query("SELECT image FROM power_plant_images WHERE id = ?1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
        row.map(|row| decode_plant(&row)).transpose()
    }

    /// Explains why a conditional write touched no row.
    async fn missed(
        conn: &mut SqliteConnection,
        id: &str,
        expected: Option<u64>,
    ) -> Result<StoreError, StoreError> {
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM power_plants WHERE id = ?1")
                .bind(id)
                .fetch_optional(conn)
                .await?;
        Ok(super::missed(id, current, expected))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate::Migrator::new(Embedded(migrations::SQLITE))
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
        super::readiness(applied, migrations::latest(migrations::SQLITE))
    }

    async fn create_plant(&self, draft: &PlantDraft) -> Result<Plant, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.pool.begin().await?;
        let insert = sqlx::query(
            "INSERT INTO power_plants (id, name, region, fuel, capacity_mw, output_mw, status, \
             latitude, longitude, attributes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .bind(&id);
        bind_draft(insert, draft).execute(&mut *tx).await?;
        let plant = Self::plant_in(&mut tx, &id)
            .await?
            .ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
        tx.commit().await?;
        self.written.notify_one();
        Ok(plant)
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
            "SELECT image FROM power_plant_images \
             WHERE (?1 IS NULL OR region = ?1) AND (?2 IS NULL OR fuel = ?2) \
               AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR id > ?4) \
             ORDER BY id LIMIT ?5",
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
        let mut tx = self.pool.begin().await?;
        let update = sqlx::query(
            "UPDATE power_plants SET name = ?2, region = ?3, fuel = ?4, capacity_mw = ?5, \
             output_mw = ?6, status = ?7, latitude = ?8, longitude = ?9, attributes = ?10 \
             WHERE id = ?1 AND (?11 IS NULL OR version = ?11)",
        )
        .bind(id);
        let updated = bind_draft(update, draft)
            .bind(expected_version.map(|v| v as i64))
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(Self::missed(&mut tx, id, expected_version).await?);
        }
        let plant = Self::plant_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound { id: id.to_owned() })?;
        tx.commit().await?;
        self.written.notify_one();
        Ok(plant)
    }

    async fn delete_plant(
        &self,
        id: &str,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted =
            sqlx::query("DELETE FROM power_plants WHERE id = ?1 AND (?2 IS NULL OR version = ?2)")
                .bind(id)
                .bind(expected_version.map(|v| v as i64))
                .execute(&mut *tx)
                .await?;
        if deleted.rows_affected() == 0 {
            return Err(Self::missed(&mut tx, id, expected_version).await?);
        }
        tx.commit().await?;
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
             WHERE seq > ?1 AND (?2 IS NULL OR plant_id = ?2) ORDER BY seq LIMIT ?3"
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
             WHERE c.processed_at IS NULL AND c.region IN (SELECT value FROM json_each(?1)) \
               AND NOT EXISTS (SELECT 1 FROM plant_changes e \
                               WHERE e.plant_id = c.plant_id AND e.seq < c.seq \
                                 AND e.processed_at IS NULL \
                                 AND e.region NOT IN (SELECT value FROM json_each(?1))) \
             ORDER BY c.seq LIMIT ?2"
        ))
        .bind(super::regions_json(regions))
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
        // Two set-based statements per batch rather than two per change: each statement is a round
        // trip to the driver's worker thread, which would otherwise dominate the feed's cost.
        let (outcomes, deliveries) = super::batch_json(batch);
        let mut tx = self.pool.begin().await?;
        check_fences(&mut tx, fences).await?;
        sqlx::query(
            "UPDATE plant_changes SET processed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), \
             outcome = o.value ->> 1, outcome_plugin = o.value ->> 2, outcome_reason = o.value ->> 3, \
             event = o.value ->> 4 \
             FROM json_each(?1) AS o WHERE plant_changes.seq = o.value ->> 0 AND processed_at IS NULL",
        )
        .bind(outcomes)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO deliveries (seq, sink, plant_id, region, status, last_error) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 \
             FROM json_each(?1)",
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
            "INSERT INTO feed_snapshots (scope, taken_at) \
             VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
             ON CONFLICT (scope) DO UPDATE SET taken_at = excluded.taken_at WHERE NOT ?2",
        )
        .bind(region)
        .bind(only_first)
        .execute(&mut *tx)
        .await?;
        if first.rows_affected() == 0 {
            return Ok(0);
        }
        // A plant with a change still to be fed is left out: that change brings its state anyway.
        let added = sqlx::query(
            "INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields) \
             SELECT id, region, 'snapshot', NULL, image, '[]' FROM power_plant_images p \
             WHERE region = ?1 AND NOT EXISTS (SELECT 1 FROM plant_changes c \
                                               WHERE c.plant_id = p.id AND c.processed_at IS NULL) \
             ORDER BY id",
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
             VALUES (?1, ?2, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3)) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = leases.epoch + 1, \
               expires_at = excluded.expires_at \
             WHERE leases.expires_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
               OR leases.holder = excluded.holder \
             RETURNING epoch",
        )
        .bind(name)
        .bind(holder)
        .bind(seconds_modifier(ttl))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(epoch) = epoch {
            return Ok(Acquisition::Acquired {
                epoch: epoch as u64,
            });
        }
        let (holder, remaining): (String, f64) = sqlx::query_as(
            "SELECT holder, max(0.0, (julianday(expires_at) - julianday('now')) * 86400.0) \
             FROM leases WHERE name = ?1",
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
            "UPDATE leases SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?4) \
             WHERE name = ?1 AND holder = ?2 AND epoch = ?3",
        )
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.epoch as i64)
        .bind(seconds_modifier(ttl))
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release_lease(&self, fence: &Fence) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE leases SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
             WHERE name = ?1 AND holder = ?2 AND epoch = ?3",
        )
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.epoch as i64)
        .execute(&self.pool)
        .await?;
        self.released.notify_one();
        Ok(())
    }

    async fn wait_for_lease_release(&self, at_most: Duration) -> bool {
        tokio::time::timeout(at_most, self.released.notified())
            .await
            .is_ok()
    }

    async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, holder, epoch, expires_at, \
             expires_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS held FROM leases ORDER BY name",
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
            "WITH now AS (SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS at), \
                  led AS (SELECT value AS region FROM json_each(?2)) \
             SELECT d.id, d.seq, d.plant_id, d.region, d.attempts, c.event \
             FROM deliveries d JOIN plant_changes c ON c.seq = d.seq, now \
             WHERE d.sink = ?1 AND d.status = 'pending' AND d.region IN led \
               AND NOT EXISTS (SELECT 1 FROM sink_states s \
                               WHERE s.name = ?1 AND s.disabled_reason IS NOT NULL) \
               AND d.next_attempt_at <= now.at \
               AND NOT EXISTS (SELECT 1 FROM deliveries e \
                               WHERE e.sink = d.sink AND e.plant_id = d.plant_id \
                                 AND e.status = 'pending' AND e.id < d.id \
                                 AND (e.next_attempt_at > now.at OR e.region NOT IN led)) \
             ORDER BY d.id LIMIT ?3",
        )
        .bind(sink)
        .bind(super::regions_json(regions))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_delivery).collect()
    }

    async fn record_attempts(&self, sink: &str, attempts: &Attempts) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, last_error = NULL, \
             delivered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
             WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending'",
        )
        .bind(serde_json::Value::from(attempts.delivered.as_slice()).to_string())
        .execute(&mut *tx)
        .await?;
        for retry in &attempts.retries {
            sqlx::query(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, \
                 next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3) \
                 WHERE id = ?1 AND status = 'pending'",
            )
            .bind(retry.id)
            .bind(&retry.error)
            .bind(seconds_modifier(retry.after))
            .execute(&mut *tx)
            .await?;
        }
        for dead in &attempts.dead {
            sqlx::query(
                "UPDATE deliveries SET status = 'dead', attempts = attempts + 1, last_error = ?2 \
                 WHERE id = ?1 AND status = 'pending'",
            )
            .bind(dead.id)
            .bind(&dead.error)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(error) = attempts.last_error() {
            sqlx::query(
                "INSERT INTO sink_states (name, last_error, last_error_at) \
                 VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
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
        let rows: Vec<super::SinkStatsRow> = sqlx::query_as(&format!(
            "{} SELECT coalesce(c.sink, s.name), coalesce(c.pending, 0), \
               coalesce(c.delivered, 0), coalesce(c.dead, 0), coalesce(c.failed, 0), \
               s.disabled_reason, s.disabled_at, s.last_error, s.last_error_at \
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
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT sink, status, seq FROM deliveries WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let replay = match row {
            None => return Ok(Replay::NotFound),
            Some((_, status, _)) if status != "dead" => return Ok(Replay::NotDead),
            Some((sink, _, seq)) if sink == super::PLUGIN_DEAD_LETTER => {
                sqlx::query("DELETE FROM deliveries WHERE id = ?1")
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
        self.written.notify_one();
        Ok(replay)
    }

    async fn retry_dead(&self, sink: &str) -> Result<u64, StoreError> {
        let retried = sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempts = 0, \
             next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
             WHERE sink = ?1 AND status = 'dead'",
        )
        .bind(sink)
        .execute(&self.pool)
        .await?;
        Ok(retried.rows_affected())
    }

    async fn prune(&self, age: Duration, limit: u32) -> Result<(u64, u64), StoreError> {
        let cutoff = format!("-{:.3} seconds", age.as_secs_f64());
        let deliveries = sqlx::query(
            "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
               WHERE status = 'delivered' \
                 AND delivered_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1) LIMIT ?2)",
        )
        .bind(&cutoff)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        let changes = sqlx::query(
            "DELETE FROM plant_changes WHERE seq IN (SELECT seq FROM plant_changes c \
               WHERE c.processed_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1) \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = c.seq) \
               ORDER BY seq LIMIT ?2)",
        )
        .bind(&cutoff)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok((deliveries.rows_affected(), changes.rows_affected()))
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// Checks every fence inside `tx`. The transaction holds SQLite's write lock from this first write to
/// its end, so no acquisition can come between the check and the writes it guards.
async fn check_fences(tx: &mut SqliteConnection, fences: &[Fence]) -> Result<(), StoreError> {
    let touched: Vec<String> = sqlx::query_scalar(
        "UPDATE leases SET epoch = leases.epoch FROM json_each(?1) AS f \
         WHERE leases.name = f.value ->> 0 AND leases.holder = f.value ->> 1 \
           AND leases.epoch = f.value ->> 2 \
         RETURNING leases.name",
    )
    .bind(super::fences_json(fences))
    .fetch_all(tx)
    .await?;
    super::fenced(fences, &touched)
}

/// A duration as an SQLite date modifier, to the millisecond.
fn seconds_modifier(duration: Duration) -> String {
    format!("+{:.3} seconds", duration.as_secs_f64())
}

/// The columns [`decode_change`] reads.
const CHANGE_COLUMNS: &str = "seq, plant_id, region, kind, before, after, changed_fields, committed_at, \
     processed_at, outcome, outcome_plugin, outcome_reason";

/// Binds the draft's fields as parameters ?2 to ?10 (after the id as ?1), in column order.
fn bind_draft<'q>(
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    draft: &'q PlantDraft,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
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
