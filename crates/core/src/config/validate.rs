//! The checks a configuration must pass beyond its types: ranges, names, and references between
//! sections (a default sink must exist). Whatever a type can hold (counts of at least 1, URLs, header
//! names) is checked as the file is parsed, with its line and column.

use std::time::Duration;

use super::{Config, ConfigError, Source};
use crate::domain::is_region;

/// Renewals run every third of the lease and a holder steps down after half of it without one; below
/// this, ordinary database latency would make leaders step down.
const MIN_LEASE_TTL: Duration = Duration::from_secs(1);

impl Config {
    /// Checks what the types alone cannot; the error names the source and the key.
    pub fn validate(&self, source: &Source) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            source_name: source.to_string(),
            key: key.to_owned(),
            message,
        };
        if self.feed.regions.is_empty() {
            return Err(invalid(
                "feed.regions",
                "must name at least one region, or \"*\" for all".into(),
            ));
        }
        if let Some(region) =
            (self.feed.regions.iter()).find(|region| *region != "*" && !is_region(region))
        {
            return Err(invalid(
                "feed.regions",
                format!("{region:?} is not a region name (a-z, 0-9 and -, up to 63) or \"*\""),
            ));
        }
        if self.feed.lease_ttl < MIN_LEASE_TTL {
            return Err(invalid(
                "feed.lease_ttl",
                format!("must be at least {MIN_LEASE_TTL:?}"),
            ));
        }
        if self.plugins.call_timeout.is_zero() {
            return Err(invalid(
                "plugins.call_timeout",
                "must be more than 0".into(),
            ));
        }
        if self.plugins.memory_limit < 1 << 20 {
            return Err(invalid(
                "plugins.memory_limit",
                "must be at least 1MiB".into(),
            ));
        }
        for (name, sink) in &self.sinks {
            let key = |field: &str| format!("sinks.{name}.{field}");
            if !is_sink_name(name) {
                return Err(invalid(
                    &format!("sinks.{name}"),
                    "a sink name is 1 to 64 of a-z, 0-9, - and _".into(),
                ));
            }
            if sink.backoff_initial > sink.backoff_max {
                return Err(invalid(
                    &key("backoff_initial"),
                    "must not exceed backoff_max".into(),
                ));
            }
        }
        if let Some(name) = (self.routing.default_sinks.iter())
            .find(|name| *name != "*" && !self.sinks.contains_key(*name))
        {
            let configured: Vec<&str> = self.sinks.keys().map(String::as_str).collect();
            return Err(invalid(
                "routing.default_sinks",
                format!(
                    "{name:?} is not a configured sink (configured: {})",
                    if configured.is_empty() {
                        "none".into()
                    } else {
                        configured.join(", ")
                    }
                ),
            ));
        }
        Ok(())
    }
}

/// Sink names appear in URLs, metrics and routing answers, so they are kept plain.
fn is_sink_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
