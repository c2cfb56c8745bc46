//! Example filter plugin: keeps events about plants whose name matches the manifest's `pattern`
//! (a `regex` crate pattern, searched anywhere in the name; anchor it with `^…$` for a full match).
//! Without a pattern every event is kept; an invalid pattern fails every event with the regex
//! error. The plant is judged by its `after` image, or its `before` image when it was deleted.

use std::sync::OnceLock;

use exports::plant_monitor::plugin::filter::{ChangeEvent, Guest};
use plant_monitor::plugin::host::{self, Level};
use regex::Regex;

wit_bindgen::generate!({
    world: "filter-plugin",
    path: "../../../wit",
});

struct RegexNameFilter;

impl Guest for RegexNameFilter {
    fn keep(event: ChangeEvent) -> Result<bool, String> {
        let Some(pattern) = pattern()? else {
            return Ok(true);
        };
        let Some(plant) = event.after.as_ref().or(event.before.as_ref()) else {
            return Ok(true);
        };
        Ok(pattern.is_match(&plant.name))
    }
}

/// The compiled pattern, or none when unconfigured. Compiling costs far more than matching, and the
/// host reuses an instance for many events, so it is compiled once per instance; a compile error is
/// cached too, so every event reports it rather than only the first.
fn pattern() -> Result<Option<&'static Regex>, String> {
    static PATTERN: OnceLock<Result<Option<Regex>, String>> = OnceLock::new();
    let compiled = PATTERN.get_or_init(|| {
        let Some(raw) = host::config("pattern") else {
            host::log(Level::Debug, "no pattern configured: keeping every event");
            return Ok(None);
        };
        host::log(
            Level::Debug,
            &format!("keeping plants whose name matches {raw:?}"),
        );
        Regex::new(&raw)
            .map(Some)
            .map_err(|e| format!("pattern: {e}"))
    });
    match compiled {
        Ok(regex) => Ok(regex.as_ref()),
        Err(e) => Err(e.clone()),
    }
}

export!(RegexNameFilter);
