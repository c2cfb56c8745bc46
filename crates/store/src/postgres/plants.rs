//! Plants on PostgreSQL: each write one statement that returns the row as the triggers left it. The
//! write's trace reaches the journal through the transaction-local setting `plant_monitor.traceparent`
//! (see migration 0008), and in `wal` capture through a logical decoding message (`plant_write_trace`,
//! migration 0015), set by a condition of the same statement so a write stays one round trip.

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};

use super::PostgresStore;
use super::plant_row::PlantRow;
use crate::{PlantFilter, PlantStore, StoreError, shared};
use plant_monitor_core::domain::{Plant, PlantDraft, TraceParent};

impl PostgresStore {
    async fn plant_in(conn: &mut PgConnection, id: &str) -> Result<Option<Plant>, StoreError> {
        let row = sqlx::query("SELECT p AS plant FROM power_plants p WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
        row.map(|row| plant(&row)).transpose()
    }

    /// Explains why a conditional write touched no row.
    async fn missed(&self, id: &str, expected: Option<u64>) -> Result<StoreError, StoreError> {
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM power_plants WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(shared::missed(id, current, expected))
    }
}

#[async_trait]
impl PlantStore for PostgresStore {
    async fn create_plant(
        &self,
        draft: &PlantDraft,
        trace: Option<&TraceParent>,
    ) -> Result<Plant, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let insert = sqlx::query(
            "INSERT INTO power_plants (id, name, region, fuel, capacity_mw, output_mw, status, \
             latitude, longitude, attributes) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb FROM (SELECT 1) AS one \
             WHERE plant_write_trace($11) \
             RETURNING power_plants AS plant",
        )
        .bind(&id);
        let row = bind_draft(insert, draft)
            .bind(trace.map(TraceParent::to_string))
            .fetch_one(&self.pool)
            .await?;
        self.written.announce();
        plant(&row)
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
            "SELECT p AS plant FROM power_plants p \
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
        rows.iter().map(plant).collect()
    }

    async fn replace_plant(
        &self,
        id: &str,
        draft: &PlantDraft,
        expected_version: Option<u64>,
        trace: Option<&TraceParent>,
    ) -> Result<Plant, StoreError> {
        let update = sqlx::query(
            "UPDATE power_plants SET name = $2, region = $3, fuel = $4, capacity_mw = $5, \
             output_mw = $6, status = $7, latitude = $8, longitude = $9, attributes = $10::jsonb \
             WHERE id = $1 AND ($11::bigint IS NULL OR version = $11) \
               AND plant_write_trace($12) \
             RETURNING power_plants AS plant",
        )
        .bind(id);
        let row = bind_draft(update, draft)
            .bind(expected_version.map(|v| v as i64))
            .bind(trace.map(TraceParent::to_string))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => {
                self.written.announce();
                plant(&row)
            }
            None => Err(self.missed(id, expected_version).await?),
        }
    }

    async fn delete_plant(
        &self,
        id: &str,
        expected_version: Option<u64>,
        trace: Option<&TraceParent>,
    ) -> Result<(), StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM power_plants WHERE id = $1 AND ($2::bigint IS NULL OR version = $2) \
               AND plant_write_trace($3)",
        )
        .bind(id)
        .bind(expected_version.map(|v| v as i64))
        .bind(trace.map(TraceParent::to_string))
        .execute(&self.pool)
        .await?;
        if deleted.rows_affected() == 0 {
            return Err(self.missed(id, expected_version).await?);
        }
        self.written.announce();
        Ok(())
    }
}

/// The plant a read or write returned, in its column `plant`.
fn plant(row: &PgRow) -> Result<Plant, StoreError> {
    PlantRow::read(row, "plant", || "plant row".into())?.ok_or_else(|| StoreError::Corrupt {
        what: "plant row".into(),
        source: "the row is null".into(),
    })
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
        .bind(shared::attributes_json(draft))
}
