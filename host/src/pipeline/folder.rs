//! The live plugin folder: the plugins loaded from `plugins.dir`, brought up to date with what the
//! folder holds now. A file is known by its version (the component's hash and its manifest's text), so
//! an unchanged file is never loaded twice however often it is seen. A new version is loaded beside
//! the running one and replaces it only once it has loaded whole (compiled or taken from the cache,
//! linked, instantiated); one that cannot load is refused with the reason while the version before it
//! keeps running. A file gone from the folder is unloaded.
//!
//! Reading the folder is quick; compiling a new version may take tens of seconds (JavaScript and
//! Python). So [`Folder::scan`] only hands out [`Job`]s, which are compiled without the folder
//! (each on a thread of its own, so one slow compile holds up no other plugin and no event), and
//! [`Folder::install`] puts each result in place when it is done, unless its file changed meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    Compiling, HISTORY, Loaded, Past, Pipeline, Probation, ProbationVerdict, SHADOW_SUFFIX, Shadow,
    Swap, SwapResult,
};
use crate::config::{PluginsConfig, RoutingConfig};
use crate::plugins::{self, FileVersion, LoadError, Plugin, Refused, Runtime, Source};

/// A component larger than this (JavaScript, Python, Go) takes seconds to compile, and is said so.
const LARGE: u64 = 1 << 20;

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
    /// The version of `seen` being compiled, if it is.
    compiling: Option<Compiling>,
}

/// A new version of a plugin to compile: [`Job::compile`] needs nothing of the folder.
#[derive(Debug)]
pub struct Job {
    source: Source,
    runtime: Runtime,
    cache_dir: PathBuf,
}

impl Job {
    pub fn name(&self) -> &str {
        &self.source.name
    }

    /// Compiles (or takes from the cache), links and instantiates the new version.
    ///
    /// wasmtime compiles a component's functions in parallel on rayon's pool; in the shared global
    /// pool a 12 MB JavaScript component's thousands of tasks would queue every other compile behind
    /// them, so each job compiles in a pool of its own and the OS shares the cores between them.
    pub fn compile(self) -> Compiled {
        let started = Instant::now();
        let load = || plugins::load(&self.runtime, &self.source, &self.cache_dir, None);
        let plugin = match rayon::ThreadPoolBuilder::new().build() {
            Ok(pool) => pool.install(load),
            Err(error) => {
                tracing::warn!(%error, "Cannot start a compile thread pool; compiling in the shared one.");
                load()
            }
        };
        Compiled {
            source: self.source,
            plugin,
            took: started.elapsed(),
        }
    }
}

/// What compiling a [`Job`] gave, for [`Folder::install`].
#[derive(Debug)]
pub struct Compiled {
    source: Source,
    plugin: Result<Plugin, LoadError>,
    took: Duration,
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

    /// Reads the folder and loads what changed in it, compiling one file after another; the
    /// pipeline made of what runs now, or `None` when nothing changed. For the start, when nothing
    /// runs yet, and the tools; the watcher uses [`Folder::scan`] instead. Compiling is CPU-bound:
    /// call this off the async threads.
    pub fn reconcile(&mut self) -> Option<Pipeline> {
        let (changed, jobs) = self.scan();
        if jobs.is_empty() {
            return changed;
        }
        for job in jobs {
            if job.source.size() > LARGE {
                tracing::info!(
                    plugin = job.name(),
                    bytes = job.source.size(),
                    "Loading a large plugin: compiling it, unless it is in the cache, takes a while."
                );
            }
            self.put(job.compile());
        }
        Some(self.pipeline())
    }

    /// Reads the folder: unloads what is gone, refuses what cannot be read, and returns the new
    /// versions to compile, with the pipeline (showing them as compiling) when anything changed.
    pub fn scan(&mut self) -> (Option<Pipeline>, Vec<Job>) {
        let mut changed = false;
        let mut jobs = Vec::new();
        let mut present = BTreeSet::new();
        for path in plugins::plugin_files(&self.config.dir) {
            let name = plugins::plugin_name(&path);
            present.insert(name.clone());
            match self.read(name, path) {
                Reading::Unchanged => {}
                Reading::Refused => changed = true,
                Reading::New(source) => {
                    changed = true;
                    jobs.push(Job {
                        source,
                        runtime: self.runtime.clone(),
                        cache_dir: self.config.cache_dir.clone(),
                    });
                }
            }
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
        (changed.then(|| self.pipeline()), jobs)
    }

    /// What `name`'s file holds now, compared with what was last read.
    fn read(&mut self, name: String, path: PathBuf) -> Reading {
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
                entry.compiling = None;
                return if changed {
                    Reading::Refused
                } else {
                    Reading::Unchanged
                };
            }
        };
        if entry.seen.as_ref() == Some(&source.version) {
            return Reading::Unchanged;
        }
        entry.seen = Some(source.version.clone());
        entry.compiling = Some(Compiling {
            name,
            sha256: source.version.sha256.clone(),
            bytes: source.size(),
            since: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        });
        Reading::New(source)
    }

    /// Puts a compiled version in place, or records why it was refused; the new pipeline, or `None`
    /// when the file changed or went while it compiled (its newer reading decides).
    pub fn install(&mut self, compiled: Compiled) -> Option<Pipeline> {
        self.put(compiled).then(|| self.pipeline())
    }

    /// [`Folder::install`] without making the pipeline: whether the compiled version was still
    /// the file's.
    fn put(&mut self, compiled: Compiled) -> bool {
        let Compiled {
            source,
            plugin,
            took,
        } = compiled;
        let name = source.name.clone();
        let Some(entry) = self.entries.get_mut(&name) else {
            return false;
        };
        if entry.seen.as_ref() != Some(&source.version) {
            tracing::debug!(plugin = name, sha256 = %source.version.sha256, "Dropped a compiled plugin version: its file changed meanwhile.");
            return false;
        }
        entry.compiling = None;
        match plugin {
            Ok(plugin) => {
                tracing::info!(
                    plugin = name,
                    roles = ?plugin.roles,
                    sha256 = %plugin.version.sha256,
                    cache = ?plugin.cache,
                    took_ms = took.as_millis() as u64,
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
                    path: source.path,
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
            loaded.compiling.extend(entry.compiling.clone());
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

/// What reading one plugin file found.
enum Reading {
    Unchanged,
    /// It cannot be read, and was not refused for that already.
    Refused,
    /// A version not seen before, to compile.
    New(Source),
}
