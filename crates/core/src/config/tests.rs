use std::path::Path;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("my.toml"))
}

fn error_line(text: &str) -> String {
    parse(text).expect_err("invalid").to_string()
}

/// Why `text` is refused, whether its types refuse it as it is parsed or the checks after.
fn refusal(text: &str) -> String {
    match parse(text) {
        Ok(config) => config
            .validate(&Source::BuiltIn)
            .expect_err(text)
            .to_string(),
        Err(error) => error.to_string(),
    }
}

#[test]
fn an_empty_file_gives_the_documented_defaults() {
    let config = parse("").expect("valid");
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(20));
    assert_eq!(
        config.database.url.expose(),
        "sqlite://data/plant-monitor.db"
    );
    assert_eq!(config.database.max_connections.get(), 8);
    assert_eq!(config.log.format, LogFormat::Pretty);
}

#[test]
fn the_shipped_configuration_file_parses_to_the_defaults() {
    let text = include_str!("../../../../config/plant-monitor.toml");
    let shipped = parse(text).expect("the shipped file is valid");
    let defaults = Config::default();
    assert_eq!(shipped.server.listen, defaults.server.listen);
    assert_eq!(shipped.server.api_token, defaults.server.api_token);
    assert_eq!(shipped.server.protect_reads, defaults.server.protect_reads);
    assert_eq!(
        shipped.server.max_connections,
        defaults.server.max_connections
    );
    assert_eq!(shipped.server.max_requests, defaults.server.max_requests);
    assert_eq!(
        shipped.server.header_read_timeout,
        defaults.server.header_read_timeout
    );
    assert_eq!(
        shipped.server.request_timeout,
        defaults.server.request_timeout
    );
    assert_eq!(
        shipped.server.shutdown_grace,
        defaults.server.shutdown_grace
    );
    assert_eq!(
        shipped.server.max_stream_clients,
        defaults.server.max_stream_clients
    );
    assert_eq!(shipped.log.format, defaults.log.format);
    assert_eq!(shipped.database.url, defaults.database.url);
    assert_eq!(
        shipped.database.max_connections,
        defaults.database.max_connections
    );
    assert_eq!(shipped.feed.poll_interval, defaults.feed.poll_interval);
    assert_eq!(shipped.feed.batch_size, defaults.feed.batch_size);
    assert_eq!(shipped.feed.snapshot, defaults.feed.snapshot);
    assert_eq!(shipped.feed.instance_id, defaults.feed.instance_id);
    assert_eq!(shipped.feed.regions, defaults.feed.regions);
    assert_eq!(shipped.feed.lease_ttl, defaults.feed.lease_ttl);
    assert_eq!(shipped.retention.delivered, defaults.retention.delivered);
    assert_eq!(shipped.plugins.dir, defaults.plugins.dir);
    assert_eq!(shipped.plugins.cache_dir, defaults.plugins.cache_dir);
    assert_eq!(shipped.plugins.call_timeout, defaults.plugins.call_timeout);
    assert_eq!(shipped.plugins.memory_limit, defaults.plugins.memory_limit);
    assert_eq!(shipped.plugins.on_error, defaults.plugins.on_error);
    assert_eq!(shipped.plugins.watch, defaults.plugins.watch);
    assert_eq!(
        shipped.plugins.rollback_after,
        defaults.plugins.rollback_after
    );
    assert_eq!(
        shipped.plugins.rollback_share,
        defaults.plugins.rollback_share
    );
    assert_eq!(
        shipped.plugins.quarantine_failures,
        defaults.plugins.quarantine_failures
    );
    assert_eq!(
        shipped.plugins.quarantine_window,
        defaults.plugins.quarantine_window
    );
    assert_eq!(
        shipped.plugins.quarantine_backoff,
        defaults.plugins.quarantine_backoff
    );
    assert_eq!(
        shipped.plugins.watch_debounce,
        defaults.plugins.watch_debounce
    );
    assert_eq!(
        shipped.plugins.max_core_instances,
        defaults.plugins.max_core_instances
    );
    assert_eq!(shipped.plugins.max_memories, defaults.plugins.max_memories);
    assert_eq!(shipped.plugins.max_tables, defaults.plugins.max_tables);
    assert_eq!(
        shipped.plugins.max_event_size,
        defaults.plugins.max_event_size
    );
    assert_eq!(shipped.plugins.max_labels, defaults.plugins.max_labels);
    assert_eq!(
        shipped.plugins.max_label_size,
        defaults.plugins.max_label_size
    );
    assert_eq!(
        shipped.plugins.max_route_sinks,
        defaults.plugins.max_route_sinks
    );
    assert_eq!(
        shipped.plugins.max_reason_size,
        defaults.plugins.max_reason_size
    );
    assert_eq!(shipped.plugins.max_log_size, defaults.plugins.max_log_size);
    assert_eq!(
        shipped.plugins.max_logs_per_second,
        defaults.plugins.max_logs_per_second
    );
    assert_eq!(
        shipped.routing.default_sinks,
        defaults.routing.default_sinks
    );
    assert!(shipped.sinks.is_empty());
}

#[test]
fn the_example_sink_in_the_shipped_file_is_valid_with_the_documented_defaults() {
    let text = include_str!("../../../../config/plant-monitor.toml");
    let example: String = text
        .lines()
        .skip_while(|line| !line.starts_with("# [sinks.backend]"))
        .take_while(|line| line.starts_with('#'))
        .map(|line| {
            line.trim_start_matches("# ")
                .split("   #")
                .next()
                .unwrap_or("")
                .trim_end()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = parse(&example).expect("the commented example is valid");
    let sink = &config.sinks["backend"];
    assert_eq!(sink.timeout, Duration::from_secs(10));
    assert_eq!(sink.max_in_flight.get(), 1);
    assert_eq!(sink.batch_max.get(), 1);
    assert_eq!(sink.max_attempts.get(), 12);
    assert_eq!(sink.health_url, None);
    assert_eq!(sink.backoff_initial, Duration::from_millis(250));
    assert_eq!(sink.backoff_max, Duration::from_secs(300));
    config.validate(&Source::BuiltIn).expect("valid");
}

#[test]
fn the_demo_configuration_is_valid() {
    let config = parse(include_str!("../../../../config/demo.toml")).expect("valid");
    config.validate(&Source::BuiltIn).expect("valid");
    assert_eq!(config.sinks.len(), 3);
}

#[test]
fn sinks_are_checked_for_url_name_and_limits() {
    for (text, key) in [
        ("[sinks.a]\nurl = \"ftp://x\"\n", "sinks.a.url"),
        ("[sinks.a]\nurl = \"not a url\"\n", "sinks.a.url"),
        ("[sinks.Bad]\nurl = \"http://x\"\n", "sinks.Bad"),
        (
            "[sinks.a]\nurl = \"http://x\"\nmax_in_flight = 0\n",
            "sinks.a.max_in_flight",
        ),
        (
            "[sinks.a]\nurl = \"http://x\"\nbatch_max = 0\n",
            "sinks.a.batch_max",
        ),
        (
            "[sinks.a]\nurl = \"http://x\"\nmax_attempts = 0\n",
            "sinks.a.max_attempts",
        ),
        (
            "[sinks.a]\nurl = \"http://x\"\nbackoff_initial = \"10m\"\n",
            "sinks.a.backoff_initial",
        ),
        (
            "[sinks.a]\nurl = \"http://x\"\nheaders = { \"bad header\" = \"v\" }\n",
            "sinks.a.headers",
        ),
        (
            "[routing]\ndefault_sinks = [\"nowhere\"]\n",
            "routing.default_sinks",
        ),
        (
            "[plugins]\nmemory_limit = \"10KiB\"\n",
            "plugins.memory_limit",
        ),
        (
            "[plugins]\nmax_core_instances = 100000\n",
            "plugins.max_core_instances",
        ),
        ("[plugins]\nmax_memories = 0\n", "plugins.max_memories"),
        (
            "[plugins]\nquarantine_backoff = \"0s\"\n",
            "plugins.quarantine_backoff",
        ),
        (
            "[plugins]\nrollback_share = 1.5\n",
            "plugins.rollback_share",
        ),
        ("[plugins]\nmax_tables = 65\n", "plugins.max_tables"),
        ("[feed]\nbatch_size = 0\n", "feed.batch_size"),
        (
            "[server]\nmax_stream_clients = 0\n",
            "server.max_stream_clients",
        ),
        ("[feed]\nregions = []\n", "feed.regions"),
        ("[feed]\nregions = [\"North\"]\n", "feed.regions"),
        ("[feed]\nlease_ttl = \"500ms\"\n", "feed.lease_ttl"),
        (
            "[sinks.a]\nurl = \"http://x\"\nhealth_url = \"gopher://x\"\n",
            "sinks.a.health_url",
        ),
        (
            "[database]\nmax_connections = 0\n",
            "database.max_connections",
        ),
        ("[feed]\npoll_interval = \"0s\"\n", "feed.poll_interval"),
        (
            "[sinks.a]\nurl = \"http://x\"\nprobe_interval = \"0s\"\n",
            "sinks.a.probe_interval",
        ),
        (
            "[sinks.a]\nurl = \"http://x\"\nmax_in_flight = 5000000\n",
            "sinks.a.max_in_flight",
        ),
        (
            "[sinks.a]\nurl = \"http://x\"\nbatch_max = 5000\n",
            "sinks.a.batch_max",
        ),
        (
            "[sinks.a]\nurl = \"http://x\"\nbackoff_max = \"100000h\"\n",
            "sinks.a.backoff_max",
        ),
        (
            "[sinks.a]\nurl = \"http://x\"\ntimeout = \"0s\"\n",
            "sinks.a.timeout",
        ),
    ] {
        let error = refusal(text);
        assert!(error.contains(&format!("key `{key}`")), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }
    let line = error_line("[sinks.a]\ntimeout = \"1s\"\n");
    assert!(line.contains("sinks.a") && line.contains("url"), "{line}");
    let line = error_line("[plugins]\nmemory_limit = \"64MB\"\n");
    assert!(line.contains("key `plugins.memory_limit`"), "{line}");
}

#[test]
fn durations_take_milliseconds_seconds_minutes_and_hours() {
    for (text, expected) in [
        ("250ms", Duration::from_millis(250)),
        ("10s", Duration::from_secs(10)),
        ("5m", Duration::from_secs(300)),
        ("2h", Duration::from_secs(7200)),
    ] {
        let config = parse(&format!("[server]\nshutdown_grace = \"{text}\"")).expect("valid");
        assert_eq!(config.server.shutdown_grace, expected, "{text}");
    }
}

#[test]
fn an_unknown_key_is_named_with_its_file_section_and_line() {
    let line = error_line("[server]\nlisten = \"127.0.0.1:1\"\nlistn = \"x\"\n");
    assert!(line.starts_with("my.toml:3:"), "{line}");
    assert!(line.contains("listn"), "{line}");
    assert!(!line.contains('\n'), "{line}");
}

#[test]
fn an_unknown_section_is_refused() {
    let line = error_line("[servr]\nlisten = \"127.0.0.1:1\"\n");
    assert!(line.starts_with("my.toml:1:"), "{line}");
    assert!(line.contains("servr"), "{line}");
}

#[test]
fn a_wrong_type_names_the_full_key() {
    let line = error_line("[database]\nmax_connections = \"eight\"\n");
    assert!(line.contains("key `database.max_connections`"), "{line}");
    assert!(line.starts_with("my.toml:2:"), "{line}");
}

#[test]
fn a_bad_value_names_the_key_and_what_is_wrong() {
    let line = error_line("[server]\nshutdown_grace = \"soon\"\n");
    assert!(line.contains("key `server.shutdown_grace`"), "{line}");
    let line = error_line("[server]\nlisten = \"localhost\"\n");
    assert!(line.contains("key `server.listen`"), "{line}");
    let line = error_line("[log]\nformat = \"xml\"\n");
    assert!(
        line.contains("key `log.format`") && line.contains("xml"),
        "{line}"
    );
}

#[test]
fn a_syntax_error_gives_its_line() {
    let line = error_line("[server\n");
    assert!(line.starts_with("my.toml:1:"), "{line}");
}

#[test]
fn environment_overrides_win_over_the_file() {
    let config = parse("[server]\nlisten = \"127.0.0.1:1\"\n")
        .expect("valid")
        .with_env(|name| match name {
            "PLANT_MONITOR_LISTEN" => Some("0.0.0.0:9999".into()),
            "PLANT_MONITOR_DATABASE_URL" => Some("sqlite://other.db".into()),
            "PLANT_MONITOR_API_TOKEN" => Some("secret".into()),
            _ => None,
        })
        .expect("valid overrides");
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9999");
    assert_eq!(config.database.url.expose(), "sqlite://other.db");
    assert_eq!(config.server.api_token.as_deref(), Some("secret"));
}

#[test]
fn a_bad_environment_override_names_the_variable() {
    let error = Config::default()
        .with_env(|name| (name == "PLANT_MONITOR_LISTEN").then(|| "nope".to_owned()))
        .expect_err("invalid");
    assert!(
        error
            .to_string()
            .starts_with("environment variable PLANT_MONITOR_LISTEN:")
    );
}

#[test]
fn semantic_checks_name_the_source_and_key() {
    let mut config = Config::default();
    config.feed.lease_ttl = Duration::from_millis(10);
    let error = config
        .validate(&Source::File("my.toml".into()))
        .expect_err("invalid");
    assert_eq!(
        error.to_string(),
        "my.toml: key `feed.lease_ttl`: must be at least 1s"
    );
}

#[test]
fn the_database_url_chooses_the_backend_and_anything_else_is_refused() {
    for (url, backend) in [
        ("postgres://root@127.0.0.1/pm", Backend::Postgres),
        ("postgresql://u:p@db:5433/pm", Backend::Postgres),
        ("sqlite://x.db", Backend::Sqlite),
    ] {
        let config = parse(&format!("[database]\nurl = \"{url}\"\n")).expect(url);
        assert_eq!(config.database.url.backend(), backend);
    }
    let line = error_line("[database]\nurl = \"mysql://x\"\n");
    assert!(line.starts_with("my.toml:2:"), "{line}");
    assert!(line.contains("key `database.url`"), "{line}");
    let error = Config::default()
        .with_env(|name| (name == "PLANT_MONITOR_DATABASE_URL").then(|| "mysql://x".to_owned()))
        .expect_err("invalid");
    assert!(
        error
            .to_string()
            .starts_with("environment variable PLANT_MONITOR_DATABASE_URL:")
    );
}

#[test]
fn the_debug_form_of_a_configuration_shows_no_secret() {
    let config = parse(
        "[server]\napi_token = \"tok-secret\"\n\
         [database]\nurl = \"postgres://pm:db-secret@db/pm\"\n\
         [sinks.a]\nurl = \"https://u:url-secret@hooks.example/x?key=query-secret\"\n\
         secret = [\"whsec_c2lnbi1zZWNyZXQ=\", \"env:NEXT_SECRET\"]\n\
         headers = { Authorization = \"Bearer header-secret\" }\n\
         health_url = \"https://hooks.example/health?key=probe-secret\"\n",
    )
    .expect("valid");
    let shown = format!("{config:?}");
    for secret in [
        "tok-secret",
        "db-secret",
        "url-secret",
        "query-secret",
        "c2lnbi1zZWNyZXQ",
        "header-secret",
        "probe-secret",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("env:NEXT_SECRET"), "{shown}");
}

#[test]
fn an_empty_token_or_health_url_means_none() {
    let config =
        parse("[server]\napi_token = \"\"\n[sinks.a]\nurl = \"http://x\"\nhealth_url = \"\"\n")
            .expect("valid");
    assert_eq!(config.server.api_token, None);
    assert_eq!(config.sinks["a"].health_url, None);
    let config = Config::default()
        .with_env(|name| (name == "PLANT_MONITOR_API_TOKEN").then(String::new))
        .expect("valid");
    assert_eq!(config.server.api_token, None);
}

#[test]
fn the_regions_override_is_a_comma_separated_list() {
    let config = parse("[feed]\nregions = [\"*\"]\n")
        .expect("valid")
        .with_env(|name| (name == "PLANT_MONITOR_REGIONS").then(|| "north, south,".to_owned()))
        .expect("applied");
    assert_eq!(config.feed.regions, ["north", "south"]);
    let config = Config::default().with_env(|_| None).expect("applied");
    assert_eq!(config.feed.regions, ["*"]);
    assert_eq!(config.feed.lease_ttl, Duration::from_secs(10));
}
