//! The checks a configuration must pass beyond its types: ranges, URLs, names, and references between
//! sections (a default sink must exist).

use std::time::Duration;

use super::{Config, ConfigError, Source};

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
        let url = &self.database.url;
        if !url.starts_with("sqlite:") && !crate::store::is_postgres(url) {
            return Err(invalid(
                "database.url",
                format!(
                    "unsupported database URL {url:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE"
                ),
            ));
        }
        let at_least_one = [
            ("database.max_connections", self.database.max_connections),
            ("feed.batch_size", self.feed.batch_size),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        if self.feed.regions.is_empty() {
            return Err(invalid(
                "feed.regions",
                "must name at least one region, or \"*\" for all".into(),
            ));
        }
        if let Some(region) = (self.feed.regions.iter())
            .find(|region| *region != "*" && !crate::store::is_region(region))
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
            match reqwest::Url::parse(&sink.url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                Ok(_) => {
                    return Err(invalid(
                        &key("url"),
                        "must be an http:// or https:// URL".into(),
                    ));
                }
                Err(error) => {
                    return Err(invalid(
                        &key("url"),
                        format!("{:?} is not a URL: {error}", sink.url),
                    ));
                }
            }
            for (field, value) in [
                ("max_in_flight", sink.max_in_flight),
                ("batch_max", sink.batch_max),
                ("max_attempts", sink.max_attempts),
            ] {
                if value == 0 {
                    return Err(invalid(&key(field), "must be at least 1".into()));
                }
            }
            if sink.backoff_initial > sink.backoff_max {
                return Err(invalid(
                    &key("backoff_initial"),
                    "must not exceed backoff_max".into(),
                ));
            }
            if let Some(header) = sink
                .headers
                .keys()
                .find(|h| reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err())
            {
                return Err(invalid(
                    &key("headers"),
                    format!("{header:?} is not a header name"),
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
