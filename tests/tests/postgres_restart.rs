//! PostgreSQL restarted under a running feed, in each capture mode. Alone in its own test binary,
//! because restarting the machine's server interrupts every other test using it, and cargo runs test
//! binaries one at a time.

use std::process::Command;
use std::time::Duration;

use plant_monitor_tests::{
    Db, Load, Node, Receiver, TestDatabase, assert_captured_exactly, audit_when_complete,
    node_config,
};

/// `pg_ctlcluster VERSION main restart` for the machine's cluster (it waits until the server is up).
fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL cluster")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .max()
        .expect("a cluster version");
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "pg_ctlcluster restart failed");
}

/// One after the other, since each restarts the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_and_the_capture_resume_by_themselves_after_postgresql_restarts() {
    for capture in ["trigger", "wal"] {
        resumes_after_postgresql_restarts(capture).await;
    }
}

async fn resumes_after_postgresql_restarts(capture: &str) {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let config = node_config("a", &database.url, &["*"], "2s", &receiver.url("/a"))
        + &format!("\n[capture]\nmode = \"{capture}\"\n");
    let mut node = Node::start(dir.path(), "a", &config).await;
    let db = Db::connect(&database.url).await;
    let load = Load::start(&db, &["north"], 10, Duration::from_millis(10)).await;
    db.wait_for_leader("north", Duration::from_secs(10), |_| true)
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = load.writes.load(std::sync::atomic::Ordering::Relaxed);

    tokio::task::spawn_blocking(restart_postgres)
        .await
        .expect("join");
    // Writes resume once the server is back; the node must pick them up by itself.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let written = load.stop().await;
    assert!(
        written > before + 50,
        "the writer resumed after the restart"
    );

    if capture == "wal" {
        sqlx::any::install_default_drivers();
        let sql = sqlx::AnyPool::connect(&database.url)
            .await
            .expect("connect");
        // 10 creations and every update.
        assert_captured_exactly(&sql, Duration::from_secs(30), written + 10, || node.log()).await;
    }
    let audit = audit_when_complete(&db, &receiver, Duration::from_secs(30)).await;
    assert!(
        audit.missing.is_empty(),
        "journal entries never delivered: {:?}\n{}",
        audit.missing,
        node.log()
    );
    assert!(audit.out_of_order.is_empty(), "{:?}", audit.out_of_order);
    assert!(
        node.exited().is_none(),
        "the node kept running:\n{}",
        node.log()
    );
    assert!(
        db.leader("north")
            .await
            .is_some_and(|(holder, _)| holder == node.instance_id),
        "the node leads again"
    );
}
