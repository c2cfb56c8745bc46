//! WebAssembly component plugins: the sandbox they run in ([`Runtime`]: one engine, epoch deadlines,
//! memory limits, WASI with nothing to reach), the on-disk cache of compiled components, discovery of
//! the plugin folder, and typed calls into each plugin's roles. The pipeline composes loaded plugins;
//! nothing here knows about the feed or the sinks.

mod bindings;
mod breaker;
mod cache;
mod convert;
mod host;
mod limits;
mod manifest;
pub mod metrics;
mod plugin;
mod registry;
mod runtime;
mod wait;

use std::path::PathBuf;

pub use cache::{CacheOutcome, CompileError};
pub use manifest::Manifest;
pub use plugin::{CallError, Plugin, Role, Stats};
pub use registry::{FileVersion, Refused, Source, load, load_file, plugin_files, plugin_name};
pub use runtime::Runtime;

use plant_monitor_core::config::ConfigError;

/// The engine could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(#[from] WasmError),
}

/// An error from wasmtime as a [`std::error::Error`], so that it can be the `source()` of ours. It
/// shows wasmtime's whole chain of causes on one line, which is what a refused plugin's reason needs.
#[derive(Debug)]
pub struct WasmError(wasmtime::Error);

impl From<wasmtime::Error> for WasmError {
    fn from(error: wasmtime::Error) -> Self {
        WasmError(error)
    }
}

impl std::fmt::Display for WasmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for WasmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
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
    Manifest(#[source] ConfigError),
    #[error("plugin {name}: {source}")]
    Compile { name: String, source: CompileError },
    #[error("plugin {name} cannot make its memory images: {source}")]
    MemoryImages { name: String, source: WasmError },
    #[error("plugin {name} imports what this host does not provide: {source}")]
    Imports { name: String, source: WasmError },
    #[error("plugin {name} exports {interface} with a different signature: {source}")]
    Signature {
        name: String,
        interface: &'static str,
        source: WasmError,
    },
    #[error(
        "plugin {name} exports none of plant-monitor:plugin/filter, enrich or route @0.1.0; build it for one of the worlds in wit/"
    )]
    NoRole { name: String },
    #[error("plugin {name} {source}")]
    Instantiate { name: String, source: CallError },
}
