//! Example filter plugin: keeps only events about plants whose nameplate capacity is at least
//! the manifest's `min_capacity_mw` (a missing key means 0, so everything is kept), judging the
//! plant by its `after` image, or its `before` image when the plant was deleted.

use std::sync::OnceLock;

use exports::plant_monitor::plugin::filter::{ChangeEvent, Guest};
use plant_monitor::plugin::host::{self, Level};

wit_bindgen::generate!({
    world: "filter-plugin",
    path: "../../../wit",
});

/// The config key this plugin reads.
const KEY: &str = "min_capacity_mw";

struct MinCapacityFilter;

impl Guest for MinCapacityFilter {
    fn keep(event: ChangeEvent) -> Result<bool, String> {
        let min = min_capacity_mw()?;
        // Every event carries at least one image, but a missing one must not be mistaken for a
        // small plant: keep it and let later stages see it.
        let Some(plant) = event.after.as_ref().or(event.before.as_ref()) else {
            return Ok(true);
        };
        Ok(plant.capacity_mw >= min)
    }
}

/// The threshold, parsed once: the instance is reused for many events and its manifest cannot
/// change under it (a changed manifest means a new instance). A bad value is cached too, so every
/// event reports the same error instead of only the first.
fn min_capacity_mw() -> Result<f64, String> {
    static MIN: OnceLock<Result<f64, String>> = OnceLock::new();
    MIN.get_or_init(|| {
        // Logs the raw text, not the parsed number: formatting an f64 adds about 20 KB of code.
        let Some(raw) = host::config(KEY) else {
            host::log(Level::Debug, &format!("{KEY} not set: keeping every plant"));
            return Ok(0.0);
        };
        host::log(
            Level::Debug,
            &format!("keeping plants with capacity_mw >= {raw:?}"),
        );
        parse_capacity(&raw).map_err(|why| format!("{KEY}: {why}"))
    })
    .clone()
}

/// Accepts any finite number: "NaN" or "inf" parse, but would silently drop every event.
fn parse_capacity(raw: &str) -> Result<f64, String> {
    let value: f64 = raw
        .trim()
        .parse()
        .map_err(|e| format!("{raw:?} is not a number ({e})"))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("{raw:?} is not a finite number"))
    }
}

export!(MinCapacityFilter);
