//! Deliveries in flight when the process dies or is stopped: after kill -9 and a restart every event
//! arrives at least once, and only what was in flight is sent twice; after SIGTERM the requests in
//! flight finish within `server.shutdown_grace` and nothing is sent twice.

use std::time::{Duration, Instant};

use plant_monitor_tests::{Answer, Db, Load, Node, Receiver, audit_when_complete, node_config};

const IN_FLIGHT: usize = 4;

fn database_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("crash.db").display())
}

fn config(dir: &std::path::Path, receiver: &Receiver) -> String {
    // [sinks.out] is the last table, so keys appended here are the sink's.
    node_config("n", &database_url(dir), &["*"], "2s", &receiver.url("/out"))
        .replace("timeout = \"2s\"", "timeout = \"10s\"")
        + &format!("max_in_flight = {IN_FLIGHT}\n")
}

/// A node delivering a steady load, past its start: what each test then interrupts.
async fn delivering(dir: &std::path::Path, receiver: &Receiver) -> (String, Node, Db, Load) {
    let config = config(dir, receiver);
    let node = Node::start(dir, "n", &config).await;
    let db = Db::connect(&database_url(dir)).await;
    let load = Load::start(&db, &["north"], 20, Duration::from_millis(5)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    (config, node, db, load)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_every_event_arrives_and_only_requests_in_flight_come_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let (config, node, db, load) = delivering(dir.path(), &receiver).await;
    // The next requests hang, so some are surely in flight when the process dies.
    receiver.script(&[Answer::Hang(Duration::from_millis(1500)); IN_FLIGHT]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.signal("KILL");
    drop(node);
    load.stop().await;

    let _restarted = Node::start(dir.path(), "n2", &config).await;
    let audit = audit_when_complete(&db, &receiver, Duration::from_secs(60)).await;
    assert!(
        audit.missing.is_empty(),
        "never delivered: {:?}",
        audit.missing
    );
    assert!(audit.out_of_order.is_empty(), "{:?}", audit.out_of_order);
    // Sent twice: the requests in flight when the process died (up to max_in_flight), plus any
    // whose success arrived while the recorder was writing earlier results.
    let mut sent = std::collections::HashMap::<u64, usize>::new();
    for (_, _, seqs) in receiver.attempts() {
        for seq in seqs {
            *sent.entry(seq).or_default() += 1;
        }
    }
    let sent_twice = sent.values().filter(|count| **count > 1).count();
    assert!(
        (1..=2 * IN_FLIGHT).contains(&sent_twice),
        "{sent_twice} events sent twice with {IN_FLIGHT} requests in flight"
    );
    assert!(audit.duplicates <= sent_twice);
    eprintln!(
        "kill -9 with {IN_FLIGHT} requests in flight: {} events, {sent_twice} sent twice, {} accepted twice",
        db.journal().await.len(),
        audit.duplicates
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_and_sends_nothing_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let (config, mut node, db, load) = delivering(dir.path(), &receiver).await;
    receiver.script(&[Answer::Hang(Duration::from_millis(1000)); IN_FLIGHT]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = Instant::now();
    node.signal("TERM");
    let status = node.wait_exit(Duration::from_secs(10)).await;
    let took = stopped.elapsed();
    assert!(status.success(), "{}", node.log());
    assert!(
        took >= Duration::from_millis(500),
        "waited for the requests in flight: {took:?}"
    );
    load.stop().await;

    let _restarted = Node::start(dir.path(), "n2", &config).await;
    let audit = audit_when_complete(&db, &receiver, Duration::from_secs(60)).await;
    assert!(
        audit.missing.is_empty(),
        "never delivered: {:?}",
        audit.missing
    );
    assert!(audit.out_of_order.is_empty(), "{:?}", audit.out_of_order);
    assert_eq!(audit.duplicates, 0);
}
