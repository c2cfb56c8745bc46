//! Real plugin components for tests: `plugins/build` is run once per test process (it is incremental,
//! so after the first build it only checks), and each test assembles its own plugin folder from the
//! built components, with manifests of its choosing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tempfile::TempDir;

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
}

/// Runs `plugins/build` once; returns the folders of the example and the test components.
pub fn built() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(repo().join("plugins/build"))
            .current_dir(repo())
            .status()
            .expect("plugins/build runs");
        assert!(status.success(), "plugins/build failed");
        (
            repo().join("plugins/dist"),
            repo().join("plugins/dist-test"),
        )
    })
}

/// The built component of an example or test plugin, by name.
pub fn component(name: &str) -> PathBuf {
    let (examples, testing) = built();
    let file = format!("{name}.wasm");
    [examples.join(&file), testing.join(&file)]
        .into_iter()
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("no built component named {name}"))
}

/// A plugin folder of a test's own.
#[derive(Debug)]
pub struct PluginDir {
    dir: TempDir,
}

impl Default for PluginDir {
    fn default() -> Self {
        PluginDir {
            dir: tempfile::tempdir().expect("temporary folder"),
        }
    }
}

impl PluginDir {
    /// Installs component `source` as `NAME.wasm` with `manifest` (TOML) as `NAME.toml`, if any.
    pub fn add(self, name: &str, source: &str, manifest: Option<&str>) -> PluginDir {
        std::fs::copy(component(source), self.path().join(format!("{name}.wasm")))
            .expect("component copied");
        if let Some(manifest) = manifest {
            std::fs::write(self.path().join(format!("{name}.toml")), manifest)
                .expect("manifest written");
        }
        self
    }

    /// Installs the component `bytes` as `NAME.wasm`.
    pub fn add_bytes(self, name: &str, bytes: &[u8]) -> PluginDir {
        std::fs::write(self.path().join(format!("{name}.wasm")), bytes).expect("component written");
        self
    }

    /// Installs an example plugin under its own name with the manifest it ships with.
    pub fn example(self, name: &str) -> PluginDir {
        let manifest = std::fs::read_to_string(built().0.join(format!("{name}.toml"))).ok();
        self.add(name, name, manifest.as_deref())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The built component `source` with `count` more core modules instantiated in it, each defining
/// nothing but (with `memory_pages`) a linear memory of that many 64 KiB pages: the plugin behaves as
/// before, and holds `count` more core instances and memories, as a component made of many core modules
/// does.
pub fn with_extra_modules(source: &str, count: u32, memory_pages: Option<u64>) -> Vec<u8> {
    use wasm_encoder::{ComponentSection, MemorySection, MemoryType, Module, ModuleSection};
    let mut bytes = std::fs::read(component(source)).expect("component read");
    let modules = top_level_core_modules(&bytes);
    let mut extra = Module::new();
    if let Some(pages) = memory_pages {
        let mut memories = MemorySection::new();
        memories.memory(MemoryType {
            minimum: pages,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        extra.section(&memories);
    }
    let mut instances = wasm_encoder::InstanceSection::new();
    for _ in 0..count {
        instances.instantiate(modules, Vec::<(&str, wasm_encoder::ModuleArg)>::new());
    }
    // A component's sections may come in any order; these append to its index spaces.
    for section in [
        &ModuleSection(&extra) as &dyn ComponentSection,
        &instances as &dyn ComponentSection,
    ] {
        bytes.push(section.id());
        section.encode(&mut bytes);
    }
    bytes
}

/// How many core modules a component defines at its top level (the index the next one gets).
fn top_level_core_modules(component: &[u8]) -> u32 {
    let (mut modules, mut depth) = (0, 0usize);
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload.expect("a valid component") {
            wasmparser::Payload::ModuleSection { .. } => {
                if depth == 0 {
                    modules += 1;
                }
                depth += 1;
            }
            wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    modules
}
