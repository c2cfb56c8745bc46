//! Configuration: the TOML file, the documented environment overrides and the built-in defaults, merged
//! into one validated [`Config`]. Every key is optional. An unknown key, a wrong type or a bad value is
//! refused with one line that names the file (or variable), the key and what is wrong, because an operator
//! reading a crash-looping pod's log should not have to guess which of forty keys was mistyped.

mod byte_size;
mod duration;
mod error;
mod headers;
mod optional;
mod sections;
mod url;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use error::ConfigError;
pub use sections::{
    CaptureConfig, CaptureMode, DatabaseConfig, FeedConfig, LogConfig, LogFormat, OnError,
    PluginsConfig, RetentionConfig, RoutingConfig, Secrets, ServerConfig, SinkConfig, SnapshotMode,
};
pub use url::{Backend, DatabaseUrl, HttpUrl};

/// Where `serve` and `migrate` look when no `-c FILE` is given.
pub const DEFAULT_PATH: &str = "config/plant-monitor.toml";

/// The whole configuration of one process.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub database: DatabaseConfig,
    pub feed: FeedConfig,
    pub capture: CaptureConfig,
    pub plugins: PluginsConfig,
    pub routing: RoutingConfig,
    pub sinks: BTreeMap<String, SinkConfig>,
    pub retention: RetentionConfig,
}

/// Where the configuration came from, for messages that must name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    BuiltIn,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::BuiltIn => f.write_str("built-in defaults"),
        }
    }
}

impl Config {
    /// Loads the configuration the way the command line promises: `explicit` must exist when given;
    /// otherwise [`DEFAULT_PATH`] is read if present, else the built-in defaults are used. The process
    /// environment's documented overrides are applied last.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, Source), ConfigError> {
        let path = match explicit {
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_PATH)).filter(|p| p.exists()),
        };
        let (config, source) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                (Config::from_toml(&text, &path)?, Source::File(path))
            }
            None => (Config::default(), Source::BuiltIn),
        };
        let config = config.with_env(|name| std::env::var(name).ok())?;
        config.validate(&source)?;
        Ok((config, source))
    }

    /// Parses one TOML document; `path` only names the file in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        parse_toml(text, path)
    }

    /// Applies the documented `PLANT_MONITOR_*` overrides, reading variables through `var`.
    pub fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        if let Some(url) = var("PLANT_MONITOR_DATABASE_URL") {
            self.database.url = url.parse().map_err(|message| ConfigError::Env {
                var: "PLANT_MONITOR_DATABASE_URL",
                message,
            })?;
        }
        if let Some(listen) = var("PLANT_MONITOR_LISTEN") {
            self.server.listen = listen.parse().map_err(|error| ConfigError::Env {
                var: "PLANT_MONITOR_LISTEN",
                message: format!("{error} (expected HOST:PORT, e.g. 127.0.0.1:8080)"),
            })?;
        }
        if let Some(token) = var("PLANT_MONITOR_API_TOKEN") {
            self.server.api_token = Some(token).filter(|token| !token.is_empty());
        }
        if let Some(dir) = var("PLANT_MONITOR_PLUGINS_DIR") {
            self.plugins.dir = dir.into();
        }
        if let Some(regions) = var("PLANT_MONITOR_REGIONS") {
            self.feed.regions = regions
                .split(',')
                .map(str::trim)
                .filter(|region| !region.is_empty())
                .map(String::from)
                .collect();
        }
        Ok(self)
    }
}

/// Parses a TOML document into `T`, reporting the first problem as `FILE:LINE:COLUMN: key `K`: what`.
/// Plugin manifests use it too, so every file an operator writes fails the same readable way.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
) -> Result<T, ConfigError> {
    let deserializer = toml::Deserializer::parse(text)
        .map_err(|error| ConfigError::from_toml(path, text, String::new(), error))?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let key = error.path().to_string();
        ConfigError::from_toml(path, text, key, error.into_inner())
    })
}

#[cfg(test)]
mod tests;
