//! What a plugin build in C, Go or Zig needs from plant-monitor, so that nobody installs
//! `wit-bindgen` or `wasm-tools` (a 6-minute `cargo install` each on two cores): [`bindings`] writes
//! the canonical-ABI glue for one world of the plugin WIT the host was built from, and
//! [`componentize`] turns the core module a compiler made into a plugin component, adapting its
//! WASI preview 1 imports with the reactor adapter of the host's own wasmtime release.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use wit_bindgen_core::{Files, WorldGenerator};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{PackageId, Resolve, WorldId};

/// The plugin WIT, as the host was built from it.
pub const WIT: &str = include_str!("../../../wit/plugin.wit");

/// The Go runtime support the generated Go code imports as `go.bytecodealliance.org/pkg`, shipped
/// with the generator (wit-bindgen-go 0.63 holds go-pkg v0.4.0) so Go builds need no module proxy.
static GO_PKG: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/go-pkg");

/// The folder under a Go bindings folder that holds [`GO_PKG`]; a project's `go.mod` points its
/// `replace go.bytecodealliance.org/pkg` there.
pub const GO_PKG_DIR: &str = "go-pkg";

/// The worlds a plugin can implement.
pub const WORLDS: [&str; 3] = ["filter-plugin", "enrich-plugin", "route-plugin"];

/// A guest language with a generator here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// C, also used by Zig through its C interop.
    C,
    Go,
}

/// What failed while making bindings or a component.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("{world:?} is not a plugin world; the worlds are {}", WORLDS.join(", "))]
    UnknownWorld { world: String },
    #[error("the plugin WIT does not parse")]
    Wit(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot generate the {language:?} bindings")]
    Generate {
        language: Language,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot write {path}", path = path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the module does not make a plugin component")]
    Componentize(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The plugin WIT, resolved, and the chosen world in it.
fn world(world: &str) -> Result<(Resolve, WorldId), GuestError> {
    if !WORLDS.contains(&world) {
        return Err(GuestError::UnknownWorld {
            world: world.to_owned(),
        });
    }
    let mut resolve = Resolve::default();
    let package: PackageId = resolve
        .push_str("plugin.wit", WIT)
        .map_err(|e| GuestError::Wit(e.into()))?;
    let id = resolve
        .select_world(&[package], Some(world))
        .map_err(|e| GuestError::Wit(e.into()))?;
    Ok((resolve, id))
}

/// Writes the bindings of `world` for `language` into `out`.
///
/// C gets `WORLD.h`, `WORLD.c` and `WORLD_component_type.o` (which the glue links in). Go gets the
/// generated packages and, under [`GO_PKG_DIR`], the runtime support they import.
pub fn bindings(language: Language, world_name: &str, out: &Path) -> Result<(), GuestError> {
    let (mut resolve, id) = world(world_name)?;
    let mut generator: Box<dyn WorldGenerator> = match language {
        Language::C => wit_bindgen_c::Opts::default().build(),
        Language::Go => wit_bindgen_go::Opts::default().build(),
    };
    let mut files = Files::default();
    generator
        .generate(&mut resolve, id, &mut files)
        .map_err(|source| GuestError::Generate {
            language,
            source: source.into(),
        })?;
    for (name, contents) in files.iter() {
        write(&out.join(name), contents)?;
    }
    if language == Language::Go {
        let dir = out.join(GO_PKG_DIR);
        std::fs::create_dir_all(&dir)
            .and_then(|()| GO_PKG.extract(&dir))
            .map_err(|source| GuestError::Write { path: dir, source })?;
    }
    Ok(())
}

fn write(path: &Path, contents: &[u8]) -> Result<(), GuestError> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent),
        None => Ok(()),
    }
    .and_then(|()| std::fs::write(path, contents))
    .map_err(|source| GuestError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The plugin component for `module`, a core module exporting `world`'s functions in the canonical
/// ABI (as the [`bindings`] make them). Whatever component type the module carries is replaced by
/// `world`'s from the host's WIT (Go's bindings embed none; C's embed the same). Its WASI preview 1
/// imports (Go's runtime, wasi-libc) are served by the reactor adapter, so the component imports
/// only WASI 0.2, which the host provides.
pub fn componentize(module: &[u8], world_name: &str) -> Result<Vec<u8>, GuestError> {
    let (resolve, id) = world(world_name)?;
    let componentize = || -> anyhow::Result<Vec<u8>> {
        let (stripped, _) = wit_component::metadata::decode(module)?;
        let mut module = stripped.unwrap_or_else(|| module.to_vec());
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            id,
            StringEncoding::UTF8,
            false,
        )?;
        ComponentEncoder::default()
            .validate(true)
            .module(&module)?
            .adapter(
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )?
            .encode()
    };
    componentize().map_err(|e| GuestError::Componentize(e.into()))
}
