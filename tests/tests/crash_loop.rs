//! A crash loop, Jepsen-light: under API and raw-SQL write load, with a plugin and a sink, the process is
//! killed with SIGKILL twenty times at random moments and started again each time. Afterwards the
//! database is intact, every acknowledged API write is in the journal, every journal entry was
//! processed and delivered at least once in per-plant order, and the events sent more than once are
//! counted and bounded by what can be in flight when a process dies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plant_monitor_tests::{
    Db, Load, Node, PluginDir, Receiver, TestDatabase, audit_when_complete, node_config, plant,
};

const KILLS: usize = 20;
const IN_FLIGHT: usize = 4;
/// A lane's events sent but not yet recorded, the one in flight included, at most (`sinks/http.rs`).
const UNRECORDED: usize = 256;

/// Posts plants to whichever node is up, keeping the ids the API acknowledged with 201.
fn api_writer(
    addr: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let mut acknowledged = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let url = format!("http://{}/v1/plants", addr.lock().unwrap());
            let mut body = plant(&format!("api {n}"));
            body["region"] = serde_json::json!(if n % 2 == 0 { "north" } else { "south" });
            if let Ok(response) = client.post(url).json(&body).send().await
                && response.status() == 201
                && let Ok(created) = response.json::<serde_json::Value>().await
            {
                acknowledged.push(created["id"].as_str().unwrap().to_owned());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        acknowledged
    })
}

async fn crash_loop(database_url: &str, backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let plugins = PluginDir::default().example("output-alert-enricher");
    let config = node_config("n", database_url, &["*"], "2s", &receiver.url("/out")).replace(
        "dir = \"no-plugins\"",
        &format!("dir = \"{}\"", plugins.path().display()),
    ) + &format!("max_in_flight = {IN_FLIGHT}\n");
    let mut node = Node::start(dir.path(), "n0", &config).await;
    let db = Db::connect(database_url).await;
    let load = Load::start(&db, &["north", "south"], 10, Duration::from_millis(10)).await;
    let addr = Arc::new(Mutex::new(node.addr.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = api_writer(addr.clone(), stop.clone());
    for kill in 1..=KILLS {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(200..900))).await;
        node.signal("KILL");
        node.wait_exit(Duration::from_secs(10)).await;
        node = Node::start(dir.path(), &format!("n{kill}"), &config).await;
        *addr.lock().unwrap() = node.addr.clone();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let acknowledged = writer.await.unwrap();
    let raw_writes = load.stop().await;

    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}"))
            .await
            .unwrap();
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(check, "ok");
    }
    let journal = db.journal().await;
    let journaled: std::collections::HashSet<&str> =
        journal.iter().map(|(_, plant)| plant.as_str()).collect();
    let lost: Vec<&String> = (acknowledged.iter())
        .filter(|id| !journaled.contains(id.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not journaled: {lost:?}");
    let audit = audit_when_complete(&db, &receiver, Duration::from_secs(120)).await;
    assert!(
        audit.missing.is_empty(),
        "never delivered: {:?}\n{}",
        audit.missing,
        node.log()
    );
    assert!(audit.out_of_order.is_empty(), "{:?}", audit.out_of_order);
    let unprocessed = db
        .execute(
            "UPDATE plant_changes SET processed_at = processed_at WHERE processed_at IS NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(unprocessed, 0, "every journal entry was processed");
    // Each kill can cut off, on each of the max_in_flight lanes, what it sent and the recorder had not
    // yet written: the request in flight and the results before it, at most UNRECORDED.
    let bound = KILLS * IN_FLIGHT * UNRECORDED;
    assert!(
        audit.duplicates <= bound,
        "{} sent again, more than {bound}",
        audit.duplicates
    );
    eprintln!(
        "crash loop on {backend}: {KILLS} kills, {} API writes acknowledged, {raw_writes} raw SQL \
         updates, {} journal entries, all delivered in order, {} accepted more than once",
        acknowledged.len(),
        journal.len(),
        audit.duplicates
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_on_sqlite_loses_nothing_and_repeats_only_what_was_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("loop.db").display());
    crash_loop(&url, "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_on_postgres_loses_nothing_and_repeats_only_what_was_in_flight() {
    let database = TestDatabase::create().await;
    crash_loop(&database.url, "PostgreSQL").await;
}
