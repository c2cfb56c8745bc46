//! The checks a configuration must pass beyond its types: ranges, names, and references between
//! sections (a default sink must exist). Whatever a type can hold (counts of at least 1, URLs, header
//! names) is checked as the file is parsed, with its line and column.

use std::time::Duration;

use super::{Config, ConfigError, Source};
use crate::domain::is_region;

/// Renewals run every third of the lease and a holder steps down after half of it without one; below
/// this, ordinary database latency would make leaders step down.
const MIN_LEASE_TTL: Duration = Duration::from_secs(1);

/// A health probe more often than this would flood the receiver it watches.
const MIN_PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// The longest retry delay: a delivery waiting longer holds every later event of its plant as long.
const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// A quarantine shorter than this would let a failing plugin be called about as often as without one.
const MIN_QUARANTINE: Duration = Duration::from_millis(100);

/// Requests in flight per sink: each is a connection kept to the receiver.
const MAX_IN_FLIGHT: u32 = 256;

/// Events per request: a sink worker takes at most 1,024 deliveries per round.
const MAX_BATCH: u32 = 1000;

/// Per plugin component, the most core instances, memories and tables `[plugins]` may allow: the
/// sandbox reserves room for 200 components at these sizes, memories and tables up front (address
/// space, not resident memory).
const MAX_CORE_INSTANCES: u32 = 256;
const MAX_MEMORIES: u32 = 16;
const MAX_TABLES: u32 = 64;

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
        for (key, value) in [
            (
                "server.header_read_timeout",
                self.server.header_read_timeout,
            ),
            ("server.request_timeout", self.server.request_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "must be more than 0".into()));
            }
        }
        if self.feed.poll_interval.is_zero() {
            return Err(invalid("feed.poll_interval", "must be more than 0".into()));
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
        if !(0.0..1.0).contains(&self.plugins.rollback_share) {
            return Err(invalid(
                "plugins.rollback_share",
                "must be at least 0 and less than 1".into(),
            ));
        }
        if self.plugins.quarantine_failures > 0
            && !(MIN_QUARANTINE..=MAX_BACKOFF).contains(&self.plugins.quarantine_backoff)
        {
            return Err(invalid(
                "plugins.quarantine_backoff",
                format!("must be from {MIN_QUARANTINE:?} to {MAX_BACKOFF:?}"),
            ));
        }
        for (key, value, max) in [
            (
                "plugins.max_core_instances",
                self.plugins.max_core_instances,
                MAX_CORE_INSTANCES,
            ),
            (
                "plugins.max_memories",
                self.plugins.max_memories,
                MAX_MEMORIES,
            ),
            ("plugins.max_tables", self.plugins.max_tables, MAX_TABLES),
        ] {
            if value.get() > max {
                return Err(invalid(key, format!("must be at most {max}")));
            }
        }
        for (name, sink) in &self.sinks {
            let key = |field: &str| format!("sinks.{name}.{field}");
            if !is_sink_name(name) {
                return Err(invalid(
                    &format!("sinks.{name}"),
                    "a sink name is 1 to 64 of a-z, 0-9, - and _".into(),
                ));
            }
            if sink.timeout.is_zero() {
                return Err(invalid(&key("timeout"), "must be more than 0".into()));
            }
            if sink.max_in_flight.get() > MAX_IN_FLIGHT {
                return Err(invalid(
                    &key("max_in_flight"),
                    format!("must be at most {MAX_IN_FLIGHT}"),
                ));
            }
            if sink.batch_max.get() > MAX_BATCH {
                return Err(invalid(
                    &key("batch_max"),
                    format!("must be at most {MAX_BATCH}"),
                ));
            }
            if sink.backoff_max > MAX_BACKOFF {
                return Err(invalid(
                    &key("backoff_max"),
                    "must be at most 1 day (24h)".into(),
                ));
            }
            if sink.probe_interval < MIN_PROBE_INTERVAL {
                return Err(invalid(
                    &key("probe_interval"),
                    format!("must be at least {MIN_PROBE_INTERVAL:?}"),
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
