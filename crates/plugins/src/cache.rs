//! Compiled components cached on disk, keyed by the SHA-256 of the component's bytes and the engine's
//! compatibility hash, so a plugin is compiled once per content and engine, not once per start. Compiling
//! a JavaScript or Python component takes tens of seconds; loading its cached form, milliseconds.
//!
//! A cached file is native code that runs as it is, so the cache is guarded like code: the folder is
//! made with mode 0700 and refused when another user owns it or others may write to it; each file
//! carries an HMAC-SHA256 under a key kept beside it (mode 0600) and is refused, and compiled again,
//! when the tag does not match; files are written through a fresh temporary file of a random name (so a
//! planted symlink cannot redirect the write) and renamed into place. The cache only saves time: when
//! it cannot be used, plugins are compiled and run all the same.

use std::fs::{DirBuilder, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::WasmError;

/// Whether a component came from the cache or had to be compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheOutcome {
    Hit,
    Miss,
}

/// Why a component could not be made ready to run.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(#[source] WasmError),
    #[error("larger than {key} allows: {source}")]
    OverCap {
        key: &'static str,
        source: WasmError,
    },
}

/// What wasmtime says when a component is larger than the sandbox's caps allow (it has no error
/// type for it), and the key that sets each cap.
const CAPS: [(&str, &str); 6] = [
    ("core module instances", "plugins.max_core_instances"),
    ("Wasm linear memories", "plugins.max_memories"),
    ("defined memories count", "plugins.max_memories"),
    ("tables, which exceeds", "plugins.max_tables"),
    ("defined tables count", "plugins.max_tables"),
    ("memory has a minimum byte size", "plugins.memory_limit"),
];

impl From<wasmtime::Error> for CompileError {
    fn from(error: wasmtime::Error) -> CompileError {
        let says = |text: &str| error.chain().any(|cause| cause.to_string().contains(text));
        match CAPS.iter().find(|(text, _)| says(text)) {
            Some(&(_, key)) => CompileError::OverCap {
                key,
                source: error.into(),
            },
            None => CompileError::Invalid(error.into()),
        }
    }
}

/// Why the cache folder is not used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot prepare the plugin cache {path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the plugin cache {path} is not safe to load code from: {reason}", path = path.display())]
    Unsafe { path: PathBuf, reason: String },
}

/// The length of a cache file's tag, which comes first.
const TAG: usize = 32;

/// The file beside the cached components holding the key of their tags.
const KEY_FILE: &str = "cache.key";

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A cache folder found safe, with its key.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    key: Vec<u8>,
}

impl Cache {
    /// Makes `dir` (mode 0700) if missing, checks that only this user may write to it, and reads its
    /// key, making one if there is none.
    pub fn open(dir: &Path) -> Result<Cache, CacheError> {
        let io = |source| CacheError::Io {
            path: dir.to_path_buf(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        owned_by_this_user(dir, 0o022)?;
        let key_path = dir.join(KEY_FILE);
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&key_path);
        match created {
            Ok(mut file) => {
                let mut key = vec![0; 32];
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut random| random.read_exact(&mut key))
                    .and_then(|()| file.write_all(&key))
                    .map_err(io)?;
                Ok(Cache {
                    dir: dir.to_path_buf(),
                    key,
                })
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                owned_by_this_user(&key_path, 0o077)?;
                let key = std::fs::read(&key_path).map_err(io)?;
                if key.len() != 32 {
                    return Err(CacheError::Unsafe {
                        path: key_path,
                        reason: format!("the key is {} bytes, not 32", key.len()),
                    });
                }
                Ok(Cache {
                    dir: dir.to_path_buf(),
                    key,
                })
            }
            Err(source) => Err(io(source)),
        }
    }

    fn tag(&self, serialized: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(serialized);
        mac
    }

    /// The cached component at `path`, if its tag is this cache's.
    fn load(&self, engine: &Engine, path: &Path) -> Result<Component, String> {
        let bytes = std::fs::read(path).map_err(|error| error.to_string())?;
        if bytes.len() < TAG {
            return Err("it is too short to carry a tag".into());
        }
        let (tag, serialized) = bytes.split_at(TAG);
        self.tag(serialized)
            .verify_slice(tag)
            .map_err(|_| "its tag does not match this cache's key".to_owned())?;
        deserialize(engine, serialized).map_err(|error| format!("{error:#}"))
    }

    /// Writes `serialized` with its tag to `path` through a fresh temporary file.
    fn store(&self, path: &Path, serialized: &[u8]) -> std::io::Result<()> {
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(&self.tag(serialized).finalize().into_bytes())?;
        file.write_all(serialized)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|error| error.error)?;
        Ok(())
    }
}

/// Refuses `path` unless this user owns it and none of the permission bits in `forbidden` is set.
fn owned_by_this_user(path: &Path, forbidden: u32) -> Result<(), CacheError> {
    let metadata = std::fs::symlink_metadata(path).map_err(|source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let unsafe_because = |reason: String| CacheError::Unsafe {
        path: path.to_path_buf(),
        reason,
    };
    if metadata.file_type().is_symlink() {
        return Err(unsafe_because("it is a symbolic link".into()));
    }
    let me = rustix::process::geteuid().as_raw();
    if metadata.uid() != me {
        return Err(unsafe_because(format!(
            "it belongs to user {}, not to this user ({me})",
            metadata.uid()
        )));
    }
    if metadata.mode() & forbidden != 0 {
        return Err(unsafe_because(format!(
            "its mode {:o} lets others in",
            metadata.mode() & 0o777
        )));
    }
    Ok(())
}

/// The compiled component for `bytes`, from the cache in `dir` when it holds it under its key, else
/// compiled (and cached, when the cache is usable).
pub fn compile(
    engine: &Engine,
    dir: &Path,
    bytes: &[u8],
    sha256: &str,
) -> Result<(Component, CacheOutcome), CompileError> {
    let cache = Cache::open(dir)
        .inspect_err(|error| {
            tracing::warn!(%error, "Not using the plugin cache; plugins are compiled at every start.")
        })
        .ok();
    let path = dir.join(format!("{sha256}-{:016x}.cwasm", engine_hash(engine)));
    if let Some(cache) = &cache
        && path.exists()
    {
        match cache.load(engine, &path) {
            Ok(component) => return Ok((component, CacheOutcome::Hit)),
            Err(reason) => tracing::warn!(
                path = %path.display(), %reason,
                "Refused a cached compiled plugin; compiling it again."
            ),
        }
    }
    let component = Component::from_binary(engine, bytes)?;
    if let Some(cache) = &cache {
        match component.serialize() {
            Ok(serialized) => {
                if let Err(error) = cache.store(&path, &serialized) {
                    tracing::warn!(path = %path.display(), %error, "Cannot cache a compiled plugin; it will be compiled again at the next start.");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Cannot serialize a compiled plugin for the cache.")
            }
        }
    }
    Ok((component, CacheOutcome::Miss))
}

/// Loads a compiled component written by [`Cache::store`], once its tag has been checked.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, serialized: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime trusts precompiled code. These bytes come from a folder only this user may
    // write to, and carry an HMAC under a key only this user may read, checked just before: they are
    // what this process family serialized, under a name bound to the source's hash and this engine.
    unsafe { Component::deserialize(engine, serialized) }
}

fn engine_hash(engine: &Engine) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}
