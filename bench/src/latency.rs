//! Percentiles of a set of measured durations, nearest-rank.

use std::time::Duration;

/// p50, p95, p99 and the maximum of some durations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// `None` for no durations: a figure that was not measured must not read as zero.
    pub fn of(mut durations: Vec<Duration>) -> Option<Percentiles> {
        if durations.is_empty() {
            return None;
        }
        durations.sort_unstable();
        let rank = |p: f64| {
            let index = ((p * durations.len() as f64).ceil() as usize).saturating_sub(1);
            durations[index.min(durations.len() - 1)]
        };
        Some(Percentiles {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: durations[durations.len() - 1],
        })
    }

    /// The four, labelled, in order.
    pub fn labelled(&self) -> [(&'static str, Duration); 4] {
        [
            ("p50", self.p50),
            ("p95", self.p95),
            ("p99", self.p99),
            ("max", self.max),
        ]
    }
}
