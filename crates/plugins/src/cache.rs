//! Compiled components cached on disk, keyed by the SHA-256 of the component's bytes and the engine's
//! compatibility hash, so a plugin is compiled once per content and engine, not once per start. Compiling
//! a JavaScript or Python component takes tens of seconds; loading its cached form, milliseconds.

use std::hash::{Hash, Hasher};
use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::WasmError;

/// Whether a component came from the cache or had to be compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The compiled component for `bytes`, from `dir` when cached there, else compiled and cached.
pub fn compile(
    engine: &Engine,
    dir: &Path,
    bytes: &[u8],
    sha256: &str,
) -> Result<(Component, CacheOutcome), CompileError> {
    let path = dir.join(format!("{sha256}-{:016x}.cwasm", engine_hash(engine)));
    if path.exists() {
        match deserialize(engine, &path) {
            Ok(component) => return Ok((component, CacheOutcome::Hit)),
            Err(error) => tracing::warn!(
                path = %path.display(), %error,
                "A cached compiled plugin could not be loaded; compiling it again."
            ),
        }
    }
    let component = Component::from_binary(engine, bytes)
        .map_err(|error| CompileError::Invalid(error.into()))?;
    // The cache only saves time: a plugin that compiled runs even when its compiled form cannot be kept.
    match component.serialize() {
        Ok(serialized) => {
            if let Err(error) = write_atomically(&path, &serialized) {
                tracing::warn!(path = %path.display(), %error, "Cannot cache a compiled plugin; it will be compiled again at the next start.");
            }
        }
        Err(error) => tracing::warn!(%error, "Cannot serialize a compiled plugin for the cache."),
    }
    Ok((component, CacheOutcome::Miss))
}

/// Loads a compiled component written by [`compile`].
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime trusts precompiled code. The file is one this process family wrote into its own
    // cache directory, under a name that binds it to the source's hash and to this engine's
    // configuration, and it is written by rename, so it is never seen half-written.
    unsafe { Component::deserialize_file(engine, path) }
}

/// Writes to a temporary file beside `path` and renames it into place, so readers see all or nothing.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

fn engine_hash(engine: &Engine) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}
