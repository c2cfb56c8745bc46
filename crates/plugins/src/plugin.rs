//! One loaded plugin: its compiled component, the roles it exports, its manifest, its statistics, and
//! the instance that serves its calls. The instance is created on first use and reused across events
//! (instantiation costs far more than a call); after any trap it is discarded, because a trapped
//! component instance cannot be entered again, and the next call gets a fresh one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::bindings::{enrich, filter, route};
use super::breaker::Breaker;
use super::cache::CacheOutcome;
use super::convert;
use super::host::HostState;
use super::manifest::Manifest;
use super::metrics::{Outcome, RoleSeries};
use super::registry::FileVersion;
use super::runtime::Runtime;
use super::wait::WaitPastDeadline;
use plant_monitor_core::domain::Event;

/// The three things a plugin can do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Filter,
    Enrich,
    Route,
}

impl Role {
    /// The stage position a plugin takes when its manifest sets no `order`.
    pub fn default_order(self) -> i64 {
        match self {
            Role::Filter => 100,
            Role::Enrich => 200,
            Role::Route => 300,
        }
    }

    /// The WIT interface a component exports to take this role.
    pub fn interface(self) -> &'static str {
        match self {
            Role::Filter => "plant-monitor:plugin/filter@0.1.0",
            Role::Enrich => "plant-monitor:plugin/enrich@0.1.0",
            Role::Route => "plant-monitor:plugin/route@0.1.0",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Filter => "filter",
            Role::Enrich => "enrich",
            Role::Route => "route",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How many call timeouts a new instance may take to start.
const START_TIMEOUTS: u64 = 20;

/// Why a call did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin returned `err(reason)`.
    #[error("{0}")]
    Returned(String),
    /// The plugin trapped, ran past its deadline or its memory limit, or could not be instantiated.
    #[error("trapped: {0}")]
    Trapped(String),
    /// The plugin answered with something the host refuses.
    #[error("invalid answer: {0}")]
    Invalid(String),
    /// The plugin failed too often lately and was not called.
    #[error("{0}")]
    Quarantined(String),
}

/// Where each role's exports live in the component, resolved once at load.
#[derive(Default)]
pub(super) struct Exports {
    pub filter: Option<filter::GuestIndices>,
    pub enrich: Option<enrich::GuestIndices>,
    pub route: Option<route::GuestIndices>,
}

/// A live instance and its loaded exports.
struct Live {
    store: Store<HostState>,
    filter: Option<filter::Guest>,
    enrich: Option<enrich::Guest>,
    route: Option<route::Guest>,
    /// Its memories' size once started: what it grows beyond that is judged by `MemoryCap::worn`.
    memory_at_start: usize,
}

/// Calls, errors, traps and time spent, for `/v1/plugins`.
#[derive(Debug, Default)]
pub struct Stats {
    calls: AtomicU64,
    errors: AtomicU64,
    traps: AtomicU64,
    nanos: AtomicU64,
    durations: Durations,
}

impl Stats {
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Calls that failed in any way: an error returned, a trap, an answer refused.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Calls that trapped (a deadline, the memory limit, the guest's own abort) or could not
    /// instantiate.
    pub fn traps(&self) -> u64 {
        self.traps.load(Ordering::Relaxed)
    }

    /// Mean time per call in microseconds, 0 before the first call.
    pub fn mean_micros(&self) -> f64 {
        let calls = self.calls();
        if calls == 0 {
            0.0
        } else {
            self.nanos.load(Ordering::Relaxed) as f64 / calls as f64 / 1000.0
        }
    }

    /// The time 99 % of calls took at most, in microseconds (to within 19 %), 0 before the first.
    pub fn p99_micros(&self) -> f64 {
        self.durations.quantile_micros(0.99)
    }

    fn record(&self, elapsed: std::time::Duration, failed: bool, trapped: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        self.durations.record(elapsed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if trapped {
            self.traps.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Four buckets per doubling of call time from 1 µs, the last open-ended (past 2^20 µs, about a
/// second, beyond any call deadline): a quantile is read without keeping every call's time.
const BUCKETS: usize = 81;

#[derive(Debug)]
struct Durations([AtomicU64; BUCKETS]);

impl Default for Durations {
    fn default() -> Self {
        Durations(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Durations {
    fn record(&self, elapsed: std::time::Duration) {
        let micros = elapsed.as_secs_f64() * 1e6;
        let bucket = if micros <= 1.0 {
            0
        } else {
            ((micros.log2() * 4.0).ceil() as usize).min(BUCKETS - 1)
        };
        self.0[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The upper bound of the bucket holding quantile `q` of the recorded times.
    fn quantile_micros(&self, q: f64) -> f64 {
        let counts: Vec<u64> = self.0.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (bucket, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return 2f64.powf(bucket as f64 / 4.0);
            }
        }
        2f64.powf((BUCKETS - 1) as f64 / 4.0)
    }
}

/// A plugin ready to be called.
pub struct Plugin {
    pub name: String,
    /// The component and manifest this plugin was loaded from.
    pub version: FileVersion,
    pub roles: Vec<Role>,
    pub manifest: Manifest,
    pub cache: CacheOutcome,
    pub loaded_at: SystemTime,
    pub stats: Stats,
    runtime: Runtime,
    pre: InstancePre<HostState>,
    exports: Exports,
    label: Arc<str>,
    config: Arc<BTreeMap<String, String>>,
    live: Mutex<Option<Live>>,
    breaker: Breaker,
    /// The Prometheus series of each role it takes, by [`Role::index`].
    series: [Option<RoleSeries>; 3],
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("sha256", &self.version.sha256)
            .finish_non_exhaustive()
    }
}

/// What [`Plugin::new`] needs; gathered by the registry.
pub(super) struct Parts {
    pub name: String,
    pub version: FileVersion,
    pub manifest: Manifest,
    pub cache: CacheOutcome,
    pub runtime: Runtime,
    pub pre: InstancePre<HostState>,
    pub exports: Exports,
}

impl Plugin {
    pub(super) fn new(parts: Parts) -> Plugin {
        let breaker = Breaker::new(parts.runtime.quarantine());
        let roles = [
            (Role::Filter, parts.exports.filter.is_some()),
            (Role::Enrich, parts.exports.enrich.is_some()),
            (Role::Route, parts.exports.route.is_some()),
        ]
        .into_iter()
        .filter_map(|(role, exported)| exported.then_some(role))
        .collect::<Vec<_>>();
        let mut series = [None, None, None];
        for role in &roles {
            series[role.index()] = Some(RoleSeries::register(&parts.name, *role));
        }
        Plugin {
            series,
            label: Arc::from(parts.name.as_str()),
            config: Arc::new(parts.manifest.config.clone()),
            name: parts.name,
            version: parts.version,
            roles,
            manifest: parts.manifest,
            cache: parts.cache,
            loaded_at: SystemTime::now(),
            stats: Stats::default(),
            runtime: parts.runtime,
            pre: parts.pre,
            exports: parts.exports,
            live: Mutex::new(None),
            breaker,
        }
    }

    /// This plugin's position in the stage of `role`.
    pub fn order(&self, role: Role) -> i64 {
        self.manifest.order.unwrap_or(role.default_order())
    }

    /// Runs the filter role: `true` keeps the event.
    pub fn keep(&self, event: &Event) -> Result<bool, CallError> {
        let input = convert::Borrowed::new(event);
        let kept = self.call(Role::Filter, |live| match &live.filter {
            Some(guest) => guest.call_keep(&mut live.store, input.param()),
            None => Ok(Err("this plugin does not export the filter role".into())),
        });
        self.count(
            Role::Filter,
            match kept {
                Ok(true) => Outcome::Processed,
                Ok(false) => Outcome::Filtered,
                Err(_) => Outcome::Failed,
            },
        );
        kept
    }

    /// Runs the enrich role and checks that the event is still the same event.
    pub fn enrich(&self, event: &Event) -> Result<Event, CallError> {
        let enriched = self.enrich_checked(event);
        self.count(Role::Enrich, Outcome::of(&enriched));
        enriched
    }

    fn enrich_checked(&self, event: &Event) -> Result<Event, CallError> {
        let input = convert::Borrowed::new(event);
        let output = self.call(Role::Enrich, |live| match &live.enrich {
            Some(guest) => guest.call_enrich(&mut live.store, input.param()),
            None => Ok(Err("this plugin does not export the enrich role".into())),
        })?;
        let enriched = convert::from_wit(output).map_err(|reason| self.refuse(reason))?;
        (self.runtime.limits().check_event(&enriched)).map_err(|reason| self.refuse(reason))?;
        let changed = [
            ("seq", enriched.seq != event.seq),
            ("kind", enriched.kind != event.kind),
            ("plant-id", enriched.plant_id != event.plant_id),
            ("region", enriched.region != event.region),
        ];
        if let Some((field, _)) = changed.iter().find(|(_, changed)| *changed) {
            return Err(self.refuse(format!("an enricher may not change `{field}`")));
        }
        Ok(enriched)
    }

    /// Runs the route role: the sink names this plugin chose.
    pub fn route(&self, event: &Event) -> Result<Vec<String>, CallError> {
        let input = convert::Borrowed::new(event);
        let sinks = self
            .call(Role::Route, |live| match &live.route {
                Some(guest) => guest.call_route(&mut live.store, input.param()),
                None => Ok(Err("this plugin does not export the route role".into())),
            })
            .and_then(|sinks| {
                (self.runtime.limits().check_route(&sinks))
                    .map_err(|reason| self.refuse(reason))?;
                Ok(sinks)
            });
        self.count(Role::Route, Outcome::of(&sinks));
        sinks
    }

    fn count(&self, role: Role, outcome: Outcome) {
        if let Some(series) = &self.series[role.index()] {
            series.outcome(outcome);
        }
    }

    /// An answer that the call returned but the host refuses, counted as this plugin's error (in
    /// `/v1/plugins` too): the caller that judged it says why.
    pub fn refuse(&self, reason: String) -> CallError {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.breaker.record(Instant::now(), true);
        CallError::Invalid(reason)
    }

    /// Until when this plugin is quarantined, if it is.
    pub fn quarantined_until(&self) -> Option<SystemTime> {
        self.breaker.quarantined_until()
    }

    /// Drops the live instance (its memory and its slot in the pool); the next call makes a new one.
    pub fn release_instance(&self) {
        *self.slot() = None;
    }

    /// Makes the live instance now, so that a component that cannot be instantiated (its memories
    /// over the limit, say) is refused at load instead of failing its first event.
    pub(super) fn instantiate_now(&self) -> Result<(), CallError> {
        let live = self.instantiate()?;
        *self.slot() = Some(live);
        Ok(())
    }

    /// The live instance, if any; a call that panicked while holding it left it as it was.
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Live>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One call with a deadline, on the live instance (made if there is none), with statistics; a trap
    /// discards the instance.
    fn call<T>(
        &self,
        role: Role,
        invoke: impl FnOnce(&mut Live) -> wasmtime::Result<Result<T, String>>,
    ) -> Result<T, CallError> {
        let started = Instant::now();
        self.breaker
            .admit(started)
            .map_err(CallError::Quarantined)?;
        let mut slot = self.slot();
        let result = match slot.as_mut() {
            Some(live) => Ok(live),
            None => self.instantiate().map(|live| slot.insert(live)),
        }
        .and_then(|live| {
            live.store.set_epoch_deadline(self.runtime.deadline_ticks());
            live.store.data_mut().limits.exceeded = false;
            live.store.data_mut().deadline = Some(started + self.runtime.call_timeout());
            match invoke(live) {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(reason)) => Err(CallError::Returned(
                    self.runtime.limits().cut_reason(reason),
                )),
                Err(trap) => Err(CallError::Trapped(self.describe(&trap, live))),
            }
        });
        let trapped = matches!(result, Err(CallError::Trapped(_)));
        let worn =
            (slot.as_ref()).is_some_and(|live| live.store.data().limits.worn(live.memory_at_start));
        if trapped || worn {
            *slot = None;
        }
        if worn {
            tracing::debug!(plugin = %self.name, "Replaced an instance that kept most of the memory it took since it started.");
        }
        drop(slot);
        let elapsed = started.elapsed();
        (self.stats).record(elapsed, result.is_err(), trapped);
        if let Some(series) = &self.series[role.index()] {
            series.call(elapsed);
        }
        self.breaker.record(started + elapsed, result.is_err());
        result
    }

    fn instantiate(&self) -> Result<Live, CallError> {
        let state = HostState::new(
            self.label.clone(),
            self.config.clone(),
            self.runtime.memory_limit(),
            self.runtime.limits(),
        );
        let mut store = Store::new(self.runtime.engine(), state);
        store.set_hostcall_fuel(self.runtime.limits().hostcall_fuel());
        store.limiter(|state| &mut state.limits);
        // Starting runs the guest's initialisers (Go's runtime, a JavaScript or Python snapshot's
        // memory): more than one call's work, and on a machine busy compiling other plugins slower
        // still; a start-up that never ends is cut off all the same.
        store.set_epoch_deadline(self.runtime.deadline_ticks() * START_TIMEOUTS);
        let failed = |error: wasmtime::Error| {
            CallError::Trapped(match error.downcast_ref::<wasmtime::Trap>() {
                Some(wasmtime::Trap::Interrupt) => format!(
                    "cannot instantiate: starting took longer than {:?} ({START_TIMEOUTS} × \
                     plugins.call_timeout)",
                    self.runtime.call_timeout() * START_TIMEOUTS as u32
                ),
                _ => format!("cannot instantiate: {error:#}"),
            })
        };
        let instance = match self.pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(_) if store.data().limits.exceeded => {
                return Err(CallError::Trapped(format!(
                    "cannot instantiate: its memories need more than the memory limit of {} MiB \
                     (plugins.memory_limit)",
                    self.runtime.memory_limit() >> 20
                )));
            }
            Err(error) => return Err(failed(error)),
        };
        let filter = (self.exports.filter.as_ref())
            .map(|e| e.load(&mut store, &instance))
            .transpose()
            .map_err(failed)?;
        let enrich = (self.exports.enrich.as_ref())
            .map(|e| e.load(&mut store, &instance))
            .transpose()
            .map_err(failed)?;
        let route = (self.exports.route.as_ref())
            .map(|e| e.load(&mut store, &instance))
            .transpose()
            .map_err(failed)?;
        let memory_at_start = store.data().limits.in_use();
        Ok(Live {
            store,
            filter,
            enrich,
            route,
            memory_at_start,
        })
    }

    /// Names the limit a trap came from, when it came from one.
    fn describe(&self, trap: &wasmtime::Error, live: &Live) -> String {
        if trap.downcast_ref::<WaitPastDeadline>().is_some() {
            return format!(
                "exceeded the call timeout of {:?} (plugins.call_timeout) waiting in wasi:io/poll",
                self.runtime.call_timeout()
            );
        }
        // wasmtime's error for it is private; its message is what there is to go by.
        if (trap.chain()).any(|cause| cause.to_string().contains("fuel allocated for hostcalls")) {
            return format!(
                "handed the host more than it copies in one call ({} bytes, set by \
                 plugins.max_event_size and plugins.max_log_size)",
                self.runtime.limits().hostcall_fuel()
            );
        }
        if live.store.data().limits.exceeded {
            return format!(
                "exceeded the memory limit of {} MiB (plugins.memory_limit)",
                self.runtime.memory_limit() >> 20
            );
        }
        match trap.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => format!(
                "exceeded the call timeout of {:?} (plugins.call_timeout)",
                self.runtime.call_timeout()
            ),
            _ => format!("{trap:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Durations;

    #[test]
    fn the_p99_is_read_from_the_buckets_to_within_a_quarter_doubling() {
        let durations = Durations::default();
        assert_eq!(durations.quantile_micros(0.99), 0.0, "no calls yet");
        for _ in 0..990 {
            durations.record(Duration::from_micros(10));
        }
        for _ in 0..10 {
            durations.record(Duration::from_millis(50));
        }
        let p99 = durations.quantile_micros(0.99);
        assert!((10.0..10.0 * 1.19).contains(&p99), "{p99}");
        let p999 = durations.quantile_micros(0.999);
        assert!((50_000.0..50_000.0 * 1.19).contains(&p999), "{p999}");
    }
}
