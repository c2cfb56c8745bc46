//! Plants on SQLite. Reads go to the pool; writes go through the group commit (see `group_commit`),
//! where a write and the read of the row it left run in one savepoint of a shared transaction, in one
//! round trip, so the answer is the committed row, version and timestamps included.

use async_trait::async_trait;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Sqlite, SqliteConnection};

use super::{SqliteStore, plant_columns};
use crate::decode::decode_plant;
use crate::{PlantFilter, PlantStore, StoreError, shared};
use plant_monitor_core::domain::{Plant, PlantDraft, TraceParent};

/// One write of a plant, as it waits in the group commit's queue.
#[derive(Debug)]
pub(super) enum PlantWrite {
    Create {
        id: String,
        draft: PlantDraft,
    },
    Replace {
        id: String,
        draft: PlantDraft,
        expected: Option<u64>,
    },
    Delete {
        id: String,
        expected: Option<u64>,
    },
}

impl PlantWrite {
    /// The number of the first parameter after this write's own, which statements run before it in the
    /// same round trip may use.
    pub(super) fn next_param(&self) -> usize {
        self.statements().2
    }

    /// The write's id, its statements (the write, then the row it left, only if the write touched a
    /// row: SQLite's `changes()` does not count the triggers' own), and the number of the first
    /// parameter after theirs.
    ///
    /// A create returns its row itself: `RETURNING` shows the row before the AFTER triggers ran, and
    /// the insert trigger writes the plant again only when the writer set `version` or a timestamp,
    /// which this insert leaves to the columns' defaults. Reading the image back through the view
    /// cost the writer task, which every write waits for, a lookup by id and a JSON document built
    /// in SQL only to be parsed again here.
    fn statements(&self) -> (&String, &'static str, usize) {
        match self {
            PlantWrite::Create { id, .. } => (
                id,
                "INSERT INTO power_plants (id, name, region, fuel, capacity_mw, output_mw, \
                 status, latitude, longitude, attributes) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 RETURNING id, name, region, fuel, capacity_mw, output_mw, status, latitude, \
                 longitude, attributes, version, created_at, updated_at",
                11,
            ),
            PlantWrite::Replace { id, .. } => (
                id,
                "UPDATE power_plants SET name = ?2, region = ?3, fuel = ?4, capacity_mw = ?5, \
                 output_mw = ?6, status = ?7, latitude = ?8, longitude = ?9, attributes = ?10 \
                 WHERE id = ?1 AND (?11 IS NULL OR version = ?11); \
                 SELECT image FROM power_plant_images WHERE changes() > 0 AND id = ?1",
                12,
            ),
            PlantWrite::Delete { id, .. } => (
                id,
                "DELETE FROM power_plants WHERE id = ?1 AND (?2 IS NULL OR version = ?2); \
                 SELECT NULL AS image WHERE changes() > 0",
                3,
            ),
        }
    }

    /// Runs this write inside the group's transaction, after `before` (statements of the group's own,
    /// whose one parameter, if any, is [`PlantWrite::next_param`], bound to `extra`), in one round
    /// trip (see [`PlantWrite::statements`]). The plant as written, none for a delete.
    pub(super) async fn apply(
        &self,
        conn: &mut SqliteConnection,
        before: &str,
        extra: Option<&str>,
    ) -> Result<Option<Plant>, StoreError> {
        let (id, statements, _) = self.statements();
        let sql = format!("{before}{statements}");
        let query = sqlx::query(&sql).bind(id);
        let query = match self {
            PlantWrite::Create { draft, .. } => bind_draft(query, draft),
            PlantWrite::Replace {
                draft, expected, ..
            } => bind_draft(query, draft).bind(expected.map(|v| v as i64)),
            PlantWrite::Delete { expected, .. } => query.bind(expected.map(|v| v as i64)),
        };
        let written = query.bind(extra).fetch_optional(&mut *conn).await?;
        match (self, written) {
            (PlantWrite::Delete { .. }, Some(_)) => Ok(None),
            (PlantWrite::Create { .. }, Some(row)) => plant_columns::plant(&row).map(Some),
            (_, Some(row)) => decode_plant(&row).map(Some),
            (PlantWrite::Replace { expected, .. } | PlantWrite::Delete { expected, .. }, None) => {
                Err(missed(conn, id, *expected).await?)
            }
            (PlantWrite::Create { .. }, None) => Err(StoreError::NotFound { id: id.clone() }),
        }
    }
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
    let current: Option<i64> = sqlx::query_scalar("SELECT version FROM power_plants WHERE id = ?1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(shared::missed(id, current, expected))
}

#[async_trait]
impl PlantStore for SqliteStore {
    async fn create_plant(
        &self,
        draft: &PlantDraft,
        trace: Option<&TraceParent>,
    ) -> Result<Plant, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let write = PlantWrite::Create {
            id: id.clone(),
            draft: draft.clone(),
        };
        let written = self.writer.write(write, trace).await?;
        written.ok_or(StoreError::NotFound { id })
    }

    async fn get_plant(&self, id: &str) -> Result<Option<Plant>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        plant_in(&mut conn, id).await
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
        trace: Option<&TraceParent>,
    ) -> Result<Plant, StoreError> {
        let write = PlantWrite::Replace {
            id: id.to_owned(),
            draft: draft.clone(),
            expected: expected_version,
        };
        let written = self.writer.write(write, trace).await?;
        written.ok_or_else(|| StoreError::NotFound { id: id.to_owned() })
    }

    async fn delete_plant(
        &self,
        id: &str,
        expected_version: Option<u64>,
        trace: Option<&TraceParent>,
    ) -> Result<(), StoreError> {
        let write = PlantWrite::Delete {
            id: id.to_owned(),
            expected: expected_version,
        };
        self.writer.write(write, trace).await?;
        Ok(())
    }
}

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
        .bind(shared::attributes_json(draft))
}
