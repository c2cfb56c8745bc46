//! `wal` capture on PostgreSQL beyond the suites every backend runs: switching to it while writers run,
//! kill -9 of the capture leader under load, transactions that commit out of order or change one
//! plant several times, and TRUNCATE. Each checks the journal against the plants themselves: every
//! change journaled once, in order (see [`journal_is_exact`]).

use std::time::{Duration, Instant};

use plant_monitor::config::{CaptureMode, DatabaseConfig};
use plant_monitor_tests::{
    Backend, Db, Load, Node, Receiver, TestApp, TestDatabase, TestStore, assert_captured_exactly,
    journal_is_exact, node_config,
};
use serde_json::Value;

/// Writers creating 10 plants in each of two regions, then updating them, one every 2 ms.
async fn writers_on(store: &TestStore) -> Load {
    let db = Db::connect(store.url()).await;
    Load::start(&db, &["north", "south"], 10, Duration::from_millis(2)).await
}

async fn any_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_to_wal_while_writers_run_loses_and_repeats_no_change() {
    let mut store = Backend::Postgres.store().await;
    let sql = store.sql().await;
    let load = writers_on(&store).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let by_triggers = journal_is_exact(&sql).await.unwrap();
    store.capture_from_wal().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let writes = load.stop().await;
    store.captured().await;
    let journaled = journal_is_exact(&sql).await.unwrap();
    assert!(by_triggers > 20, "the triggers journaled {by_triggers}");
    assert!(
        journaled > by_triggers + 20,
        "the capture leader journaled {} after {by_triggers}",
        journaled - by_triggers
    );
    assert_eq!(
        journaled as u64,
        writes + 20,
        "20 creations and every update"
    );
}

/// Replicas started together each switch the database to their configured mode when they migrate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_switching_to_wal_at_the_same_time_all_succeed_with_one_slot() {
    let store = Backend::Postgres.store().await;
    let config = DatabaseConfig {
        url: store.url().parse().unwrap(),
        ..DatabaseConfig::default()
    };
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(plant_monitor::store::connect(&config).await.unwrap());
    }
    let switches = replicas
        .iter()
        .map(|replica| replica.switch_capture(CaptureMode::Wal));
    for switched in futures_util::future::join_all(switches).await {
        switched.unwrap();
    }
    let sql = store.sql().await;
    assert_eq!(slots_here(&sql).await, 1);
    for replica in replicas {
        replica.close().await;
    }
}

/// The holder of the `capture` lease that `accept` accepts, once there is one.
async fn capture_holder(sql: &sqlx::AnyPool, accept: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let holder: Option<String> = sqlx::query_scalar(
            "SELECT holder FROM leases WHERE name = 'capture' AND expires_at > now()",
        )
        .fetch_optional(sql)
        .await
        .unwrap();
        if let Some(holder) = holder.filter(|holder| accept(holder)) {
            return holder;
        }
        assert!(Instant::now() < deadline, "no such capture leader in 20 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Two `serve` processes "a" and "b" in `wal` capture on `database_url`, sending to `receiver`:
/// the one that leads capture first, then the standby.
async fn capture_pair(
    dir: &std::path::Path,
    database_url: &str,
    receiver: &Receiver,
    lease_ttl: &str,
    sql: &sqlx::AnyPool,
) -> (Node, Node) {
    let config = |name: &str| {
        node_config(name, database_url, &["*"], lease_ttl, &receiver.url("/out"))
            + "\n[capture]\nmode = \"wal\"\n"
    };
    let first = Node::start(dir, "a", &config("a")).await;
    let second = Node::start(dir, "b", &config("b")).await;
    if capture_holder(sql, |_| true).await == first.instance_id {
        (first, second)
    } else {
        (second, first)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_of_the_capture_leader_under_load_its_successor_journals_every_change_once() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let db = Db::connect(&database.url).await;
    let sql = any_pool(&database.url).await;
    let (leader, standby) = capture_pair(dir.path(), &database.url, &receiver, "2s", &sql).await;
    let load = Load::start(&db, &["north"], 10, Duration::from_millis(3)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    leader.signal("KILL");
    drop(leader);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let writes = load.stop().await;
    // The standby takes the lease once it expires (2 s), then catches up: 10 creations and every
    // update.
    assert_captured_exactly(&sql, Duration::from_secs(30), writes + 10, || standby.log()).await;
    let (holder, epoch): (String, i64) =
        sqlx::query_as("SELECT holder, epoch FROM leases WHERE name = 'capture'")
            .fetch_one(&sql)
            .await
            .unwrap();
    assert_eq!(holder, standby.instance_id);
    assert_eq!(epoch, 2);
}

/// A capture leader stopped by SIGTERM releases its lease, and the standby takes it at once: each
/// process keeps its region leases and the `capture` lease apart, and both hear of a release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_leader_stopped_by_sigterm_hands_over_within_a_second() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let sql = any_pool(&database.url).await;
    // A long lease: the handover must come from the release, not from expiry.
    let (leader, standby) = capture_pair(dir.path(), &database.url, &receiver, "10s", &sql).await;
    let signalled = Instant::now();
    leader.signal("TERM");
    let new = capture_holder(&sql, |holder| holder != leader.instance_id).await;
    let handover = signalled.elapsed();
    assert_eq!(new, standby.instance_id);
    assert!(
        handover < Duration::from_secs(1),
        "handover took {handover:?}"
    );
}

/// The capture leader journals transactions as they commit: one that began first but committed last
/// comes last, a transaction's changes come together, and an update that changed nothing of the plant
/// is not journaled, as with triggers.
#[tokio::test]
async fn transactions_are_journaled_in_commit_order_with_every_change_of_a_plant_in_one() {
    let app = TestApp::start_on(Backend::PostgresWal, |_| {}).await;
    let sql = app.sql().await;
    let mut first = sql.begin().await.unwrap();
    sqlx::query("INSERT INTO power_plants (id, name, region, fuel, capacity_mw) VALUES ('first', 'First', 'north', 'wind', 1)")
        .execute(&mut *first)
        .await
        .unwrap();
    let mut second = sql.begin().await.unwrap();
    for statement in [
        "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) VALUES ('second', 'Second', 'north', 'wind', 1)",
        "UPDATE power_plants SET output_mw = 1 WHERE id = 'second'",
        "UPDATE power_plants SET output_mw = 1 WHERE id = 'second'",
        "UPDATE power_plants SET output_mw = 2 WHERE id = 'second'",
        "UPDATE power_plants SET status = 'operational' WHERE id = 'second'",
    ] {
        sqlx::query(statement).execute(&mut *second).await.unwrap();
    }
    second.commit().await.unwrap();
    first.commit().await.unwrap();
    let journal = app.journal().await;
    let seen: Vec<(String, String, Value)> = (journal.iter())
        .map(|entry| {
            (
                entry["plant_id"].as_str().unwrap().to_owned(),
                entry["kind"].as_str().unwrap().to_owned(),
                entry["changed_fields"].clone(),
            )
        })
        .collect();
    let expected = [
        ("second", "created"),
        ("second", "updated"),
        ("second", "updated"),
        ("second", "updated"),
        ("first", "created"),
    ];
    assert_eq!(
        seen.iter()
            .map(|(id, kind, _)| (id.as_str(), kind.as_str()))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(seen[3].2, serde_json::json!(["status"]));
    let traces: Vec<&str> = (journal[..4].iter())
        .map(|entry| entry["traceparent"].as_str().unwrap())
        .collect();
    assert!(
        traces.iter().all(|trace| *trace == traces[0]),
        "one transaction, one trace: {traces:?}"
    );
    assert_ne!(journal[4]["traceparent"], journal[0]["traceparent"]);
    assert_eq!(journal_is_exact(&sql).await, Ok(5));
}

/// TRUNCATE would remove plants with no deletion journaled, by triggers or from the log: refused, and
/// the error says what to do instead.
#[tokio::test]
async fn truncate_is_refused_in_both_capture_modes_with_the_way_instead() {
    for backend in [Backend::Postgres, Backend::PostgresWal] {
        let app = TestApp::start_on(backend, |_| {}).await;
        app.create(&plant_monitor_tests::plant("Kept")).await;
        let sql = app.sql().await;
        let error = sqlx::query("TRUNCATE power_plants")
            .execute(&sql)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("TRUNCATE of power_plants is refused"),
            "{error}"
        );
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM power_plants")
            .fetch_one(&sql)
            .await
            .unwrap();
        assert_eq!(count, 1, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_back_to_triggers_while_writers_run_loses_and_repeats_no_change() {
    let store = Backend::PostgresWal.store().await;
    let sql = store.sql().await;
    let load = writers_on(&store).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Writers go on meanwhile, so the journal is checked against the plants only at the end.
    store.captured().await;
    let from_the_log: i64 = sqlx::query_scalar("SELECT count(*) FROM plant_changes")
        .fetch_one(&sql)
        .await
        .unwrap();
    let from_the_log = from_the_log as usize;
    store.switch_capture(CaptureMode::Trigger).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let writes = load.stop().await;
    // The capture leader still streams: once it has passed all of it, it must have journaled none of
    // what the triggers did.
    store.captured().await;
    let journaled = journal_is_exact(&sql).await.unwrap();
    assert!(
        from_the_log > 20,
        "the capture leader journaled {from_the_log}"
    );
    assert!(
        journaled > from_the_log + 20,
        "the triggers journaled {} after {from_the_log}",
        journaled - from_the_log
    );
    assert_eq!(
        journaled as u64,
        writes + 20,
        "20 creations and every update"
    );
    let mode: String = sqlx::query_scalar("SELECT mode FROM capture")
        .fetch_one(&sql)
        .await
        .unwrap();
    assert_eq!(mode, "trigger");
}

/// With no process capturing, `capture drop-slot` journals what the slot still holds itself, switches
/// to triggers, and drops the slot, even one a session still streams from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_slot_journals_what_the_slot_holds_then_drops_it() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("wal.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[capture]\nmode = \"wal\"\n",
            database.url
        ),
    )
    .unwrap();
    let migrated = plant_monitor_tests::plant_monitor(dir.path())
        .args(["migrate", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let sql = any_pool(&database.url).await;
    let db = Db::connect(&database.url).await;
    // Written with nobody capturing: only the slot holds these changes.
    let updates = Load::start(&db, &["north"], 5, Duration::from_millis(2))
        .await
        .stop()
        .await;
    let dropped = plant_monitor_tests::plant_monitor(dir.path())
        .args(["capture", "drop-slot", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&dropped.stdout);
    assert!(dropped.status.success(), "{dropped:?}");
    assert!(
        said.contains("dropped the replication slot plant_monitor_"),
        "{said}"
    );
    assert_eq!(journal_is_exact(&sql).await, Ok(5 + updates as usize));
    assert_eq!(slots_here(&sql).await, 0);
    let again = plant_monitor_tests::plant_monitor(dir.path())
        .args(["capture", "drop-slot", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("no replication slot to drop"),
        "{again:?}"
    );
}

/// What the slot costs the server is shown beside the leases and in the metrics.
#[tokio::test]
async fn the_leases_and_the_metrics_show_the_capture_and_what_its_slot_keeps() {
    let app = TestApp::start_on(Backend::PostgresWal, |_| {}).await;
    app.create(&plant_monitor_tests::plant("Logged")).await;
    let leases = app
        .wait_for_json("/v1/leases", |leases| {
            leases["capture"]["active"] == true
                && (leases["items"].as_array().unwrap().iter())
                    .any(|lease| lease["name"] == "capture" && lease["held"] == true)
        })
        .await;
    let capture = &leases["capture"];
    assert_eq!(capture["mode"], "wal");
    assert!(
        capture["slot"]
            .as_str()
            .is_some_and(|slot| slot.starts_with("plant_monitor_")),
        "{capture}"
    );
    assert!(capture["retained_bytes"].as_u64().is_some(), "{capture}");
    assert!(capture["lag_bytes"].as_u64().is_some(), "{capture}");
    let metrics = app
        .call(reqwest::Method::GET, "/metrics")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("plant_monitor_capture_slot_retained_bytes ")),
        "{metrics}"
    );

    let triggers = TestApp::start_on(Backend::Postgres, |_| {}).await;
    let leases = triggers.get_json("/v1/leases").await;
    assert_eq!(
        leases["capture"],
        serde_json::json!({"mode": "trigger", "slot": null, "active": false,
                           "retained_bytes": null, "lag_bytes": null})
    );
}

/// A role that may not replicate is told what it needs, and the database stays in trigger capture.
#[tokio::test]
async fn a_role_that_may_not_replicate_is_told_what_wal_capture_needs() {
    let store = Backend::Postgres.store().await;
    let sql = store.sql().await;
    let role = format!("pm_no_replication_{}", std::process::id());
    for statement in [
        format!("DROP ROLE IF EXISTS {role}"),
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT SELECT ON capture TO {role}"),
    ] {
        sqlx::query(&statement).execute(&sql).await.unwrap();
    }
    let url = store.url().replace("root@", &format!("{role}@"));
    let limited = plant_monitor::store::connect(&DatabaseConfig {
        url: url.parse().unwrap(),
        max_connections: 2.try_into().unwrap(),
    })
    .await
    .unwrap();
    let refused = limited
        .switch_capture(CaptureMode::Wal)
        .await
        .unwrap_err()
        .to_string();
    limited.close().await;
    for statement in [
        format!("REVOKE ALL ON capture FROM {role}"),
        format!("DROP ROLE {role}"),
    ] {
        sqlx::query(&statement).execute(&sql).await.unwrap();
    }
    assert!(
        refused.contains(&format!(
            "needs a role that may replicate, and {role} may not: run ALTER ROLE {role} REPLICATION"
        )),
        "{refused}"
    );
    let mode: String = sqlx::query_scalar("SELECT mode FROM capture")
        .fetch_one(&sql)
        .await
        .unwrap();
    assert_eq!(mode, "trigger");
}

/// The replication slots of the test's own database.
async fn slots_here(sql: &sqlx::AnyPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()",
    )
    .fetch_one(sql)
    .await
    .unwrap()
}
