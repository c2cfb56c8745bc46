//! Quarantine, a circuit breaker per plugin: one that fails `quarantine_failures` times within
//! `quarantine_window` is not called for `quarantine_backoff`; the events that reach it meanwhile fail at
//! once (and its `on_error` decides what becomes of them) instead of each waiting out a deadline or a
//! trap. Then one call is let through: if it succeeds the quarantine ends, if it fails the next one is
//! twice as long, up to 64 times the backoff.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use plant_monitor_core::config::PluginsConfig;

/// The longest quarantine, as a multiple of `quarantine_backoff`.
const MAX_DOUBLINGS: u32 = 6;

/// The quarantine settings of `[plugins]`.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    failures: usize,
    window: Duration,
    backoff: Duration,
}

impl Settings {
    pub fn new(config: &PluginsConfig) -> Settings {
        Settings {
            failures: config.quarantine_failures as usize,
            window: config.quarantine_window,
            backoff: config.quarantine_backoff,
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    settings: Settings,
    state: Mutex<State>,
    /// Whether a quarantine is set (running or awaiting its trial): while none is, a call that
    /// succeeds has nothing to record, and admitting it needs no lock.
    tripped: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    /// When the failures within the window happened, oldest first.
    recent: VecDeque<Instant>,
    quarantine: Option<Quarantine>,
    /// Whether the call in progress is the one let through after a quarantine.
    trial: bool,
}

#[derive(Debug, Clone, Copy)]
struct Quarantine {
    until: Instant,
    length: Duration,
}

impl Breaker {
    pub fn new(settings: Settings) -> Breaker {
        Breaker {
            settings,
            state: Mutex::new(State::default()),
            tripped: AtomicBool::new(false),
        }
    }

    /// Whether a call may go through at `now`; while quarantined, why not.
    pub fn admit(&self, now: Instant) -> Result<(), String> {
        if !self.tripped.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut state = self.lock();
        match state.quarantine {
            Some(quarantine) if now < quarantine.until => Err(format!(
                "quarantined for {:?} after {} failures within {:?} (plugins.quarantine_failures)",
                quarantine.length, self.settings.failures, self.settings.window
            )),
            Some(_) => {
                state.trial = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts the end of a call that was admitted.
    pub fn record(&self, now: Instant, failed: bool) {
        if self.settings.failures == 0 || !(failed || self.tripped.load(Ordering::Acquire)) {
            return;
        }
        let mut state = self.lock();
        if std::mem::take(&mut state.trial) {
            state.quarantine = match (failed, state.quarantine) {
                (true, Some(last)) => {
                    let length =
                        (last.length * 2).min(self.settings.backoff * (1 << MAX_DOUBLINGS));
                    tracing::warn!(
                        ?length,
                        "A quarantined plugin failed its trial call; quarantined again."
                    );
                    Some(Quarantine {
                        until: now + length,
                        length,
                    })
                }
                _ => None,
            };
            self.tripped
                .store(state.quarantine.is_some(), Ordering::Release);
            return;
        }
        if !failed {
            return;
        }
        state.recent.push_back(now);
        while (state.recent.front())
            .is_some_and(|at| now.duration_since(*at) > self.settings.window)
        {
            state.recent.pop_front();
        }
        if state.recent.len() >= self.settings.failures {
            state.recent.clear();
            state.quarantine = Some(Quarantine {
                until: now + self.settings.backoff,
                length: self.settings.backoff,
            });
            self.tripped.store(true, Ordering::Release);
        }
    }

    /// Until when the plugin is quarantined, if it is.
    pub fn quarantined_until(&self) -> Option<SystemTime> {
        if !self.tripped.load(Ordering::Acquire) {
            return None;
        }
        let now = Instant::now();
        let until = self.lock().quarantine?.until;
        (until > now).then(|| SystemTime::now() + (until - now))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(Settings::new(&PluginsConfig {
            quarantine_failures: 3,
            quarantine_window: Duration::from_secs(10),
            quarantine_backoff: Duration::from_secs(1),
            ..PluginsConfig::default()
        }))
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_quarantine() {
        let breaker = breaker();
        let start = Instant::now();
        for n in 0..10 {
            let at = start + Duration::from_secs(6 * n);
            assert!(breaker.admit(at).is_ok());
            breaker.record(at, true);
        }
    }

    #[test]
    fn a_quarantine_ends_with_a_successful_trial_and_doubles_after_a_failed_one() {
        let breaker = breaker();
        let start = Instant::now();
        for _ in 0..3 {
            breaker.admit(start).unwrap();
            breaker.record(start, true);
        }
        assert!(breaker.admit(start + Duration::from_millis(999)).is_err());
        let trial = start + Duration::from_secs(1);
        breaker.admit(trial).unwrap();
        breaker.record(trial, true);
        assert!(breaker.admit(trial + Duration::from_millis(1999)).is_err());
        let second = trial + Duration::from_secs(2);
        breaker.admit(second).unwrap();
        breaker.record(second, false);
        assert!(breaker.admit(second).is_ok());
        assert!(breaker.quarantined_until().is_none());
    }
}
