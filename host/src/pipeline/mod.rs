//! The pipeline: every event passes the filters, then the enrichers, then the routers, each stage in
//! `order` (ties by name). A [`Pipeline`] is an immutable snapshot of the plugin folder: the plugins
//! loaded from it, arranged, with an id that names exactly those versions; the [`folder`] makes a new
//! one whenever the folder changes, and the feed runs each batch on the snapshot it started with.

mod folder;
mod probation;
mod shadow;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

pub use folder::{Compiled, Folder, Job};
pub use probation::{Probation, Verdict as ProbationVerdict};
pub use shadow::{Difference, Report as ShadowReport, SUFFIX as SHADOW_SUFFIX, Shadow};
pub use watch::Watcher;

use crate::config::{OnError, PluginsConfig, RoutingConfig};
use crate::domain::Event;
use crate::plugins::{CallError, Plugin, Refused, Role};

/// The pipeline in force: swapped whole when the plugin folder changes, read once per feed batch.
pub type LivePipeline = ArcSwap<Pipeline>;

/// What the plugin folder holds: the plugins that run, the files refused (a refused new version of a
/// running plugin leaves that plugin running), and each plugin's past versions.
#[derive(Debug, Default)]
pub struct Loaded {
    pub plugins: Vec<Arc<Plugin>>,
    pub refused: Vec<Refused>,
    pub past: BTreeMap<String, Past>,
    /// The new versions still being judged on their first events.
    pub probation: Vec<Probation>,
    /// Shadow versions, by the name of the live plugin they run beside.
    pub shadows: BTreeMap<String, Arc<Shadow>>,
    /// New versions being compiled; whatever version of each ran before runs on meanwhile.
    pub compiling: Vec<Compiling>,
}

/// A plugin file being compiled (JavaScript and Python components take 10–25 s on two cores).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Compiling {
    pub name: String,
    pub sha256: String,
    /// The component's size in bytes.
    pub bytes: u64,
    /// When compiling began, RFC 3339.
    pub since: String,
}

/// A plugin's past in this process: the version the running one replaced, kept for going back to
/// it, and the last [`HISTORY`] files read under its name and what became of each.
#[derive(Debug, Clone, Default)]
pub struct Past {
    pub previous: Option<Arc<Plugin>>,
    pub history: std::collections::VecDeque<Swap>,
}

/// How many readings of a plugin's file [`Past::history`] keeps.
pub const HISTORY: usize = 10;

/// One reading of a plugin's file.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Swap {
    /// When it was read, RFC 3339.
    pub at: String,
    /// The component's hash, when the file could be read.
    pub sha256: Option<String>,
    pub result: SwapResult,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SwapResult {
    /// It loaded and runs.
    Loaded,
    /// It did not load; the version before it, if any, runs on.
    Refused,
    /// It loaded, failed on too many of its first events, and the version it replaced runs again.
    RolledBack,
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Deliver `event` (as the enrichers left it) to `sinks`; none means it goes nowhere.
    Deliver { event: Event, sinks: Vec<String> },
    /// A filter dropped it.
    Filtered { plugin: String },
    /// A plugin with `on_error = "dead-letter"` failed on it.
    Failed {
        event: Event,
        plugin: String,
        reason: String,
    },
    /// A plugin with `on_error = "halt"` failed on it: the feed must stop here and retry.
    Halt { plugin: String, reason: String },
}

/// One plugin's place in one stage.
#[derive(Debug, Clone)]
struct Stage {
    plugin: Arc<Plugin>,
    on_error: OnError,
    shadow: Option<Arc<Shadow>>,
}

/// The loaded plugins arranged into stages, and where unrouted events go.
#[derive(Debug)]
pub struct Pipeline {
    id: String,
    plugins: Vec<Arc<Plugin>>,
    refused: Vec<Refused>,
    past: BTreeMap<String, Past>,
    probation: Vec<Probation>,
    shadows: BTreeMap<String, Arc<Shadow>>,
    compiling: Vec<Compiling>,
    filters: Vec<Stage>,
    enrichers: Vec<Stage>,
    routers: Vec<Stage>,
    sinks: BTreeSet<String>,
    default_sinks: Vec<String>,
}

impl Pipeline {
    /// Arranges the loaded plugins into stages. `sinks` are the configured sink names.
    pub fn new(
        loaded: Loaded,
        config: &PluginsConfig,
        routing: &RoutingConfig,
        sinks: impl IntoIterator<Item = String>,
    ) -> Pipeline {
        let Loaded {
            plugins,
            refused,
            past,
            probation,
            shadows,
            compiling,
        } = loaded;
        let sinks: BTreeSet<String> = sinks.into_iter().collect();
        let stage = |role: Role| {
            let mut stages: Vec<Stage> = plugins
                .iter()
                .filter(|plugin| plugin.roles.contains(&role))
                .map(|plugin| Stage {
                    plugin: plugin.clone(),
                    on_error: plugin.manifest.on_error.unwrap_or(config.on_error),
                    shadow: shadows.get(&plugin.name).cloned(),
                })
                .collect();
            stages.sort_by(|a, b| {
                (a.plugin.order(role), &a.plugin.name).cmp(&(b.plugin.order(role), &b.plugin.name))
            });
            stages
        };
        let default_sinks = if routing.default_sinks.iter().any(|s| s == "*") {
            sinks.iter().cloned().collect()
        } else {
            routing.default_sinks.clone()
        };
        Pipeline {
            id: snapshot_id(&plugins),
            filters: stage(Role::Filter),
            enrichers: stage(Role::Enrich),
            routers: stage(Role::Route),
            plugins,
            refused,
            past,
            probation,
            shadows,
            compiling,
            sinks,
            default_sinks,
        }
    }

    /// Names this arrangement of plugin versions: the same files give the same id on every replica
    /// and after a restart, so "which version sent this?" has one answer everywhere.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Every loaded plugin, in file-name order.
    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }

    /// The files in the folder that did not load, and why.
    pub fn refused(&self) -> &[Refused] {
        &self.refused
    }

    /// The files being compiled while this snapshot runs.
    pub fn compiling(&self) -> &[Compiling] {
        &self.compiling
    }

    /// Whether a new version in this snapshot is still being judged on its first events.
    pub fn on_probation(&self) -> bool {
        !self.probation.is_empty()
    }

    /// Whether a version in this snapshot has failed its probation: no more events should run on this
    /// snapshot; the folder is about to put the version it replaced back.
    pub fn condemned(&self) -> bool {
        (self.probation.iter()).any(|p| matches!(p.verdict(), ProbationVerdict::Failed { .. }))
    }

    /// The shadow version running beside the live plugin `name`, if any.
    pub fn shadow(&self, name: &str) -> Option<&Arc<Shadow>> {
        self.shadows.get(name)
    }

    /// A plugin's past versions in this process.
    pub fn past(&self, name: &str) -> Option<&Past> {
        self.past.get(name)
    }

    /// Runs one event through every stage.
    pub fn run(&self, event: Event) -> Verdict {
        match self.filter_and_enrich(event) {
            ControlFlow::Continue(event) => self.route(event),
            ControlFlow::Break(verdict) => verdict,
        }
    }

    /// Runs one event through the filters and enrichers, and delivers what is left to `sinks`
    /// instead of asking the routers (a backfill's events go where it says). A name that is not a
    /// configured sink (any more) is left out.
    pub fn run_to(&self, event: Event, sinks: &[String]) -> Verdict {
        match self.filter_and_enrich(event) {
            ControlFlow::Continue(event) => Verdict::Deliver {
                event,
                sinks: (sinks.iter())
                    .filter(|sink| self.sinks.contains(*sink))
                    .cloned()
                    .collect(),
            },
            ControlFlow::Break(verdict) => verdict,
        }
    }

    /// The event as the enrichers left it, or the verdict of the stage that ended its way.
    fn filter_and_enrich(&self, mut event: Event) -> ControlFlow<Verdict, Event> {
        for stage in &self.filters {
            let kept = stage.plugin.keep(&event);
            if let Some(shadow) = &stage.shadow {
                shadow.keep(&event, &kept);
            }
            match kept {
                Ok(true) => {}
                Ok(false) => {
                    return ControlFlow::Break(Verdict::Filtered {
                        plugin: stage.plugin.name.clone(),
                    });
                }
                Err(error) => {
                    if let Some(verdict) = fail(stage, &event, error) {
                        return ControlFlow::Break(verdict);
                    }
                }
            }
        }
        for stage in &self.enrichers {
            let enriched = stage.plugin.enrich(&event);
            if let Some(shadow) = &stage.shadow {
                shadow.enrich(&event, &enriched);
            }
            match enriched {
                Ok(enriched) => event = enriched,
                Err(error) => {
                    if let Some(verdict) = fail(stage, &event, error) {
                        return ControlFlow::Break(verdict);
                    }
                }
            }
        }
        ControlFlow::Continue(event)
    }

    /// Where the routers send the event: the union of their answers.
    fn route(&self, event: Event) -> Verdict {
        let mut chosen = BTreeSet::new();
        let mut answered = false;
        for stage in &self.routers {
            let routed = stage.plugin.route(&event);
            if let Some(shadow) = &stage.shadow {
                shadow.route(&event, &routed);
            }
            let answer = routed.and_then(|names| {
                match names.iter().find(|name| !self.sinks.contains(*name)) {
                    Some(unknown) => Err(stage.plugin.refuse(format!(
                        "routed to {unknown:?}, which is not a configured sink (configured: {})",
                        self.sink_list()
                    ))),
                    None => Ok(names),
                }
            });
            match answer {
                Ok(names) => {
                    answered = true;
                    chosen.extend(names);
                }
                Err(error) => {
                    if let Some(verdict) = fail(stage, &event, error) {
                        return verdict;
                    }
                }
            }
        }
        // With no router, or every router passed over, routing falls back as if none were loaded.
        let sinks = if answered {
            chosen.into_iter().collect()
        } else {
            self.default_sinks.clone()
        };
        Verdict::Deliver { event, sinks }
    }

    fn sink_list(&self) -> String {
        if self.sinks.is_empty() {
            "none".into()
        } else {
            self.sinks.iter().cloned().collect::<Vec<_>>().join(", ")
        }
    }
}

/// The first 12 hex digits of a hash over each plugin's name, component hash and manifest text.
fn snapshot_id(plugins: &[Arc<Plugin>]) -> String {
    let mut hash = Sha256::new();
    for plugin in plugins {
        for part in [
            plugin.name.as_str(),
            plugin.version.sha256.as_str(),
            plugin.version.manifest.as_deref().unwrap_or(""),
        ] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
    }
    hash.finalize()[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What the failing plugin's policy makes of its failure: a final verdict, or `None` to pass it over.
fn fail(stage: &Stage, event: &Event, error: CallError) -> Option<Verdict> {
    let plugin = stage.plugin.name.clone();
    let reason = error.to_string();
    tracing::warn!(%plugin, seq = event.seq, %reason, policy = ?stage.on_error, "A plugin failed on an event.");
    match stage.on_error {
        OnError::Skip => None,
        OnError::DeadLetter => Some(Verdict::Failed {
            event: event.clone(),
            plugin,
            reason,
        }),
        OnError::Halt => Some(Verdict::Halt { plugin, reason }),
    }
}
