//! Discovery: every `*.wasm` in the plugin folder becomes a [`Plugin`], or is refused with the reason
//! while the others load. Compilation happens here, off the event path, through the on-disk cache.

use std::path::{Path, PathBuf};
use std::time::Duration;

use plant_monitor_core::config::{self, ConfigError};
use wasmtime::component::Component;

use super::LoadError;
use super::bindings::{enrich, filter, route};
use super::cache;
use super::manifest::Manifest;
use super::plugin::{Exports, Parts, Plugin, Role};
use super::runtime::Runtime;

/// A file in the plugin folder that did not load, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Refused {
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// The component's hash, when the file could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub reason: String,
}

/// What identifies one version of a plugin on disk: its component and its manifest. Two sources with
/// the same version load the same plugin, so an unchanged file is never loaded again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileVersion {
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// The manifest's text, if there is one.
    pub manifest: Option<String>,
}

/// One plugin file as read from the folder, with its manifest beside it.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub path: PathBuf,
    pub version: FileVersion,
    bytes: Vec<u8>,
}

impl Source {
    /// The component's size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Reads `path` and the manifest beside it (`NAME.toml`), once each, so what is hashed is what
    /// is loaded.
    pub fn read(path: &Path) -> Result<Source, LoadError> {
        let name = plugin_name(path);
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let manifest_path = path.with_extension("toml");
        let manifest = match std::fs::read_to_string(&manifest_path) {
            Ok(text) => Some(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(LoadError::Manifest(ConfigError::Read {
                    path: manifest_path,
                    source,
                }));
            }
        };
        Ok(Source {
            name,
            path: path.to_path_buf(),
            version: FileVersion {
                sha256: cache::sha256_hex(&bytes),
                manifest,
            },
            bytes,
        })
    }

    /// The manifest this source's text says, or the empty one.
    fn manifest(&self) -> Result<Manifest, LoadError> {
        match &self.version.manifest {
            Some(text) => config::parse_toml(text, &self.path.with_extension("toml"))
                .map_err(LoadError::Manifest),
            None => Ok(Manifest::default()),
        }
    }
}

/// A plugin's name: its file name without `.wasm`.
pub fn plugin_name(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The plugin files in `dir`, in file-name order. A missing folder means none.
pub fn plugin_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm") && path.is_file())
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "The plugin folder cannot be read.");
            Vec::new()
        }
    };
    files.sort();
    files
}

/// Loads one component; `manifest` replaces the one beside the file when given.
pub fn load_file(
    runtime: &Runtime,
    path: &Path,
    cache_dir: &Path,
    manifest: Option<Manifest>,
) -> Result<Plugin, LoadError> {
    let source = Source::read(path)?;
    load(runtime, &source, cache_dir, manifest)
}

/// Loads a component read from the folder: compiled (or taken from the cache in `cache_dir`), linked,
/// its roles found, and instantiated once. `manifest` replaces the source's own when given.
pub fn load(
    runtime: &Runtime,
    source: &Source,
    cache_dir: &Path,
    manifest: Option<Manifest>,
) -> Result<Plugin, LoadError> {
    let name = source.name.clone();
    let manifest = match manifest {
        Some(manifest) => manifest,
        None => source.manifest()?,
    };
    let bytes = &source.bytes;
    let sha256 = source.version.sha256.clone();
    let (component, cache) =
        cache::compile(runtime.engine(), cache_dir, bytes, &sha256).map_err(|source| {
            LoadError::Compile {
                name: name.clone(),
                source,
            }
        })?;
    memory_images(&component).map_err(|error| LoadError::MemoryImages {
        name: name.clone(),
        source: error.into(),
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
        version: source.version.clone(),
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

/// Attempts at making a component's memory images before its load is refused.
const IMAGE_ATTEMPTS: u32 = 4;

/// Makes the copy-on-write images of `component`'s memories, which every instance of it maps. On
/// Linux each image is a memfd that wasmtime seals read-only, and the kernel refuses the seal with
/// `EBUSY` while it finds the file's pages held elsewhere, which passes. That refusal met at the
/// load's first instantiation once turned a good plugin away (a test process compiling and forking
/// on both cores). Made here, the images are retried after 10, 20 and 40 ms, and every instance
/// after reuses them; a load that still fails is refused with the reason.
fn memory_images(component: &Component) -> wasmtime::Result<()> {
    let mut attempt = 1;
    loop {
        match component.initialize_copy_on_write_image() {
            Err(error) if attempt < IMAGE_ATTEMPTS => {
                tracing::debug!(error = %format!("{error:#}"), attempt, "Making a plugin's memory images again.");
                std::thread::sleep(Duration::from_millis(5 << attempt));
                attempt += 1;
            }
            made => return made,
        }
    }
}
