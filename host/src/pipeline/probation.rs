//! Probation: a new version that replaced a running one is judged on its first `rollback_after`
//! events. If more than `rollback_share` of them fail (an error, a trap, an answer the host refuses),
//! the folder goes back to the version it replaced; the feed stops its batch at the event that decided
//! it and goes on once the rollback is in force, so no later event sees the failing version. Events the
//! failing version already handled keep their outcome (under its `on_error`): nothing is processed twice.

use std::sync::Arc;

use crate::config::PluginsConfig;
use crate::plugins::Plugin;

/// A plugin version on probation.
#[derive(Debug, Clone)]
pub struct Probation {
    pub plugin: Arc<Plugin>,
    events: u64,
    share: f64,
}

/// What its first events say of a version on probation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Pending,
    Passed,
    Failed { errors: u64, calls: u64 },
}

impl Probation {
    /// Probation for `plugin`, unless `rollback_after` is 0.
    pub fn new(plugin: Arc<Plugin>, config: &PluginsConfig) -> Option<Probation> {
        (config.rollback_after > 0).then(|| Probation {
            plugin,
            events: u64::from(config.rollback_after),
            share: config.rollback_share,
        })
    }

    /// Failed as soon as more than the share of the judged events have failed, however many are left.
    pub fn verdict(&self) -> Verdict {
        let stats = &self.plugin.stats;
        let (calls, errors) = (stats.calls(), stats.errors());
        if errors as f64 > self.share * self.events as f64 {
            Verdict::Failed { errors, calls }
        } else if calls >= self.events {
            Verdict::Passed
        } else {
            Verdict::Pending
        }
    }

    /// Why a failed version was rolled back.
    pub fn reason(&self, errors: u64, calls: u64) -> String {
        format!(
            "failed on {errors} of its first {calls} events, more than plugins.rollback_share = {} \
             of plugins.rollback_after = {}",
            self.share, self.events
        )
    }
}
