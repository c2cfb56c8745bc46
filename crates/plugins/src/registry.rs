//! Discovery: every `*.wasm` in the plugin folder becomes a [`Plugin`], or is refused with the reason
//! while the others load. Compilation happens here, off the event path, through the on-disk cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::LoadError;
use super::bindings::{enrich, filter, route};
use super::cache;
use super::manifest::Manifest;
use super::plugin::{Exports, Parts, Plugin, Role};
use super::runtime::Runtime;

/// A file in the plugin folder that did not load, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    pub path: PathBuf,
    pub reason: String,
}

/// Loads every plugin in `dir`, in file-name order. A missing folder means no plugins.
pub fn load_dir(
    runtime: &Runtime,
    dir: &Path,
    cache_dir: &Path,
) -> (Vec<Arc<Plugin>>, Vec<Refused>) {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm") && path.is_file())
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(dir = %dir.display(), "There is no plugin folder; running without plugins.");
            Vec::new()
        }
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "The plugin folder cannot be read; running without plugins.");
            Vec::new()
        }
    };
    files.sort();
    let mut loaded = Vec::new();
    let mut refused = Vec::new();
    for path in files {
        match load_file(runtime, &path, cache_dir, None) {
            Ok(plugin) => {
                tracing::info!(
                    plugin = %plugin.name,
                    roles = ?plugin.roles,
                    sha256 = %plugin.sha256,
                    cache = ?plugin.cache,
                    "Loaded a plugin."
                );
                loaded.push(Arc::new(plugin));
            }
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "Refused a plugin; the others run on.");
                refused.push(Refused {
                    path,
                    reason: error.to_string(),
                });
            }
        }
    }
    (loaded, refused)
}

/// Loads one component; `manifest` replaces the one beside the file when given.
pub fn load_file(
    runtime: &Runtime,
    path: &Path,
    cache_dir: &Path,
    manifest: Option<Manifest>,
) -> Result<Plugin, LoadError> {
    let name = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let manifest = match manifest {
        Some(manifest) => manifest,
        None => Manifest::beside(path).map_err(LoadError::Manifest)?,
    };
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let sha256 = cache::sha256_hex(&bytes);
    let (component, cache) =
        cache::compile(runtime.engine(), cache_dir, &bytes, &sha256).map_err(|source| {
            LoadError::Compile {
                name: name.clone(),
                source,
            }
        })?;
    let pre = runtime
        .linker()
        .instantiate_pre(&component)
        .map_err(|error| LoadError::Imports {
            name: name.clone(),
            source: error.into(),
        })?;
    let exported = |role: Role| component.get_export_index(None, role.interface()).is_some();
    let signature = |role: Role, error: wasmtime::Error| LoadError::Signature {
        name: name.clone(),
        interface: role.interface(),
        source: error.into(),
    };
    let exports = Exports {
        filter: exported(Role::Filter)
            .then(|| filter::GuestIndices::new(&pre).map_err(|e| signature(Role::Filter, e)))
            .transpose()?,
        enrich: exported(Role::Enrich)
            .then(|| enrich::GuestIndices::new(&pre).map_err(|e| signature(Role::Enrich, e)))
            .transpose()?,
        route: exported(Role::Route)
            .then(|| route::GuestIndices::new(&pre).map_err(|e| signature(Role::Route, e)))
            .transpose()?,
    };
    if exports.filter.is_none() && exports.enrich.is_none() && exports.route.is_none() {
        return Err(LoadError::NoRole { name });
    }
    let plugin = Plugin::new(Parts {
        name: name.clone(),
        sha256,
        manifest,
        cache,
        runtime: runtime.clone(),
        pre,
        exports,
    });
    plugin
        .instantiate_now()
        .map_err(|source| LoadError::Instantiate { name, source })?;
    Ok(plugin)
}
