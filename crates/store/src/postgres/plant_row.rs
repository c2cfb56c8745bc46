//! A row of `power_plants` as PostgreSQL sends a value of that composite type in binary, turned into a
//! [`Plant`] here. The journal keeps the rows its triggers saw (`before_row`, `after_row`); building
//! their JSON images on the server took 30 µs an entry (two `jsonb_build_object`s, four `to_char`s,
//! the changed fields), over half of the feed's read, and the store parsed those images back anyway.
//! Decoding the row's fields here costs a few µs.

use sqlx::postgres::{PgRow, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Postgres, Row, Type};

use crate::StoreError;
use plant_monitor_core::domain::{Fuel, Plant, Status};

/// The type OIDs of `pg_type` the row's columns have.
const TEXT: u32 = 25;
const INT8: u32 = 20;
const FLOAT8: u32 = 701;
const JSONB: u32 = 3802;
const TIMESTAMPTZ: u32 = 1184;

/// Days from the Unix epoch to PostgreSQL's, 2000-01-01 00:00 UTC.
const POSTGRES_EPOCH_DAYS: i64 = 10_957;
const DAY_MICROS: i64 = 86_400_000_000;

/// One `power_plants` value, e.g. a journal entry's `before_row`; `Option<PlantRow>` reads a NULL.
#[derive(Debug)]
pub struct PlantRow(pub Plant);

impl PlantRow {
    /// The plant in `row`'s `column` (`None` for NULL); `what` names the row where it is corrupt,
    /// made only then (the feed reads two rows per entry).
    pub fn read(
        row: &PgRow,
        column: &str,
        what: impl FnOnce() -> String,
    ) -> Result<Option<Plant>, StoreError> {
        row.try_get::<Option<PlantRow>, _>(column)
            .map(|plant| plant.map(|PlantRow(plant)| plant))
            .map_err(|error| StoreError::Corrupt {
                what: what(),
                source: error.into(),
            })
    }
}

impl Type<Postgres> for PlantRow {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("power_plants")
    }
}

impl<'r> Decode<'r, Postgres> for PlantRow {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(PlantRow(plant(value.as_bytes()?)?))
    }
}

/// A plant from a `power_plants` value in the binary record format.
fn plant(bytes: &[u8]) -> Result<Plant, String> {
    let mut fields = Fields::new(bytes)?;
    let plant = Plant {
        id: fields.text("id")?,
        name: fields.text("name")?,
        region: fields.text("region")?,
        fuel: word("fuel", fields.text("fuel")?, Fuel::parse)?,
        capacity_mw: fields.float("capacity_mw")?,
        output_mw: fields.optional_float("output_mw")?,
        status: word("status", fields.text("status")?, Status::parse)?,
        latitude: fields.optional_float("latitude")?,
        longitude: fields.optional_float("longitude")?,
        attributes: fields.attributes()?,
        version: u64::try_from(fields.integer("version")?)
            .map_err(|_| "version is negative".to_owned())?,
        created_at: fields.time("created_at")?,
        updated_at: fields.time("updated_at")?,
    };
    fields.end()?;
    Ok(plant)
}

fn word<T>(column: &str, text: String, parse: fn(&str) -> Option<T>) -> Result<T, String> {
    parse(&text).ok_or_else(|| format!("{column} {text:?} is not one the registry knows"))
}

/// The binary record format: the field count, then each field's type OID, length (-1 for NULL) and
/// bytes in its type's binary format.
struct Fields<'r> {
    rest: &'r [u8],
}

impl<'r> Fields<'r> {
    /// The fields of a row, which must be the 13 columns of `power_plants` as `Plant` has them: a
    /// migration that adds one must add it here too.
    fn new(bytes: &'r [u8]) -> Result<Self, String> {
        let mut fields = Fields { rest: bytes };
        let count = u32::from_be_bytes(fields.take::<4>()?);
        if count != 13 {
            return Err(format!("a plant row has 13 columns, this one {count}"));
        }
        Ok(fields)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (taken, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or("the row ends early")?;
        self.rest = rest;
        Ok(*taken)
    }

    /// The next field's bytes, `None` for NULL, after checking that its type is `oid`.
    fn next(&mut self, column: &str, oid: u32) -> Result<Option<&'r [u8]>, String> {
        let found = u32::from_be_bytes(self.take::<4>()?);
        if found != oid {
            return Err(format!("{column} has type OID {found}, not {oid}"));
        }
        let length = i32::from_be_bytes(self.take::<4>()?);
        if length == -1 {
            return Ok(None);
        }
        let length =
            usize::try_from(length).map_err(|_| format!("{column} has length {length}"))?;
        if self.rest.len() < length {
            return Err("the row ends early".into());
        }
        let (value, rest) = self.rest.split_at(length);
        self.rest = rest;
        Ok(Some(value))
    }

    fn required(&mut self, column: &str, oid: u32) -> Result<&'r [u8], String> {
        self.next(column, oid)?
            .ok_or_else(|| format!("{column} is null"))
    }

    fn text(&mut self, column: &str) -> Result<String, String> {
        let bytes = self.required(column, TEXT)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{column} is not UTF-8"))
    }

    fn optional_float(&mut self, column: &str) -> Result<Option<f64>, String> {
        self.next(column, FLOAT8)?
            .map(|bytes| {
                <[u8; 8]>::try_from(bytes)
                    .map(f64::from_be_bytes)
                    .map_err(|_| format!("{column} is not 8 bytes"))
            })
            .transpose()
    }

    fn float(&mut self, column: &str) -> Result<f64, String> {
        self.optional_float(column)?
            .ok_or_else(|| format!("{column} is null"))
    }

    fn eight_bytes(&mut self, column: &str, oid: u32) -> Result<i64, String> {
        <[u8; 8]>::try_from(self.required(column, oid)?)
            .map(i64::from_be_bytes)
            .map_err(|_| format!("{column} is not 8 bytes"))
    }

    fn integer(&mut self, column: &str) -> Result<i64, String> {
        self.eight_bytes(column, INT8)
    }

    fn time(&mut self, column: &str) -> Result<String, String> {
        let micros = self.eight_bytes(column, TIMESTAMPTZ)?;
        contract_time(micros).ok_or_else(|| format!("{column} is not a finite time"))
    }

    /// jsonb's binary format is a version byte, 1, then the JSON text.
    fn attributes(&mut self) -> Result<std::collections::BTreeMap<String, String>, String> {
        match self.required("attributes", JSONB)? {
            [1, json @ ..] => serde_json::from_slice(json)
                .map_err(|error| format!("attributes are not an object of strings: {error}")),
            _ => Err("attributes are not in jsonb's format 1".into()),
        }
    }

    fn end(&self) -> Result<(), String> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err("the row has more than its columns".into())
        }
    }
}

/// A `timestamptz` (microseconds since PostgreSQL's epoch) as the contract shows times, as
/// `plant_time` makes them: RFC 3339 in UTC, the milliseconds truncated, years before 1 AD as
/// `to_char`'s YYYY shows them (1 BC is 0001). `None` for infinity.
fn contract_time(micros: i64) -> Option<String> {
    if micros == i64::MAX || micros == i64::MIN {
        return None;
    }
    // Days first: PostgreSQL's latest time in microseconds since the Unix epoch is beyond i64.
    let (days, of_day) = (micros.div_euclid(DAY_MICROS), micros.rem_euclid(DAY_MICROS));
    let (year, month, day) = civil_from_days(days + POSTGRES_EPOCH_DAYS);
    let seconds = of_day / 1_000_000;
    Some(format!(
        "{:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        if year <= 0 { 1 - year } else { year },
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        of_day / 1000 % 1000,
    ))
}

/// The proleptic Gregorian date (astronomical year, month, day) of a day counted from 1970-01-01, by
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `fields`, each a type OID and its bytes (`None` for NULL).
    fn record(fields: &[(u32, Option<Vec<u8>>)]) -> Vec<u8> {
        let mut bytes = (fields.len() as u32).to_be_bytes().to_vec();
        for (oid, value) in fields {
            bytes.extend(oid.to_be_bytes());
            match value {
                Some(value) => {
                    bytes.extend((value.len() as i32).to_be_bytes());
                    bytes.extend(value);
                }
                None => bytes.extend((-1i32).to_be_bytes()),
            }
        }
        bytes
    }

    fn row() -> Vec<(u32, Option<Vec<u8>>)> {
        let text = |s: &str| (TEXT, Some(s.as_bytes().to_vec()));
        let float = |f: f64| (FLOAT8, Some(f.to_be_bytes().to_vec()));
        let time = (TIMESTAMPTZ, Some(0i64.to_be_bytes().to_vec()));
        vec![
            text("p-1"),
            text("Name"),
            text("eu-north"),
            text("wind"),
            float(300.0),
            (FLOAT8, None),
            text("planned"),
            float(-90.0),
            (FLOAT8, None),
            (JSONB, Some(b"\x01{\"k\": \"v\"}".to_vec())),
            (INT8, Some(2i64.to_be_bytes().to_vec())),
            time.clone(),
            time,
        ]
    }

    #[test]
    fn a_plant_row_is_read_field_by_field() {
        let plant = plant(&record(&row())).unwrap();
        assert_eq!(plant.name, "Name");
        assert_eq!(plant.fuel, Fuel::Wind);
        assert_eq!((plant.capacity_mw, plant.output_mw), (300.0, None));
        assert_eq!((plant.latitude, plant.longitude), (Some(-90.0), None));
        assert_eq!(plant.attributes["k"], "v");
        assert_eq!(plant.version, 2);
        assert_eq!(plant.created_at, "2000-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_row_that_is_not_a_plant_row_is_refused_with_the_reason() {
        let mut short = row();
        short.pop();
        assert!(plant(&record(&short)).unwrap_err().contains("13 columns"));

        let whole = record(&row());
        let cut = plant(&whole[..whole.len() - 3]).unwrap_err();
        assert!(cut.contains("ends early"), "{cut}");
        let mut longer = whole.clone();
        longer.push(0);
        assert!(
            plant(&longer)
                .unwrap_err()
                .contains("more than its columns")
        );

        let mut swapped = row();
        swapped.swap(4, 5);
        swapped[4] = (TEXT, Some(b"300".to_vec()));
        assert!(
            plant(&record(&swapped))
                .unwrap_err()
                .contains("capacity_mw has type OID 25")
        );

        let mut unnamed = row();
        unnamed[1].1 = None;
        assert_eq!(plant(&record(&unnamed)).unwrap_err(), "name is null");

        let mut unknown = row();
        unknown[3].1 = Some(b"steam".to_vec());
        assert!(
            plant(&record(&unknown))
                .unwrap_err()
                .contains("fuel \"steam\"")
        );

        let mut endless = row();
        endless[11].1 = Some(i64::MAX.to_be_bytes().to_vec());
        assert_eq!(
            plant(&record(&endless)).unwrap_err(),
            "created_at is not a finite time"
        );
    }

    #[test]
    fn times_are_shown_as_plant_time_shows_them() {
        let at = |unix_micros: i64| {
            contract_time(unix_micros - POSTGRES_EPOCH_DAYS * DAY_MICROS).unwrap()
        };
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(at(951_782_400_999_999), "2000-02-29T00:00:00.999Z");
        assert_eq!(at(253_402_300_799_999_999), "9999-12-31T23:59:59.999Z");
        // 1 BC is the proleptic year 0.
        assert_eq!(at(-62_167_219_200_000_000), "0001-01-01T00:00:00.000Z");
        assert_eq!(at(-62_135_596_800_000_000), "0001-01-01T00:00:00.000Z");
        // PostgreSQL's latest time, beyond i64 in microseconds since the Unix epoch.
        assert_eq!(
            contract_time(9_223_371_331_199_999_999).unwrap(),
            "294276-12-31T23:59:59.999Z"
        );
    }
}
