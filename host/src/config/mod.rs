//! Configuration: the TOML file, the documented environment overrides and the built-in defaults, merged
//! into one validated [`Config`]. Every key is optional. An unknown key, a wrong type or a bad value is
//! refused with one line that names the file (or variable), the key and what is wrong, because an operator
//! reading a crash-looping pod's log should not have to guess which of forty keys was mistyped.

mod duration;
mod error;
mod sections;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use error::ConfigError;
pub use sections::{DatabaseConfig, LogConfig, LogFormat, ServerConfig};

/// Where `serve` and `migrate` look when no `-c FILE` is given.
pub const DEFAULT_PATH: &str = "config/plant-monitor.toml";

/// The whole configuration of one process.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub database: DatabaseConfig,
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
        let deserializer = toml::Deserializer::parse(text)
            .map_err(|error| ConfigError::from_toml(path, text, String::new(), error))?;
        serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let key = error.path().to_string();
            ConfigError::from_toml(path, text, key, error.into_inner())
        })
    }

    /// Applies the documented `PLANT_MONITOR_*` overrides, reading variables through `var`.
    pub fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        if let Some(url) = var("PLANT_MONITOR_DATABASE_URL") {
            self.database.url = url;
        }
        if let Some(listen) = var("PLANT_MONITOR_LISTEN") {
            self.server.listen = listen.parse().map_err(|error| ConfigError::Env {
                var: "PLANT_MONITOR_LISTEN",
                message: format!("{error} (expected HOST:PORT, e.g. 127.0.0.1:8080)"),
            })?;
        }
        if let Some(token) = var("PLANT_MONITOR_API_TOKEN") {
            self.server.api_token = token;
        }
        Ok(self)
    }

    /// Checks what the types alone cannot.
    pub fn validate(&self, source: &Source) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            source_name: source.to_string(),
            key: key.to_owned(),
            message,
        };
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")) {
            return Err(invalid(
                "database.url",
                format!("unsupported database URL {url:?}: this build supports sqlite://PATH"),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid(
                "database.max_connections",
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
