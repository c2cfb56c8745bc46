//! Durations in configuration files: a number and a unit (`250ms`, `10s`, `5m`, `2h`, `7d`, or combined as
//! `1m30s`), parsed by `humantime`, with an error that says what would have been accepted.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error};

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|error| {
        D::Error::custom(format!(
            "{text:?} is not a duration ({error}); write a number and a unit: ms, s, m, h or d, e.g. \"250ms\""
        ))
    })
}
