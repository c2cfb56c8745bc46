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

use super::decode::{decode_change, decode_delivery, decode_plant};
use super::migrations::{self, Embedded};
use super::{
    Change, Delivery, Plant, PlantDraft, PlantFilter, Processed, Retry, Store, StoreError,
};
use crate::config::DatabaseConfig;

/// The notification channel the journal trigger signals.
const CHANNEL: &str = "plant_changes";

/// The columns [`decode_change`] reads, as text in the contract's format.
const CHANGE_COLUMNS: &str = "seq, plant_id, region, kind, before::text AS before, after::text AS after, \
     changed_fields::text AS changed_fields, plant_time(committed_at) AS committed_at, \
     plant_time(processed_at) AS processed_at, outcome, outcome_plugin, outcome_reason";

/// A pool of connections to one PostgreSQL database, and the listener that wakes the feed.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    written: Arc<Notify>,
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
        listener.listen(CHANNEL).await.map_err(open_error)?;
        let written = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(listener, written.clone())).abort_handle();
        Ok(PostgresStore {
            pool,
            written,
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
async fn listen(mut listener: PgListener, written: Arc<Notify>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(_)) => written.notify_one(),
            // The connection was lost; the next call reconnects. What was committed meanwhile went
            // unannounced, so look now.
            Ok(None) => written.notify_one(),
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

    async fn unprocessed_changes(&self, limit: u32) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM plant_changes \
             WHERE processed_at IS NULL ORDER BY seq LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_change).collect()
    }

    async fn record_processed(&self, batch: &[Processed]) -> Result<(), StoreError> {
        // Set-based, as in the SQLite store: two statements per batch however large.
        let (outcomes, deliveries) = super::batch_json(batch);
        let mut tx = self.pool.begin().await?;
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
            "INSERT INTO deliveries (seq, sink, plant_id) \
             SELECT (d ->> 0)::bigint, d ->> 1, d ->> 2 FROM jsonb_array_elements($1::jsonb) AS d",
        )
        .bind(deliveries)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn snapshot(&self, scope: &str, only_first: bool) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let first = sqlx::query(
            "INSERT INTO feed_snapshots (scope, taken_at) VALUES ($1, now()) \
             ON CONFLICT (scope) DO UPDATE SET taken_at = excluded.taken_at WHERE NOT $2",
        )
        .bind(scope)
        .bind(only_first)
        .execute(&mut *tx)
        .await?;
        if first.rows_affected() == 0 {
            return Ok(0);
        }
        let added = sqlx::query(
            "INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields) \
             SELECT id, region, 'snapshot', NULL, plant_image(p), '[]' FROM power_plants p ORDER BY id",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(added.rows_affected())
    }

    async fn due_deliveries(&self, sink: &str, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.id, d.seq, d.plant_id, d.attempts::bigint AS attempts, c.event \
             FROM deliveries d JOIN plant_changes c ON c.seq = d.seq \
             WHERE d.sink = $1 AND d.status = 'pending' AND d.next_attempt_at <= now() \
               AND NOT EXISTS (SELECT 1 FROM deliveries e \
                               WHERE e.sink = d.sink AND e.plant_id = d.plant_id \
                                 AND e.status = 'pending' AND e.id < d.id AND e.next_attempt_at > now()) \
             ORDER BY d.id LIMIT $2",
        )
        .bind(sink)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_delivery).collect()
    }

    async fn finish_deliveries(
        &self,
        delivered: &[i64],
        retries: &[Retry],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, last_error = NULL, \
             delivered_at = now() WHERE id = ANY($1)",
        )
        .bind(delivered)
        .execute(&mut *tx)
        .await?;
        for retry in retries {
            sqlx::query(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = $2, \
                 next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
            )
            .bind(retry.id)
            .bind(&retry.error)
            .bind(retry.after.as_secs_f64())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn close(&self) {
        self.listener.abort();
        self.pool.close().await;
    }
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
