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

    /// Installs an example plugin under its own name with the manifest it ships with.
    pub fn example(self, name: &str) -> PluginDir {
        let manifest = std::fs::read_to_string(built().0.join(format!("{name}.toml"))).ok();
        self.add(name, name, manifest.as_deref())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
