//! Turning a JSON body into a [`PlantDraft`], checking every rule of the contract and reporting every
//! broken one at once, each under the name of its field, so a client fixes a request in one round trip.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::merge_patch;
use super::problem::FieldError;
use crate::domain::{Fuel, PlantDraft, Status, is_region};

/// Fields the server owns: accepted in a body (so a fetched plant can be sent back) and ignored.
const READ_ONLY: &[&str] = &["id", "version", "created_at", "updated_at"];

const WRITABLE: &[&str] = &[
    "name",
    "region",
    "fuel",
    "capacity_mw",
    "output_mw",
    "status",
    "latitude",
    "longitude",
    "attributes",
];

pub const NAME_MAX_CHARS: usize = 200;

/// A plant's attributes are bounded, since every change carries two images of them through the
/// journal, the plugins and the sinks: at most this many,
pub const ATTRIBUTES_MAX: usize = 64;
/// each key of 1 to this many bytes,
pub const ATTRIBUTE_KEY_MAX_BYTES: usize = 64;
/// and each value of at most this many.
pub const ATTRIBUTE_VALUE_MAX_BYTES: usize = 1024;
pub const REGION_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,62}$";

/// Validates a whole plant (POST, PUT, or the result of a PATCH).
pub fn draft(body: &Value) -> Result<PlantDraft, Vec<FieldError>> {
    let Some(object) = body.as_object() else {
        return Err(vec![FieldError::new("", "the body must be a JSON object")]);
    };
    let mut errors: Vec<FieldError> = object
        .keys()
        .filter(|key| !WRITABLE.contains(&key.as_str()) && !READ_ONLY.contains(&key.as_str()))
        .map(|key| FieldError::new(key.as_str(), "unknown field"))
        .collect();
    let mut fields = Fields {
        object,
        errors: &mut errors,
    };
    let name = fields.required("name", |v| {
        v.as_str()
            .filter(|s| (1..=NAME_MAX_CHARS).contains(&s.chars().count()) && !s.contains('\0'))
            .map(str::to_owned)
            .ok_or_else(|| {
                format!("must be a string of 1 to {NAME_MAX_CHARS} characters, none of them U+0000")
            })
    });
    let region = fields.required("region", |v| {
        v.as_str()
            .filter(|s| is_region(s))
            .map(str::to_owned)
            .ok_or_else(|| format!("must be a string matching {REGION_PATTERN}"))
    });
    let fuel = fields.required("fuel", |v| word(v, Fuel::parse, Fuel::ALL));
    let capacity_mw = fields.required("capacity_mw", |v| {
        v.as_f64()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| "must be a finite number ≥ 0".to_owned())
    });
    let output_mw = fields.optional("output_mw", |v| {
        v.as_f64()
            .filter(|n| n.is_finite())
            .ok_or_else(|| "must be a finite number or null".to_owned())
    });
    let status = fields.optional("status", |v| word(v, Status::parse, Status::ALL));
    let latitude = fields.optional("latitude", |v| degrees(v, 90.0));
    let longitude = fields.optional("longitude", |v| degrees(v, 180.0));
    let attributes = fields.optional("attributes", attributes);

    match (
        name,
        region,
        fuel,
        capacity_mw,
        output_mw,
        status,
        latitude,
        longitude,
        attributes,
    ) {
        (
            Some(name),
            Some(region),
            Some(fuel),
            Some(capacity_mw),
            Some(output_mw),
            Some(status),
            Some(latitude),
            Some(longitude),
            Some(attributes),
        ) if errors.is_empty() => Ok(PlantDraft {
            name,
            region,
            fuel,
            capacity_mw,
            output_mw,
            status: status.unwrap_or_default(),
            latitude,
            longitude,
            attributes: attributes.unwrap_or_default(),
        }),
        _ => Err(errors),
    }
}

/// Validates a merge patch (RFC 7396) on its own, before any plant is read, so a patch that could never
/// apply is a 422 whatever state the plant is in: applied to a minimal valid plant, it may break only
/// the fields it names, and [`draft`] names them with the same rules as for any plant. (The patched
/// plant is validated whole as well.)
pub fn patch(body: &Value) -> Result<(), Vec<FieldError>> {
    let mut plant =
        serde_json::json!({"name": "patched", "region": "a", "fuel": "hydro", "capacity_mw": 0});
    merge_patch::apply(&mut plant, body);
    draft(&plant).map(drop)
}

/// Reads fields of one object, recording what is wrong with each.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    errors: &'a mut Vec<FieldError>,
}

impl Fields<'_> {
    /// A field that must be present and not null.
    fn required<T>(
        &mut self,
        name: &str,
        check: impl Fn(&Value) -> Result<T, String>,
    ) -> Option<T> {
        match self.object.get(name).filter(|v| !v.is_null()) {
            None => {
                self.errors.push(FieldError::new(name, "is required"));
                None
            }
            Some(value) => self.record(name, check(value)),
        }
    }

    /// A field that may be absent or null; `Some(None)` then.
    fn optional<T>(
        &mut self,
        name: &str,
        check: impl Fn(&Value) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match self.object.get(name).filter(|v| !v.is_null()) {
            None => Some(None),
            Some(value) => self.record(name, check(value)).map(Some),
        }
    }

    fn record<T>(&mut self, name: &str, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|message| self.errors.push(FieldError::new(name, message)))
            .ok()
    }
}

fn word<T>(value: &Value, parse: fn(&str) -> Option<T>, all: &[&str]) -> Result<T, String> {
    value
        .as_str()
        .and_then(parse)
        .ok_or_else(|| format!("must be one of {}", all.join(", ")))
}

fn degrees(value: &Value, limit: f64) -> Result<f64, String> {
    value
        .as_f64()
        .filter(|n| (-limit..=limit).contains(n))
        .ok_or_else(|| format!("must be a number from -{limit} to {limit}, or null"))
}

fn attributes(value: &Value) -> Result<BTreeMap<String, String>, String> {
    let object = value
        .as_object()
        .ok_or("must be an object whose values are strings")?;
    if object.len() > ATTRIBUTES_MAX {
        return Err(format!(
            "has {} entries; at most {ATTRIBUTES_MAX} are allowed",
            object.len()
        ));
    }
    if let Some(key) =
        (object.keys()).find(|key| key.is_empty() || key.len() > ATTRIBUTE_KEY_MAX_BYTES)
    {
        return Err(format!(
            "the key {:?} must be 1 to {ATTRIBUTE_KEY_MAX_BYTES} bytes",
            key.chars().take(20).collect::<String>()
        ));
    }
    if let Some((key, _)) = (object.iter()).find(|(_, value)| {
        value
            .as_str()
            .is_some_and(|v| v.len() > ATTRIBUTE_VALUE_MAX_BYTES)
    }) {
        return Err(format!(
            "the value of {key:?} is longer than {ATTRIBUTE_VALUE_MAX_BYTES} bytes"
        ));
    }
    // PostgreSQL text cannot hold U+0000, so neither backend takes it.
    if let Some((key, _)) = (object.iter())
        .find(|(key, value)| key.contains('\0') || value.as_str().is_some_and(|v| v.contains('\0')))
    {
        return Err(format!(
            "the entry {:?} holds U+0000, which no key or value may",
            key.chars().take(20).collect::<String>()
        ));
    }
    object
        .iter()
        .map(|(key, value)| match value.as_str() {
            Some(text) => Ok((key.clone(), text.to_owned())),
            None => Err(format!("the value of {key:?} must be a string")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn valid() -> Value {
        json!({"name": "Grand Coulee", "region": "us-west", "fuel": "hydro", "capacity_mw": 6809.0})
    }

    fn fields_in_error(body: Value) -> Vec<String> {
        draft(&body)
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_minimal_plant_gets_the_documented_defaults() {
        let plant = draft(&valid()).expect("valid");
        assert_eq!(plant.status, Status::Planned);
        assert_eq!(plant.output_mw, None);
        assert!(plant.attributes.is_empty());
    }

    #[test]
    fn every_broken_rule_is_reported_at_once_under_its_field() {
        let body = json!({"name": "", "region": "US", "fuel": "peat", "capacity_mw": -1,
                          "latitude": 91, "longitude": "east", "attributes": {"a": 1}, "colour": "red"});
        let mut fields = fields_in_error(body);
        fields.sort();
        assert_eq!(
            fields,
            [
                "attributes",
                "capacity_mw",
                "colour",
                "fuel",
                "latitude",
                "longitude",
                "name",
                "region"
            ]
        );
    }

    #[test]
    fn region_boundaries_follow_the_pattern() {
        assert!(is_region("a"));
        assert!(is_region(&"a".repeat(63)));
        assert!(is_region("0-"));
        assert!(!is_region(&"a".repeat(64)));
        assert!(!is_region("-a"));
        assert!(!is_region(""));
        assert!(!is_region("a_b"));
        assert!(!is_region("ä"));
    }

    #[test]
    fn read_only_fields_are_ignored() {
        let mut body = valid();
        body["id"] = json!("x");
        body["version"] = json!(99);
        assert!(draft(&body).is_ok());
    }

    #[test]
    fn a_patch_is_checked_by_the_fields_it_names_and_may_remove_only_optional_ones() {
        let fields = |body: Value| -> Vec<String> {
            patch(&body)
                .expect_err("invalid")
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert!(patch(&json!({})).is_ok());
        assert!(
            patch(&json!({"output_mw": null, "latitude": null,
                          "attributes": {"owner": null, "operator": "BPA"}}))
            .is_ok()
        );
        assert!(patch(&json!({"created_at": "ignored", "name": "renamed"})).is_ok());
        assert_eq!(
            fields(json!({"colour": "red", "output_mw": {}, "name": null})),
            ["colour", "name", "output_mw"]
        );
        assert_eq!(fields(json!({"attributes": {"owner": 1}})), ["attributes"]);
        assert_eq!(
            fields(json!({"attributes": null, "capacity_mw": -1})),
            ["capacity_mw"]
        );
        assert_eq!(fields(json!("a string")), [""]);
    }

    #[test]
    fn a_body_that_is_not_an_object_is_one_error() {
        assert_eq!(fields_in_error(json!([1, 2])), [""]);
    }
}
