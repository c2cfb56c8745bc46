//! What a plugin may hand back to the host, so that a hostile or broken guest cannot make the feed hold
//! gigabytes: an enricher's event (its size, its labels), a router's list of sinks, an error reason and
//! what it logs. An answer over a cap is the plugin's error, named after the key that sets the cap; a
//! reason or a log message that is too long is cut, and log messages past the rate are dropped and
//! counted.

use std::time::{Duration, Instant};

use plant_monitor_core::config::PluginsConfig;
use plant_monitor_core::domain::{Event, Plant};

/// The caps of `[plugins]`, in bytes and counts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    event_size: usize,
    labels: usize,
    label_size: usize,
    route_sinks: usize,
    reason_size: usize,
    log_size: usize,
    logs_per_second: u32,
}

impl Limits {
    pub fn new(config: &PluginsConfig) -> Limits {
        let bytes = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        Limits {
            event_size: bytes(config.max_event_size),
            labels: config.max_labels as usize,
            label_size: bytes(config.max_label_size),
            route_sinks: config.max_route_sinks as usize,
            reason_size: bytes(config.max_reason_size),
            log_size: bytes(config.max_log_size),
            logs_per_second: config.max_logs_per_second,
        }
    }

    /// What wasmtime copies between guest and host in one call, an answer included: room for the
    /// largest event or log message allowed, and never less than WASI's ordinary calls need. A guest
    /// that hands over more traps before the host holds it.
    pub fn hostcall_fuel(&self) -> usize {
        (self.event_size.max(self.log_size))
            .saturating_mul(4)
            .max(1 << 20)
    }

    /// Why an enricher's answer is over a cap, if it is.
    pub fn check_event(&self, event: &Event) -> Result<(), String> {
        if event.labels.len() > self.labels {
            return Err(format!(
                "returned {} labels, more than plugins.max_labels = {}",
                event.labels.len(),
                self.labels
            ));
        }
        if let Some((key, value)) =
            (event.labels.iter()).find(|(key, value)| key.len() + value.len() > self.label_size)
        {
            return Err(format!(
                "returned a label of {} bytes ({:?}…), more than plugins.max_label_size = {}",
                key.len() + value.len(),
                key.chars().take(32).collect::<String>(),
                self.label_size
            ));
        }
        let size = event_size(event);
        if size > self.event_size {
            return Err(format!(
                "returned an event of {size} bytes, more than plugins.max_event_size = {}",
                self.event_size
            ));
        }
        Ok(())
    }

    /// Why a router's answer is over a cap, if it is.
    pub fn check_route(&self, sinks: &[String]) -> Result<(), String> {
        if sinks.len() > self.route_sinks {
            return Err(format!(
                "returned {} sink names, more than plugins.max_route_sinks = {}",
                sinks.len(),
                self.route_sinks
            ));
        }
        Ok(())
    }

    /// An error reason as kept: cut at `max_reason_size`.
    pub fn cut_reason(&self, reason: String) -> String {
        cut(reason, self.reason_size, "plugins.max_reason_size")
    }

    /// A log message as kept: cut at `max_log_size`.
    pub fn cut_log(&self, message: String) -> String {
        cut(message, self.log_size, "plugins.max_log_size")
    }

    pub fn logs_per_second(&self) -> u32 {
        self.logs_per_second
    }
}

/// `text` cut to at most `max` bytes on a character boundary, saying so and why.
fn cut(mut text: String, max: usize, key: &str) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let dropped = text.len() - end;
    text.truncate(end);
    text.push_str(&format!(" … ({dropped} more bytes cut at {key})"));
    text
}

/// The bytes of text an event holds, which is what its size is made of.
fn event_size(event: &Event) -> usize {
    let plant = |plant: &Option<Plant>| {
        plant.as_ref().map_or(0, |p| {
            p.id.len()
                + p.name.len()
                + p.region.len()
                + p.created_at.len()
                + p.updated_at.len()
                + (p.attributes.iter())
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()
        })
    };
    event.plant_id.len()
        + event.region.len()
        + event.committed_at.len()
        + event.changed_fields.iter().map(String::len).sum::<usize>()
        + (event.labels.iter())
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
        + plant(&event.before)
        + plant(&event.after)
}

/// The log messages an instance may still write this second, and how many it was refused.
#[derive(Debug)]
pub struct LogBudget {
    window: Instant,
    written: u32,
    dropped: u64,
}

/// What the budget says to one message.
#[derive(Debug, PartialEq, Eq)]
pub struct Admission {
    pub write: bool,
    /// Messages dropped in the second that just ended, to be reported once.
    pub dropped_before: u64,
}

impl LogBudget {
    pub fn new(now: Instant) -> LogBudget {
        LogBudget {
            window: now,
            written: 0,
            dropped: 0,
        }
    }

    pub fn admit(&mut self, now: Instant, per_second: u32) -> Admission {
        let mut dropped_before = 0;
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            dropped_before = std::mem::take(&mut self.dropped);
            self.window = now;
            self.written = 0;
        }
        let write = self.written < per_second;
        if write {
            self.written += 1;
        } else {
            self.dropped += 1;
        }
        Admission {
            write,
            dropped_before,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_is_cut_on_a_character_boundary_and_says_so() {
        let cut = cut("é".repeat(10), 5, "plugins.max_log_size");
        assert!(cut.starts_with("éé …"), "{cut}");
        assert!(
            cut.contains("16 more bytes cut at plugins.max_log_size"),
            "{cut}"
        );
        assert_eq!(super::cut("short".into(), 5, "k"), "short");
    }

    #[test]
    fn log_messages_past_the_rate_are_dropped_and_reported_the_next_second() {
        let start = Instant::now();
        let mut budget = LogBudget::new(start);
        let written = (0..250).filter(|_| budget.admit(start, 100).write).count();
        assert_eq!(written, 100);
        let next = budget.admit(start + Duration::from_millis(1001), 100);
        assert_eq!(
            next,
            Admission {
                write: true,
                dropped_before: 150
            }
        );
    }
}
