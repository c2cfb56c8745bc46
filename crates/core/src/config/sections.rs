//! The configuration sections and their documented defaults. Each default here is the value shown in
//! `config/plant-monitor.toml`; keep the two in step.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use http::HeaderMap;
use serde::Deserialize;

use super::url::{DatabaseUrl, HttpUrl};

/// A count known when this is compiled, which must not be 0.
const fn count(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("a count is at least 1"),
    }
}

/// `[server]`: the HTTP API.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the API listens on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// When set, every `/v1` request that may change something, and every read of operational data
    /// (sinks, deliveries, leases, plugins, stats), needs `Authorization: Bearer <token>`. Default
    /// none (an empty string means none too).
    #[serde(deserialize_with = "super::optional::string")]
    pub api_token: Option<String>,
    /// With `api_token` set, whether reading plants and the journal needs the token too. The
    /// operational reads (sinks, deliveries, leases, plugins, stats) always do. Default false.
    pub protect_reads: bool,
    /// How long in-flight requests may finish after SIGTERM. Default 20 s.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub shutdown_grace: Duration,
    /// Connections served at once; more wait to be accepted. Default 1024.
    pub max_connections: NonZeroU32,
    /// Requests under `/v1` handled at once; more wait their turn (within `request_timeout`), so a
    /// burst of heavy reads cannot take every database connection. The probes never wait. Default 64.
    pub max_requests: NonZeroU32,
    /// How long a client may take to send a request's headers, on a new or an idle connection,
    /// before the connection is closed. Default 10 s.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub header_read_timeout: Duration,
    /// How long a request may take, its body included, before it is answered 503. Default 30 s.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub request_timeout: Duration,
    /// Clients of the live event stream (`/v1/events/stream`) served at once; more are answered 503.
    /// Each holds a connection for as long as it listens, and the process's one journal follower
    /// fans every entry out to each. Default 64.
    pub max_stream_clients: NonZeroU32,
}

/// Shows whether there is a token, never the token.
impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("api_token", &self.api_token.as_ref().map(|_| "***"))
            .field("protect_reads", &self.protect_reads)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("max_connections", &self.max_connections)
            .field("max_requests", &self.max_requests)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_stream_clients", &self.max_stream_clients)
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_token: None,
            protect_reads: false,
            max_connections: count(1024),
            max_requests: count(64),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_stream_clients: count(64),
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

/// `[database]`: where plants, the journal, the outbox and the leases live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (the file and its folder are created if missing) or
    /// `postgres://USER@HOST/DATABASE`. Default `sqlite://data/plant-monitor.db`.
    pub url: DatabaseUrl,
    /// Upper bound on pooled connections. Default 8.
    pub max_connections: NonZeroU32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: DatabaseUrl::default(),
            max_connections: count(8),
        }
    }
}

/// `[feed]`: how changes are read from the journal and fed through the pipeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// This process's name as a lease holder, to which a random suffix is added so it is unique per
    /// process start. Default: the host name.
    pub instance_id: String,
    /// The regions this process may lead; `"*"` stands for every region present in the data, new
    /// ones included. Default `["*"]`.
    pub regions: Vec<String>,
    /// How long a region's lease lasts unless renewed (every third of it). A crashed leader is
    /// replaced within about this long. Default 10 s.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub lease_ttl: Duration,
    /// Upper bound on latency when no wake-up signal arrives. Default 200 ms.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub poll_interval: Duration,
    /// Journal entries read and committed per transaction. Default 500.
    pub batch_size: NonZeroU32,
    /// When to emit `snapshot` events for every existing plant. Default `on-first-lease`.
    pub snapshot: SnapshotMode,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            instance_id: String::new(),
            regions: vec![String::from("*")],
            lease_ttl: Duration::from_secs(10),
            poll_interval: Duration::from_millis(200),
            batch_size: count(500),
            snapshot: SnapshotMode::OnFirstLease,
        }
    }
}

/// When the feed emits a `snapshot` event per existing plant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotMode {
    /// Once per region and database: the first time any instance takes the region's lease.
    #[default]
    OnFirstLease,
    /// Every time an instance takes a region's lease.
    OnEveryLease,
    Never,
}

/// `[capture]`: how changes to plants reach the journal.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Default `trigger`. `migrate` (and `serve`, which migrates first) switches the database to it.
    pub mode: CaptureMode,
}

/// Who writes the journal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureMode {
    /// Triggers on `power_plants`, in each writer's transaction. The only mode on SQLite.
    #[default]
    Trigger,
    /// PostgreSQL only: the capture leader (lease `capture`) turns the changes of a logical
    /// replication slot (`pgoutput`) into the same journal entries, so writers pay nothing for them.
    Wal,
}

impl CaptureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMode::Trigger => "trigger",
            CaptureMode::Wal => "wal",
        }
    }
}

/// `[plugins]`: the WebAssembly plugin folder and the sandbox every plugin runs in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Every `*.wasm` here is a plugin. Default `plugins/dist`.
    pub dir: PathBuf,
    /// Whether changes to `dir` take effect while running (else it is read once, at start). Default on.
    pub watch: bool,
    /// How long writes to a plugin file must pause before it is read, unless its writer closes it or
    /// renames it into place first. Default 200 ms.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub watch_debounce: Duration,
    /// Where compiled plugins are cached by content hash. Default `data/plugin-cache`.
    pub cache_dir: PathBuf,
    /// Longest a single plugin call may run. Default 100 ms.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub call_timeout: Duration,
    /// Most linear memory one plugin instance may use, all its memories together. Default 64 MiB.
    #[serde(deserialize_with = "super::byte_size::deserialize")]
    pub memory_limit: u64,
    /// Most core module instances one plugin component may contain (at most 256). Default 32; a
    /// componentize-py plugin has 14.
    pub max_core_instances: NonZeroU32,
    /// Most linear memories one plugin component may define (at most 16). Default 4.
    pub max_memories: NonZeroU32,
    /// Most tables one plugin component may define (at most 64). Default 16.
    pub max_tables: NonZeroU32,
    /// What a plugin error does to the event, unless the plugin's manifest says otherwise.
    pub on_error: OnError,
    /// Largest event an enricher may return, counting its text. Default 256 KiB.
    #[serde(deserialize_with = "super::byte_size::deserialize")]
    pub max_event_size: u64,
    /// Most labels an event may carry after the enrichers. Default 64.
    pub max_labels: u32,
    /// Largest label, key and value together. Default 1 KiB.
    #[serde(deserialize_with = "super::byte_size::deserialize")]
    pub max_label_size: u64,
    /// Most sink names one router answer may hold. Default 64.
    pub max_route_sinks: u32,
    /// Longest error reason kept from a plugin; a longer one is cut. Default 1 KiB.
    #[serde(deserialize_with = "super::byte_size::deserialize")]
    pub max_reason_size: u64,
    /// Longest `host.log` message kept; a longer one is cut. Default 4 KiB.
    #[serde(deserialize_with = "super::byte_size::deserialize")]
    pub max_log_size: u64,
    /// `host.log` messages kept per plugin instance and second; the rest are dropped and counted.
    /// Default 100.
    pub max_logs_per_second: u32,
    /// A new version that replaced a running one is judged on this many first events; 0 never rolls
    /// back. Default 20.
    pub rollback_after: u32,
    /// More than this share of those events failing rolls the new version back. Default 0.5.
    pub rollback_share: f64,
    /// Failures within `quarantine_window` after which a plugin is quarantined: not called for
    /// `quarantine_backoff`, its events failing at once under its `on_error`; 0 never quarantines.
    /// Default 20.
    pub quarantine_failures: u32,
    /// Default 1 minute.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub quarantine_window: Duration,
    /// The first quarantine's length; each failed trial after one doubles it, up to 64 times. Default
    /// 30 s.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub quarantine_backoff: Duration,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: PathBuf::from("plugins/dist"),
            watch: true,
            watch_debounce: Duration::from_millis(200),
            cache_dir: PathBuf::from("data/plugin-cache"),
            call_timeout: Duration::from_millis(100),
            memory_limit: 64 << 20,
            max_core_instances: count(32),
            max_memories: count(4),
            max_tables: count(16),
            on_error: OnError::DeadLetter,
            max_event_size: 256 << 10,
            max_labels: 64,
            max_label_size: 1 << 10,
            max_route_sinks: 64,
            max_reason_size: 1 << 10,
            max_log_size: 4 << 10,
            max_logs_per_second: 100,
            rollback_after: 20,
            rollback_share: 0.5,
            quarantine_failures: 20,
            quarantine_window: Duration::from_secs(60),
            quarantine_backoff: Duration::from_secs(30),
        }
    }
}

/// What happens to an event when a plugin fails on it (returns an error, traps, or breaks a limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// The event is recorded as failed, with the plugin's name and reason; the feed goes on.
    #[default]
    DeadLetter,
    /// The plugin is passed over for that event.
    Skip,
    /// The feed stops at that event and retries it with backoff until it passes.
    Halt,
}

/// `[routing]`: where events go when no route plugin is loaded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Sink names, or `"*"` for every configured sink. Default `["*"]`.
    pub default_sinks: Vec<String>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            default_sinks: vec!["*".into()],
        }
    }
}

/// `[retention]`: how long finished work is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Delivered outbox rows, and processed journal entries with nothing left to deliver, older than
    /// this are pruned in the background. Default 7 days.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub delivered: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            delivered: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// `[sinks.NAME]`: one HTTP endpoint events are delivered to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Where events are POSTed; required.
    pub url: HttpUrl,
    /// Per-request timeout. Default 10 s.
    #[serde(
        default = "defaults::sink_timeout",
        deserialize_with = "super::duration::deserialize"
    )]
    pub timeout: Duration,
    /// Requests in flight at once; per-plant order is kept whatever this is. Default 1.
    #[serde(default = "defaults::one")]
    pub max_in_flight: NonZeroU32,
    /// Events per request; above 1 a request carries a JSON array
    /// (`application/cloudevents-batch+json`). Default 1.
    #[serde(default = "defaults::one")]
    pub batch_max: NonZeroU32,
    /// Failed attempts after which a delivery becomes a dead letter. Default 12.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: NonZeroU32,
    /// Standard Webhooks signing secrets (`whsec_…`, or `env:NAME` to read one from the environment):
    /// one string, or a list during a rotation (each signs). Default: requests are not signed.
    #[serde(default)]
    pub secret: Secrets,
    /// First retry delay; doubles per attempt, with full jitter. Default 250 ms.
    #[serde(
        default = "defaults::backoff_initial",
        deserialize_with = "super::duration::deserialize"
    )]
    pub backoff_initial: Duration,
    /// Longest retry delay. Default 5 min.
    #[serde(
        default = "defaults::backoff_max",
        deserialize_with = "super::duration::deserialize"
    )]
    pub backoff_max: Duration,
    /// Extra headers sent with every request.
    #[serde(default, deserialize_with = "super::headers::deserialize")]
    pub headers: HeaderMap,
    /// Probed with a GET every `probe_interval`; status and response time are kept as a short time
    /// series in `/v1/sinks`. Default: no probe (an empty string means none too).
    #[serde(default, deserialize_with = "super::optional::http_url")]
    pub health_url: Option<HttpUrl>,
    /// Time between health probes. Default 30 s.
    #[serde(
        default = "defaults::probe_interval",
        deserialize_with = "super::duration::deserialize"
    )]
    pub probe_interval: Duration,
}

mod defaults {
    use std::num::NonZeroU32;
    use std::time::Duration;

    pub fn sink_timeout() -> Duration {
        Duration::from_secs(10)
    }

    pub fn one() -> NonZeroU32 {
        NonZeroU32::MIN
    }

    pub fn backoff_initial() -> Duration {
        Duration::from_millis(250)
    }

    pub fn backoff_max() -> Duration {
        Duration::from_secs(300)
    }

    pub fn max_attempts() -> NonZeroU32 {
        super::count(12)
    }

    pub fn probe_interval() -> Duration {
        Duration::from_secs(30)
    }
}

/// One signing secret or several (a rotation), as written in the configuration.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "OneOrMany")]
pub struct Secrets(pub Vec<String>);

/// Shows how many secrets there are, and the environment variables named, never a secret.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<&str> = (self.0.iter())
            .map(|secret| match secret.strip_prefix("env:") {
                Some(_) => secret.as_str(),
                None => "***",
            })
            .collect();
        f.debug_tuple("Secrets").field(&shown).finish()
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for Secrets {
    fn from(value: OneOrMany) -> Self {
        match value {
            OneOrMany::One(secret) if secret.is_empty() => Secrets(Vec::new()),
            OneOrMany::One(secret) => Secrets(vec![secret]),
            OneOrMany::Many(secrets) => Secrets(secrets),
        }
    }
}
