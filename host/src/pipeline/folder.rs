//! The live plugin folder: the plugins loaded from `plugins.dir`, brought up to date with what the
//! folder holds now. A file is known by its version (the component's hash and its manifest's text), so
//! an unchanged file is never loaded twice however often it is seen. A new version is loaded beside
//! the running one and replaces it only once it has loaded whole (compiled or taken from the cache,
//! linked, instantiated); one that cannot load is refused with the reason while the version before it
//! keeps running. A file gone from the folder is unloaded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    HISTORY, Loaded, Past, Pipeline, Probation, ProbationVerdict, SHADOW_SUFFIX, Shadow, Swap,
    SwapResult,
};
use crate::config::{PluginsConfig, RoutingConfig};
use crate::plugins::{self, FileVersion, Plugin, Refused, Runtime, Source};

/// The plugins of one folder and what became of each file in it.
#[derive(Debug)]
pub struct Folder {
    runtime: Runtime,
    config: PluginsConfig,
    routing: RoutingConfig,
    sinks: Vec<String>,
    entries: BTreeMap<String, Entry>,
}

/// One plugin name in the folder.
#[derive(Debug, Default)]
struct Entry {
    /// The version last read from the folder, loaded or refused.
    seen: Option<FileVersion>,
    active: Option<Arc<Plugin>>,
    refused: Option<Refused>,
    past: Past,
    /// Whether `active` replaced a running version and is still judged on its first events.
    on_probation: bool,
    /// For a shadow version (`NAME.shadow.wasm`): it and what it has shown since it loaded.
    shadow: Option<Arc<Shadow>>,
}

impl Entry {
    fn remember(&mut self, sha256: Option<String>, result: SwapResult, reason: Option<String>) {
        if self.past.history.len() == HISTORY {
            self.past.history.pop_front();
        }
        self.past.history.push_back(Swap {
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            sha256,
            result,
            reason,
        });
    }
}

impl Folder {
    /// A folder with nothing loaded yet; [`Folder::reconcile`] reads it.
    pub fn new(
        runtime: Runtime,
        config: &PluginsConfig,
        routing: &RoutingConfig,
        sinks: Vec<String>,
    ) -> Folder {
        Folder {
            runtime,
            config: config.clone(),
            routing: routing.clone(),
            sinks,
            entries: BTreeMap::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// Reads the folder and loads what changed in it; the pipeline made of what runs now, or `None`
    /// when nothing changed. Compiling is CPU-bound: call this off the async threads.
    pub fn reconcile(&mut self) -> Option<Pipeline> {
        let mut changed = false;
        let mut present = BTreeSet::new();
        for path in plugins::plugin_files(&self.config.dir) {
            let name = plugins::plugin_name(&path);
            present.insert(name.clone());
            changed |= self.read(name, path);
        }
        self.entries.retain(|name, entry| {
            let keep = present.contains(name);
            if !keep {
                changed = true;
                if let Some(plugin) = &entry.active {
                    tracing::info!(plugin = name, sha256 = %plugin.version.sha256, "Unloaded a plugin: its file is gone.");
                }
            }
            keep
        });
        changed.then(|| self.pipeline())
    }

    /// Brings `name` up to date with its file; whether anything changed.
    fn read(&mut self, name: String, path: PathBuf) -> bool {
        let entry = self.entries.entry(name.clone()).or_default();
        let source = match Source::read(&path) {
            Ok(source) => source,
            Err(error) => {
                // Not recorded as seen: it is read again at the next change.
                let refused = Refused {
                    path,
                    sha256: None,
                    reason: error.to_string(),
                };
                let changed = entry.refused.as_ref() != Some(&refused);
                if changed {
                    tracing::error!(plugin = name, reason = %refused.reason, "Cannot read a plugin file.");
                    entry.remember(None, SwapResult::Refused, Some(refused.reason.clone()));
                }
                entry.refused = Some(refused);
                entry.seen = None;
                return changed;
            }
        };
        if entry.seen.as_ref() == Some(&source.version) {
            return false;
        }
        entry.seen = Some(source.version.clone());
        match plugins::load(&self.runtime, &source, &self.config.cache_dir, None) {
            Ok(plugin) => {
                tracing::info!(
                    plugin = name,
                    roles = ?plugin.roles,
                    sha256 = %plugin.version.sha256,
                    cache = ?plugin.cache,
                    replaces = entry.active.as_ref().map(|p| p.version.sha256.as_str()),
                    "Loaded a plugin."
                );
                let sha256 = plugin.version.sha256.clone();
                let plugin = Arc::new(plugin);
                let is_shadow = name.ends_with(SHADOW_SUFFIX);
                entry.shadow = is_shadow.then(|| Arc::new(Shadow::new(plugin.clone())));
                entry.on_probation = false;
                if let Some(replaced) = entry.active.replace(plugin) {
                    // Kept to go back to; its instance is made again if it is ever called.
                    replaced.release_instance();
                    entry.past.previous = Some(replaced);
                    entry.on_probation = !is_shadow;
                }
                entry.refused = None;
                entry.remember(Some(sha256), SwapResult::Loaded, None);
            }
            Err(error) => {
                tracing::error!(
                    plugin = name,
                    sha256 = %source.version.sha256,
                    %error,
                    running = entry.active.as_ref().map(|p| p.version.sha256.as_str()),
                    "Refused a plugin; the others, and any version of it already running, run on."
                );
                let reason = error.to_string();
                entry.remember(
                    Some(source.version.sha256.clone()),
                    SwapResult::Refused,
                    Some(reason.clone()),
                );
                entry.refused = Some(Refused {
                    path,
                    sha256: Some(source.version.sha256),
                    reason,
                });
            }
        }
        true
    }

    /// Judges the new versions on probation; when one has failed, puts the version it replaced back
    /// and returns the pipeline made of that. Its file stays refused until it changes.
    pub fn review(&mut self) -> Option<Pipeline> {
        let mut changed = false;
        for (name, entry) in &mut self.entries {
            let probation = match (&entry.active, entry.on_probation) {
                (Some(active), true) => Probation::new(active.clone(), &self.config),
                _ => None,
            };
            let Some(probation) = probation else {
                continue;
            };
            match probation.verdict() {
                ProbationVerdict::Pending => continue,
                ProbationVerdict::Passed => {}
                ProbationVerdict::Failed { errors, calls } => {
                    let reason = probation.reason(errors, calls);
                    let failed = &probation.plugin;
                    tracing::warn!(plugin = %name, sha256 = %failed.version.sha256, %reason, restored = ?entry.past.previous.as_ref().map(|p| &p.version.sha256), "Rolled a new plugin version back.");
                    failed.release_instance();
                    entry.active = entry.past.previous.take();
                    entry.remember(
                        Some(failed.version.sha256.clone()),
                        SwapResult::RolledBack,
                        Some(reason),
                    );
                }
            }
            entry.on_probation = false;
            changed = true;
        }
        changed.then(|| self.pipeline())
    }

    /// The pipeline of the plugins running now.
    pub fn pipeline(&self) -> Pipeline {
        let mut loaded = Loaded::default();
        for (name, entry) in &self.entries {
            if let (Some(active), true) = (&entry.active, entry.on_probation) {
                loaded
                    .probation
                    .extend(Probation::new(active.clone(), &self.config));
            }
            loaded.refused.extend(entry.refused.clone());
            if let (Some(shadow), Some(live)) = (&entry.shadow, name.strip_suffix(SHADOW_SUFFIX)) {
                loaded.shadows.insert(live.to_owned(), shadow.clone());
                continue;
            }
            loaded.plugins.extend(entry.active.clone());
            loaded.past.insert(name.clone(), entry.past.clone());
        }
        Pipeline::new(
            loaded,
            &self.config,
            &self.routing,
            self.sinks.iter().cloned(),
        )
    }
}
