//! The pipeline: every event passes the filters, then the enrichers, then the routers, each stage in
//! `order` (ties by name). A [`Pipeline`] is an immutable arrangement of the plugins loaded at start.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::{OnError, PluginsConfig, RoutingConfig};
use crate::domain::Event;
use crate::plugins::{CallError, Plugin, Role};

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
}

/// The loaded plugins arranged into stages, and where unrouted events go.
#[derive(Debug)]
pub struct Pipeline {
    plugins: Vec<Arc<Plugin>>,
    filters: Vec<Stage>,
    enrichers: Vec<Stage>,
    routers: Vec<Stage>,
    sinks: BTreeSet<String>,
    default_sinks: Vec<String>,
}

impl Pipeline {
    /// Arranges `plugins` into stages. `sinks` are the configured sink names.
    pub fn new(
        plugins: Vec<Arc<Plugin>>,
        config: &PluginsConfig,
        routing: &RoutingConfig,
        sinks: impl IntoIterator<Item = String>,
    ) -> Pipeline {
        let sinks: BTreeSet<String> = sinks.into_iter().collect();
        let stage = |role: Role| {
            let mut stages: Vec<Stage> = plugins
                .iter()
                .filter(|plugin| plugin.roles.contains(&role))
                .map(|plugin| Stage {
                    plugin: plugin.clone(),
                    on_error: plugin.manifest.on_error.unwrap_or(config.on_error),
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
            filters: stage(Role::Filter),
            enrichers: stage(Role::Enrich),
            routers: stage(Role::Route),
            plugins,
            sinks,
            default_sinks,
        }
    }

    /// Every loaded plugin, in file-name order.
    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }

    /// Runs one event through every stage.
    pub fn run(&self, mut event: Event) -> Verdict {
        for stage in &self.filters {
            match stage.plugin.keep(&event) {
                Ok(true) => {}
                Ok(false) => {
                    return Verdict::Filtered {
                        plugin: stage.plugin.name.clone(),
                    };
                }
                Err(error) => {
                    if let Some(verdict) = fail(stage, &event, error) {
                        return verdict;
                    }
                }
            }
        }
        for stage in &self.enrichers {
            match stage.plugin.enrich(&event) {
                Ok(enriched) => event = enriched,
                Err(error) => {
                    if let Some(verdict) = fail(stage, &event, error) {
                        return verdict;
                    }
                }
            }
        }
        let mut chosen = BTreeSet::new();
        let mut answered = false;
        for stage in &self.routers {
            let answer = stage.plugin.route(&event).and_then(|names| {
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
