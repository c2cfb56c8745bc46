//! Replicas of the real binary on one database under a steady write load: one leader per region, a
//! killed, stopped or paused leader replaced, and nothing lost or reordered per plant at the receiver.
//! Each node sends to its own path, so the receiver knows who sent what and when.

use std::time::{Duration, Instant};

use plant_monitor_tests::{
    Audit, Db, Load, Node, Receiver, TestDatabase, audit_when_complete, node_config,
};

/// A leader that stops has at most its requests in flight (here `max_in_flight` 1 × `batch_max` 1) and
/// the results its recorder had not yet written (those that arrived during one write) sent but not
/// recorded; its successor resends them. A generous ceiling on that: the tests count the real figure.
const ROUND: usize = 256;

const LOAD_EVERY: Duration = Duration::from_millis(10);

async fn start_nodes(
    dir: &std::path::Path,
    database_url: &str,
    receiver: &Receiver,
    nodes: &[(&str, &[&str])],
    lease_ttl: &str,
) -> Vec<Node> {
    let mut started = Vec::new();
    for (name, regions) in nodes {
        let sink = receiver.url(&format!("/{name}"));
        let config = node_config(name, database_url, regions, lease_ttl, &sink);
        started.push(Node::start(dir, name, &config).await);
    }
    started
}

/// Which of `nodes` holds leases as `holder`.
fn index_of(nodes: &[Node], holder: &str) -> usize {
    nodes
        .iter()
        .position(|node| node.instance_id == holder)
        .unwrap_or_else(|| panic!("no node holds as {holder}"))
}

fn assert_complete_and_ordered(audit: &Audit) {
    assert!(
        audit.missing.is_empty(),
        "journal entries never delivered: {:?}",
        audit.missing
    );
    assert!(
        audit.out_of_order.is_empty(),
        "plants whose events arrived out of order: {:?}",
        audit.out_of_order
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_of_three_hands_the_region_over_and_loses_nothing() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let all: &[&str] = &["*"];
    let nodes = start_nodes(
        dir.path(),
        &database.url,
        &receiver,
        &[("a", all), ("b", all), ("c", all)],
        "2s",
    )
    .await;
    let db = Db::connect(&database.url).await;
    let load = Load::start(&db, &["north"], 10, LOAD_EVERY).await;
    let ((old, old_epoch), _) = db
        .wait_for_leader("north", Duration::from_secs(10), |_| true)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    nodes[index_of(&nodes, &old)].signal("KILL");
    let killed = Instant::now();
    let ((new, new_epoch), _) = db
        .wait_for_leader("north", Duration::from_secs(10), |holder| holder != old)
        .await;
    let failover = killed.elapsed();
    assert!(
        new_epoch > old_epoch,
        "the epoch rises on every acquisition"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    load.stop().await;

    let audit = audit_when_complete(&db, &receiver, Duration::from_secs(30)).await;
    assert_complete_and_ordered(&audit);
    let (old_path, new_path) = (
        format!("/{}", nodes[index_of(&nodes, &old)].name),
        format!("/{}", nodes[index_of(&nodes, &new)].name),
    );
    assert!(
        audit
            .by_sender
            .keys()
            .all(|path| *path == old_path || *path == new_path),
        "only the two leaders delivered: {:?}",
        audit.by_sender
    );
    let received = receiver.accepted();
    let old_last = received
        .iter()
        .filter(|r| r.path == old_path)
        .map(|r| r.at)
        .max();
    let new_first = received
        .iter()
        .filter(|r| r.path == new_path)
        .map(|r| r.at)
        .min();
    assert!(old_last < new_first, "one leader at a time");
    assert!(
        audit.duplicates <= ROUND,
        "duplicates {} exceed one unrecorded round",
        audit.duplicates
    );
    assert!(
        failover < Duration::from_secs(3),
        "failover took {failover:?}"
    );
    eprintln!(
        "kill -9 failover with lease_ttl 2s: {failover:?}; {} events, {} duplicates",
        received.len() - audit.duplicates,
        audit.duplicates
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_by_sigterm_hands_over_within_a_second_without_duplicates() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let all: &[&str] = &["*"];
    // A long lease: the handover must come from the release, not from expiry.
    let mut nodes = start_nodes(
        dir.path(),
        &database.url,
        &receiver,
        &[("a", all), ("b", all)],
        "10s",
    )
    .await;
    let db = Db::connect(&database.url).await;
    let load = Load::start(&db, &["north"], 10, LOAD_EVERY).await;
    let ((old, _), _) = db
        .wait_for_leader("north", Duration::from_secs(10), |_| true)
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let leader = index_of(&nodes, &old);
    nodes[leader].signal("TERM");
    let ((_, _), handover) = db
        .wait_for_leader("north", Duration::from_secs(10), |holder| holder != old)
        .await;
    let status = nodes[leader].wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{}", nodes[leader].log());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    load.stop().await;

    let audit = audit_when_complete(&db, &receiver, Duration::from_secs(30)).await;
    assert_complete_and_ordered(&audit);
    assert_eq!(
        audit.duplicates, 0,
        "a graceful handover sends nothing twice"
    );
    assert!(
        handover < Duration::from_secs(1),
        "handover took {handover:?}"
    );
    eprintln!("SIGTERM handover: {handover:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_fenced_and_sends_nothing_once_its_successor_leads() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let all: &[&str] = &["*"];
    let mut nodes = start_nodes(
        dir.path(),
        &database.url,
        &receiver,
        &[("a", all), ("b", all)],
        "2s",
    )
    .await;
    let db = Db::connect(&database.url).await;
    let load = Load::start(&db, &["north"], 10, LOAD_EVERY).await;
    let ((old, old_epoch), _) = db
        .wait_for_leader("north", Duration::from_secs(10), |_| true)
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let leader = index_of(&nodes, &old);
    nodes[leader].signal("STOP");
    let ((new, new_epoch), _) = db
        .wait_for_leader("north", Duration::from_secs(10), |holder| holder != old)
        .await;
    assert!(new_epoch > old_epoch);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    nodes[leader].signal("CONT");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    load.stop().await;

    let audit = audit_when_complete(&db, &receiver, Duration::from_secs(30)).await;
    assert_complete_and_ordered(&audit);
    assert!(
        nodes[leader].exited().is_none(),
        "the paused node keeps running as a standby"
    );
    assert_eq!(
        db.leader("north").await.map(|(holder, _)| holder),
        Some(new.clone()),
        "the successor keeps the region"
    );
    let old_path = format!("/{}", nodes[leader].name);
    let received = receiver.accepted();
    let new_first = received
        .iter()
        .filter(|r| r.path != old_path)
        .map(|r| r.at)
        .min()
        .expect("the successor delivered");
    let late: Vec<u64> = received
        .iter()
        .filter(|r| r.path == old_path && r.at > new_first)
        .map(|r| r.seq())
        .collect();
    assert!(
        late.is_empty(),
        "the deposed leader sent {late:?} after its successor began"
    );
    // Duplicates are only resends of what the deposed leader sent and had not recorded.
    let mut first_sender = std::collections::HashMap::new();
    for request in &received {
        first_sender
            .entry(request.seq())
            .or_insert(request.path.clone());
    }
    let resent_by_others = received
        .iter()
        .filter(|r| first_sender[&r.seq()] != r.path)
        .filter(|r| first_sender[&r.seq()] != old_path)
        .count();
    assert_eq!(resent_by_others, 0);
    assert!(audit.duplicates <= ROUND, "duplicates {}", audit.duplicates);
    let log = nodes[leader].log();
    assert!(
        log.contains("no longer leading") || log.contains("Lost the lease"),
        "the paused node stepped down:\n{log}"
    );
    eprintln!(
        "SIGSTOP/SIGCONT: {} duplicates (bound {ROUND})",
        audit.duplicates
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_regions_split_between_instances_and_the_allowed_one_takes_both() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let db_url = &database.url;
    let mut a = start_nodes(dir.path(), db_url, &receiver, &[("a", &["north"])], "2s").await;
    let db = Db::connect(db_url).await;
    let load = Load::start(&db, &["north", "south"], 5, LOAD_EVERY).await;
    let a_id = a[0].instance_id.clone();
    db.wait_for_leader("north", Duration::from_secs(10), |h| h == a_id)
        .await;
    // b may lead both; c only south. a already leads north, so b and c share south.
    let others = start_nodes(
        dir.path(),
        db_url,
        &receiver,
        &[("b", &["south", "north"]), ("c", &["south"])],
        "2s",
    )
    .await;
    let ((south, _), _) = db
        .wait_for_leader("south", Duration::from_secs(10), |_| true)
        .await;
    assert_ne!(south, a_id, "a may not lead south");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        db.leader("north").await.map(|(holder, _)| holder),
        Some(a_id.clone()),
        "each instance keeps its own region"
    );

    a[0].signal("TERM");
    let b_id = others[0].instance_id.clone();
    db.wait_for_leader("north", Duration::from_secs(5), |h| h == b_id)
        .await;
    assert!(a[0].wait_exit(Duration::from_secs(10)).await.success());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    load.stop().await;

    let audit = audit_when_complete(&db, &receiver, Duration::from_secs(30)).await;
    assert_complete_and_ordered(&audit);
    let c_led_north = receiver
        .accepted()
        .iter()
        .any(|r| r.path == "/c" && r.data()["region"] == "north");
    assert!(!c_led_north, "c may not lead north");
    let b_led_north = receiver
        .accepted()
        .iter()
        .any(|r| r.path == "/b" && r.data()["region"] == "north");
    assert!(b_led_north, "b took north over once a stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_one_sqlite_file_fail_over_through_the_same_leases() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let all: &[&str] = &["*"];
    let mut nodes = start_nodes(dir.path(), &url, &receiver, &[("a", all)], "2s").await;
    // b starts after a has migrated the file.
    nodes.extend(start_nodes(dir.path(), &url, &receiver, &[("b", all)], "2s").await);
    let db = Db::connect(&url).await;
    let load = Load::start(&db, &["north"], 5, Duration::from_millis(20)).await;
    let ((old, old_epoch), _) = db
        .wait_for_leader("north", Duration::from_secs(10), |_| true)
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    nodes[index_of(&nodes, &old)].signal("KILL");
    let ((_, new_epoch), failover) = db
        .wait_for_leader("north", Duration::from_secs(10), |holder| holder != old)
        .await;
    assert!(new_epoch > old_epoch);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    load.stop().await;

    let audit = audit_when_complete(&db, &receiver, Duration::from_secs(30)).await;
    assert_complete_and_ordered(&audit);
    assert!(
        failover < Duration::from_secs(3),
        "failover took {failover:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_snapshots_its_region_on_every_lease() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let config = |name: &str| {
        node_config(
            name,
            &database.url,
            &["*"],
            "2s",
            &receiver.url(&format!("/{name}")),
        )
        .replace("[feed]\n", "[feed]\nsnapshot = \"on-every-lease\"\n")
    };
    let a = Node::start(dir.path(), "a", &config("a")).await;
    let db = Db::connect(&database.url).await;
    let load = Load::start(&db, &["north"], 5, LOAD_EVERY).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    load.stop().await;
    let audit = audit_when_complete(&db, &receiver, Duration::from_secs(30)).await;
    assert_complete_and_ordered(&audit);

    a.signal("KILL");
    let b = Node::start(dir.path(), "b", &config("b")).await;
    let b_id = b.instance_id.clone();
    db.wait_for_leader("north", Duration::from_secs(10), |h| h == b_id)
        .await;
    let snapshots = || {
        let mut plants: Vec<String> = receiver
            .accepted()
            .iter()
            .filter(|r| r.path == "/b" && r.data()["kind"] == "snapshot")
            .map(|r| r.data()["plant_id"].as_str().unwrap_or("").to_owned())
            .collect();
        plants.sort();
        plants
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while snapshots().len() < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let audit = audit_when_complete(&db, &receiver, Duration::from_secs(30)).await;
    assert_complete_and_ordered(&audit);
    let snapshotted = snapshots();
    let expected: Vec<String> = (0..5).map(|n| format!("north-plant-{n}")).collect();
    assert_eq!(snapshotted, expected, "every plant of the region, once");
}
