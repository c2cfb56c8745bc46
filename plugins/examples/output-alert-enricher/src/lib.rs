//! Example enrich plugin: labels an event `alert=over-capacity` when the plant's latest output
//! exceeds its nameplate capacity, or `alert=out-of-range` when the output falls outside the
//! manifest's optional `min_output_mw`..`max_output_mw` bounds. Events without an `after` image or
//! without an output reading pass through untouched.

use std::sync::OnceLock;

use exports::plant_monitor::plugin::enrich::{ChangeEvent, Guest};
use plant_monitor::plugin::host::{self, Level};

wit_bindgen::generate!({
    world: "enrich-plugin",
    path: "../../../wit",
});

/// The label key this plugin owns; routers (such as `fuel-router`) look for it.
const ALERT: &str = "alert";

struct OutputAlertEnricher;

impl Guest for OutputAlertEnricher {
    fn enrich(mut event: ChangeEvent) -> Result<ChangeEvent, String> {
        let bounds = Bounds::get()?;
        let alert = event
            .after
            .as_ref()
            .and_then(|plant| Some((plant.output_mw?, plant.capacity_mw)))
            .and_then(|(output, capacity)| bounds.alert(output, capacity));
        if let Some(alert) = alert {
            set_label(&mut event.labels, ALERT, alert);
        }
        Ok(event)
    }
}

/// The optional output bounds from the manifest, inclusive at both ends.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    min: Option<f64>,
    max: Option<f64>,
}

impl Bounds {
    /// Parses the bounds once per instance: the manifest cannot change under a live instance, and a
    /// bad value is cached as well so every event reports it, not just the first.
    fn get() -> Result<Self, String> {
        static BOUNDS: OnceLock<Result<Bounds, String>> = OnceLock::new();
        BOUNDS
            .get_or_init(|| {
                Ok(Bounds {
                    min: read_number("min_output_mw")?,
                    max: read_number("max_output_mw")?,
                })
            })
            .clone()
    }

    /// Over capacity wins over out of range: it is the more specific, more urgent fact.
    fn alert(self, output: f64, capacity: f64) -> Option<&'static str> {
        if output > capacity {
            Some("over-capacity")
        } else if self.min.is_some_and(|min| output < min)
            || self.max.is_some_and(|max| output > max)
        {
            Some("out-of-range")
        } else {
            None
        }
    }
}

/// Reads an optional finite number from the manifest's `[config]` table. Logs the raw text rather
/// than the parsed number because formatting an f64 would add about 20 KB of code.
fn read_number(key: &str) -> Result<Option<f64>, String> {
    let Some(raw) = host::config(key) else {
        host::log(Level::Debug, &format!("{key} not set: no bound"));
        return Ok(None);
    };
    host::log(Level::Debug, &format!("{key} = {raw:?}"));
    match raw.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(Some(value)),
        Ok(_) => Err(format!("{key}: {raw:?} is not a finite number")),
        Err(e) => Err(format!("{key}: {raw:?} is not a number ({e})")),
    }
}

/// Replaces the value of an existing label rather than adding a second one: sinks receive labels
/// as a JSON object, where a duplicate key would silently keep only one of the values.
fn set_label(labels: &mut Vec<(String, String)>, key: &str, value: &str) {
    match labels.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => value.clone_into(v),
        None => labels.push((key.to_owned(), value.to_owned())),
    }
}

export!(OutputAlertEnricher);
