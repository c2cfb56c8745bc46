//! WebAssembly component plugins: the sandbox they run in ([`Runtime`]: one engine, epoch deadlines,
//! memory limits, WASI with nothing to reach), the on-disk cache of compiled components, discovery of
//! the plugin folder, and typed calls into each plugin's roles. The pipeline composes loaded plugins;
//! nothing here knows about the feed or the sinks.

mod bindings;
mod cache;
mod convert;
mod host;
mod manifest;
mod plugin;
mod registry;
mod runtime;

use std::path::PathBuf;

pub use cache::CacheOutcome;
pub use manifest::Manifest;
pub use plugin::{CallError, Plugin, Role, Stats};
pub use registry::{Refused, load_dir, load_file};
pub use runtime::Runtime;

use crate::config::ConfigError;

/// The engine could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
}

impl PluginError {
    fn engine(error: wasmtime::Error) -> Self {
        PluginError::Engine(format!("{error:#}"))
    }
}

/// Why one plugin file was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}", path = path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad manifest: {0}")]
    Manifest(ConfigError),
    #[error("plugin {name}: {reason}")]
    Compile { name: String, reason: String },
    #[error("plugin {name} imports what this host does not provide: {reason}")]
    Imports { name: String, reason: String },
    #[error("plugin {name} exports {interface} with a different signature: {reason}")]
    Signature {
        name: String,
        interface: &'static str,
        reason: String,
    },
    #[error(
        "plugin {name} exports none of plant-monitor:plugin/filter, enrich or route @0.1.0; build it for one of the worlds in wit/"
    )]
    NoRole { name: String },
}
