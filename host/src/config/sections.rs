//! The configuration sections and their documented defaults. Each default here is the value shown in
//! `config/plant-monitor.toml`; keep the two in step.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// `[server]`: the HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the API listens on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// When non-empty, every non-GET `/v1` request needs `Authorization: Bearer <token>`.
    pub api_token: String,
    /// How long in-flight requests may finish after SIGTERM. Default 20 s.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_token: String::new(),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// `[log]`: how tracing output is formatted; `RUST_LOG` sets the levels.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// Human-readable lines, or one JSON object per line for log collectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// `[database]`: where plants, the journal and (later) the outbox live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH`; the file and its folder are created if missing. Default `sqlite://data/plant-monitor.db`.
    pub url: String,
    /// Upper bound on pooled connections. Default 8.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/plant-monitor.db".into(),
            max_connections: 8,
        }
    }
}
