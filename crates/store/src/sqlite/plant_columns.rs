//! Plants from the plain columns of a SQLite row: `power_plants` itself (a create's `RETURNING`), or a
//! journal entry's images as the triggers store them (`before_name`, `after_fuel`, …; migration 0012).
//! The view `plant_change_images` builds the same images in SQL as JSON documents the store then
//! parsed again: about 10 µs an entry on the connection's thread, where selecting the columns costs
//! under 1 µs. Decoding the columns here is what PostgreSQL's journal does with its rows
//! (`postgres::plant_row`).

use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};

use crate::StoreError;
use plant_monitor_core::domain::{Fuel, Plant, PlantDraft, Status};

/// The names of the columns holding a plant's own fields in one place of a row.
pub(super) struct Columns {
    name: &'static str,
    fuel: &'static str,
    capacity_mw: &'static str,
    output_mw: &'static str,
    status: &'static str,
    latitude: &'static str,
    longitude: &'static str,
    attributes: &'static str,
}

/// `power_plants`' own columns.
pub(super) const PLANT: Columns = Columns {
    name: "name",
    fuel: "fuel",
    capacity_mw: "capacity_mw",
    output_mw: "output_mw",
    status: "status",
    latitude: "latitude",
    longitude: "longitude",
    attributes: "attributes",
};

/// A journal entry's image of the plant before the change.
pub(super) const BEFORE: Columns = Columns {
    name: "before_name",
    fuel: "before_fuel",
    capacity_mw: "before_capacity_mw",
    output_mw: "before_output_mw",
    status: "before_status",
    latitude: "before_latitude",
    longitude: "before_longitude",
    attributes: "before_attributes",
};

/// A journal entry's image of the plant after the change.
pub(super) const AFTER: Columns = Columns {
    name: "after_name",
    fuel: "after_fuel",
    capacity_mw: "after_capacity_mw",
    output_mw: "after_output_mw",
    status: "after_status",
    latitude: "after_latitude",
    longitude: "after_longitude",
    attributes: "after_attributes",
};

impl Columns {
    /// The plant's own fields in these columns of `row`, placed in `region`; none where the name is
    /// NULL (a journal entry without this image). `what` names the row where it is corrupt.
    pub(super) fn draft(
        &self,
        row: &SqliteRow,
        region: impl FnOnce() -> Result<String, StoreError>,
        what: impl Fn() -> String,
    ) -> Result<Option<PlantDraft>, StoreError> {
        let Some(name) = get::<Option<String>>(row, self.name, &what)? else {
            return Ok(None);
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            what: what(),
            source: reason.into(),
        };
        let fuel: String = get(row, self.fuel, &what)?;
        let status: String = get(row, self.status, &what)?;
        let attributes: String = get(row, self.attributes, &what)?;
        Ok(Some(PlantDraft {
            name,
            region: region()?,
            fuel: Fuel::parse(&fuel).ok_or_else(|| corrupt(format!("fuel {fuel:?}")))?,
            capacity_mw: get(row, self.capacity_mw, &what)?,
            output_mw: get(row, self.output_mw, &what)?,
            status: Status::parse(&status).ok_or_else(|| corrupt(format!("status {status:?}")))?,
            latitude: get(row, self.latitude, &what)?,
            longitude: get(row, self.longitude, &what)?,
            attributes: serde_json::from_str(&attributes)
                .map_err(|error| corrupt(format!("attributes: {error}")))?,
        }))
    }
}

/// A row of `power_plants` with every column.
pub(super) fn plant(row: &SqliteRow) -> Result<Plant, StoreError> {
    let id: String = get(row, "id", &|| "a plant".to_owned())?;
    let what = || format!("plant {id}");
    let draft = PLANT
        .draft(row, || get(row, "region", &what), what)?
        .ok_or_else(|| StoreError::Corrupt {
            what: what(),
            source: "its name is NULL".into(),
        })?;
    let version = version(row, "version", &what)?;
    let created_at = get(row, "created_at", &what)?;
    let updated_at = get(row, "updated_at", &what)?;
    Ok(draft.into_plant(id, version, created_at, updated_at))
}

/// A version in `column`, which is never negative.
pub(super) fn version(
    row: &SqliteRow,
    column: &str,
    what: &impl Fn() -> String,
) -> Result<u64, StoreError> {
    u64::try_from(get::<i64>(row, column, what)?).map_err(|_| StoreError::Corrupt {
        what: what(),
        source: format!("{column} is negative").into(),
    })
}

/// `column` of `row`, or why the row is corrupt.
pub(super) fn get<'r, T>(
    row: &'r SqliteRow,
    column: &str,
    what: &impl Fn() -> String,
) -> Result<T, StoreError>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    row.try_get(column).map_err(|error| StoreError::Corrupt {
        what: what(),
        source: error.into(),
    })
}
