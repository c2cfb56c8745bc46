//! The real `plant-monitor` binary as a user runs it: defaults without a config file, one-line config
//! errors with exit 1, usage errors with exit 2, `migrate`, and graceful shutdown on SIGTERM and SIGINT.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use plant_monitor_tests::{Server, TestDatabase, plant_monitor};

fn run(dir: &Path, args: &[&str]) -> Output {
    plant_monitor(dir)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn serve_without_a_config_file_runs_on_defaults_with_sqlite_under_data() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["serve"]);
    assert_eq!(server.get("/healthz").status(), 200);
    assert_eq!(server.get("/readyz").status(), 200);
    assert_eq!(server.get("/v1/plants").status(), 200);
    assert!(dir.path().join("data/plant-monitor.db").exists());
    let (status, took) = server.signal_and_wait("TERM");
    assert!(status.success(), "SIGTERM is a clean exit: {status}");
    assert!(took < Duration::from_secs(5), "stopped in {took:?}");
}

#[test]
fn sigint_also_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["serve"]);
    assert_eq!(server.get("/healthz").status(), 200);
    let (status, _) = server.signal_and_wait("INT");
    assert!(status.success(), "{status}");
}

#[test]
fn serve_reads_the_default_config_path_when_present() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/plant-monitor.toml"),
        "[database]\nurl = \"sqlite://elsewhere/pm.db\"\n",
    )
    .unwrap();
    let server = Server::start(dir.path(), &["serve"]);
    assert_eq!(server.get("/readyz").status(), 200);
    assert!(dir.path().join("elsewhere/pm.db").exists());
    assert!(!dir.path().join("data").exists());
}

#[test]
fn an_unknown_key_exits_1_with_one_line_naming_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grase = \"1s\"\n",
    )
    .unwrap();
    let output = run(dir.path(), &["serve", "-c", "bad.toml"]);
    assert_eq!(output.status.code(), Some(1));
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("bad.toml:3:"), "{}", lines[0]);
    assert!(lines[0].contains("shutdown_grase"), "{}", lines[0]);
}

#[test]
fn a_wrong_type_or_bad_value_exits_1_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        (
            "[database]\nmax_connections = \"many\"\n",
            "database.max_connections",
        ),
        (
            "[server]\nshutdown_grace = \"a while\"\n",
            "server.shutdown_grace",
        ),
        (
            "[database]\nmax_connections = 0\n",
            "database.max_connections",
        ),
        ("[database]\nurl = \"mysql://db\"\n", "database.url"),
    ] {
        std::fs::write(dir.path().join("bad.toml"), text).unwrap();
        let output = run(dir.path(), &["migrate", "-c", "bad.toml"]);
        assert_eq!(output.status.code(), Some(1), "{text}");
        let lines = stderr_lines(&output);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("bad.toml") && lines[0].contains(key),
            "{}",
            lines[0]
        );
    }
}

#[test]
fn a_missing_config_file_or_bad_environment_override_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &["serve", "-c", "absent.toml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_lines(&output)[0].contains("absent.toml"));

    let output = plant_monitor(dir.path())
        .args(["serve"])
        .env("PLANT_MONITOR_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_lines(&output)[0].contains("PLANT_MONITOR_LISTEN"));
}

#[test]
fn migrate_creates_the_schema_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pm.toml"),
        "[database]\nurl = \"sqlite://db/pm.db\"\n",
    )
    .unwrap();
    let output = run(dir.path(), &["migrate", "-c", "pm.toml"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let again = run(dir.path(), &["migrate", "-c", "pm.toml"]);
    assert!(again.status.success(), "migrate is idempotent");
    let tables = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("sqlite://{}", dir.path().join("db/pm.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_scalar::<_, String>(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    });
    assert!(tables.contains(&"power_plants".to_owned()), "{tables:?}");
    assert!(tables.contains(&"plant_changes".to_owned()), "{tables:?}");
}

#[test]
fn help_works_everywhere_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
    ] {
        let output = run(dir.path(), args);
        assert!(output.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("Usage"));
    }
    assert_eq!(
        run(dir.path(), &["serve", "--bogus"]).status.code(),
        Some(2)
    );
    assert_eq!(run(dir.path(), &["frobnicate"]).status.code(), Some(2));
    assert_eq!(run(dir.path(), &[]).status.code(), Some(2));
}

/// A database password reaches neither the log of a run nor the error of a failed one.
#[test]
fn the_database_password_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let database = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(TestDatabase::create());
    // The machine's server trusts local connections, so any password is accepted.
    let with_password = database.url.replacen("://root@", "://root:pw-secret@", 1);
    assert_ne!(with_password, database.url, "{}", database.url);
    let output = plant_monitor(dir.path())
        .arg("migrate")
        .env("PLANT_MONITOR_DATABASE_URL", &with_password)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("root:***@"), "{log}");
    assert!(!log.contains("pw-secret"), "{log}");

    let unreachable = "postgres://root:pw-secret@127.0.0.1:1/none";
    let output = plant_monitor(dir.path())
        .arg("migrate")
        .env("PLANT_MONITOR_DATABASE_URL", unreachable)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(log.contains("root:***@127.0.0.1:1"), "{log}");
    assert!(!log.contains("pw-secret"), "{log}");
}
