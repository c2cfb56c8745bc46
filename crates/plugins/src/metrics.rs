//! The series the plugin runtime records through the `metrics` facade: events per plugin, role and
//! outcome, and call durations. The handles of each plugin's roles are registered once, when it is
//! loaded, so a call pays a few atomic adds; the host installs the recorder that exports them.

use metrics::{Counter, Histogram, counter, describe_counter, describe_histogram, histogram};

use crate::Role;

pub const EVENTS: &str = "plant_monitor_plugin_events_total";
pub const CALL_SECONDS: &str = "plant_monitor_plugin_call_duration_seconds";

/// Describes the series for the exposition.
pub fn describe() {
    describe_counter!(
        EVENTS,
        "Events a plugin's role handled, per plugin, role and outcome: processed, filtered (a filter \
         dropped it) or failed (an error, a trap or a refused answer)."
    );
    describe_histogram!(
        CALL_SECONDS,
        metrics::Unit::Seconds,
        "Time per plugin call, per plugin and role."
    );
}

/// What became of one call.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Processed,
    Filtered,
    Failed,
}

impl Outcome {
    pub fn of<T, E>(result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Processed,
            Err(_) => Outcome::Failed,
        }
    }
}

/// One role's series of one plugin.
#[derive(Debug)]
pub struct RoleSeries {
    processed: Counter,
    filtered: Counter,
    failed: Counter,
    duration: Histogram,
}

impl RoleSeries {
    pub fn register(plugin: &str, role: Role) -> RoleSeries {
        let events = |outcome: &'static str| counter!(EVENTS, "plugin" => plugin.to_owned(), "role" => role.as_str(), "outcome" => outcome);
        RoleSeries {
            processed: events("processed"),
            filtered: events("filtered"),
            failed: events("failed"),
            duration: histogram!(CALL_SECONDS, "plugin" => plugin.to_owned(), "role" => role.as_str()),
        }
    }

    pub fn call(&self, elapsed: std::time::Duration) {
        self.duration.record(elapsed.as_secs_f64());
    }

    pub fn outcome(&self, outcome: Outcome) {
        match outcome {
            Outcome::Processed => &self.processed,
            Outcome::Filtered => &self.filtered,
            Outcome::Failed => &self.failed,
        }
        .increment(1);
    }
}
