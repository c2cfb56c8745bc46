//! A plugin's manifest: `NAME.toml` beside `NAME.wasm`, optional. It sets the plugin's place in its
//! stage, its error policy, and the strings it reads through `host.config`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use plant_monitor_core::config::{self, ConfigError, OnError};

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Position within each stage the plugin takes part in; lower runs first. Defaults per role.
    pub order: Option<i64>,
    /// Overrides `[plugins] on_error` for this plugin.
    pub on_error: Option<OnError>,
    /// Read by the plugin through `host.config(key)`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads the manifest beside `wasm`, or the empty manifest if there is none.
    pub fn beside(wasm: &Path) -> Result<Manifest, ConfigError> {
        let path = wasm.with_extension("toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => config::parse_toml(&text, &path),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }
}
