//! The lease and fencing contract of the store, on both backends: acquisition only of a free, expired
//! or released lease, the epoch rising each time, and every write under a stale fence refused whole.

use std::sync::Arc;
use std::time::Duration;

use plant_monitor::config::DatabaseConfig;
use plant_monitor::domain::{Change, Fuel, OutcomeKind, PlantDraft, Status};
use plant_monitor::store::{self, Acquisition, Fence, Processed, Store, StoreError};
use plant_monitor_tests::TestDatabase;

const TTL: Duration = Duration::from_secs(10);

async fn open(url: String) -> Arc<dyn Store> {
    let store = store::connect(&DatabaseConfig {
        url: url.parse().expect("a database URL"),
        max_connections: 4.try_into().expect("not 0"),
    })
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn fence(holder: &str, epoch: u64) -> Fence {
    Fence {
        lease: "feed:north".into(),
        holder: holder.into(),
        epoch,
    }
}

async fn acquire(store: &dyn Store, lease: &str, holder: &str, ttl: Duration) -> Acquisition {
    store
        .acquire_lease(lease, holder, ttl)
        .await
        .expect("acquire")
}

fn north_plant() -> PlantDraft {
    PlantDraft {
        name: "Fenced".into(),
        region: "north".into(),
        fuel: Fuel::Wind,
        capacity_mw: 10.0,
        output_mw: None,
        status: Status::Planned,
        latitude: None,
        longitude: None,
        attributes: Default::default(),
    }
}

async fn a_stale_fence_refuses_every_write_and_a_fresh_one_succeeds(store: Arc<dyn Store>) {
    let north = ["north".to_owned()];
    assert_eq!(
        acquire(&*store, "feed:north", "a", TTL).await,
        Acquisition::Acquired { epoch: 1 }
    );
    match acquire(&*store, "feed:north", "b", TTL).await {
        Acquisition::Held { holder, remaining } => {
            assert_eq!(holder, "a");
            assert!(remaining > Duration::from_secs(8), "{remaining:?}");
        }
        other => panic!("b took a held lease: {other:?}"),
    }
    assert!(store.renew_lease(&fence("a", 1), TTL).await.expect("renew"));
    store.release_lease(&fence("a", 1)).await.expect("release");
    assert_eq!(
        acquire(&*store, "feed:north", "b", TTL).await,
        Acquisition::Acquired { epoch: 2 }
    );
    assert!(!store.renew_lease(&fence("a", 1), TTL).await.expect("renew"));

    let plant = store.create_plant(&north_plant()).await.expect("create");
    let change = store.unprocessed_changes(&north, 10).await.expect("read");
    assert_eq!(change.len(), 1);
    assert_eq!(change[0].plant_id, plant.id);
    let processed = routed(&change[0]);
    let stale = store
        .record_processed(std::slice::from_ref(&processed), &[fence("a", 1)])
        .await;
    assert!(
        matches!(&stale, Err(StoreError::Fenced { lease }) if lease == "feed:north"),
        "{stale:?}"
    );
    assert_eq!(
        store.unprocessed_changes(&north, 10).await.unwrap().len(),
        1
    );
    assert!(
        store
            .due_deliveries("out", &north, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let stale = store.snapshot("north", false, &fence("a", 1)).await;
    assert!(matches!(stale, Err(StoreError::Fenced { .. })), "{stale:?}");

    store
        .record_processed(&[processed], &[fence("b", 2)])
        .await
        .expect("the leader's write");
    assert!(
        store
            .unprocessed_changes(&north, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.due_deliveries("out", &north, 10).await.unwrap().len(),
        1
    );
    assert!(
        store
            .due_deliveries("out", &["south".to_owned()], 10)
            .await
            .unwrap()
            .is_empty(),
        "a region's deliveries go to its own leader"
    );
    // The deposed leader's snapshot was rolled back whole, so the region's first snapshot is still
    // to be taken, by the leader that holds it now.
    assert_eq!(
        store.snapshot("north", true, &fence("b", 2)).await.unwrap(),
        1
    );
    assert_eq!(
        store.snapshot("north", true, &fence("b", 2)).await.unwrap(),
        0
    );
}

async fn an_expired_lease_is_taken_with_the_next_epoch(store: Arc<dyn Store>) {
    let short = Duration::from_millis(1000);
    assert_eq!(
        acquire(&*store, "feed:south", "a", short).await,
        Acquisition::Acquired { epoch: 1 }
    );
    assert!(matches!(
        acquire(&*store, "feed:south", "b", short).await,
        Acquisition::Held { .. }
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        acquire(&*store, "feed:south", "b", short).await,
        Acquisition::Acquired { epoch: 2 }
    );
    let leases = store.leases().await.expect("leases");
    assert_eq!(leases.len(), 1);
    assert_eq!((leases[0].holder.as_str(), leases[0].epoch), ("b", 2));
    assert!(leases[0].held);
}

#[tokio::test]
async fn on_sqlite_a_stale_fence_refuses_every_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("leases.db").display());
    a_stale_fence_refuses_every_write_and_a_fresh_one_succeeds(open(url).await).await;
}

#[tokio::test]
async fn on_postgres_a_stale_fence_refuses_every_write() {
    let database = TestDatabase::create().await;
    a_stale_fence_refuses_every_write_and_a_fresh_one_succeeds(open(database.url.clone()).await)
        .await;
}

#[tokio::test]
async fn on_sqlite_an_expired_lease_is_taken_with_the_next_epoch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("leases.db").display());
    an_expired_lease_is_taken_with_the_next_epoch(open(url).await).await;
}

#[tokio::test]
async fn on_postgres_an_expired_lease_is_taken_with_the_next_epoch() {
    let database = TestDatabase::create().await;
    an_expired_lease_is_taken_with_the_next_epoch(open(database.url.clone()).await).await;
}

fn routed(change: &Change) -> Processed {
    Processed {
        seq: change.seq,
        plant_id: change.plant_id.clone(),
        region: change.region.clone(),
        result: OutcomeKind::Routed,
        plugin: None,
        reason: None,
        event: Some("{}".into()),
        sinks: vec!["out".into()],
    }
}

async fn a_plant_that_moves_regions_keeps_its_order_across_leaders(store: Arc<dyn Store>) {
    let (north, south) = (["north".to_owned()], ["south".to_owned()]);
    let plant = store.create_plant(&north_plant()).await.expect("create");
    let moved = PlantDraft {
        region: "south".into(),
        ..north_plant()
    };
    store
        .replace_plant(&plant.id, &moved, None)
        .await
        .expect("move");
    assert!(
        store
            .unprocessed_changes(&south, 10)
            .await
            .unwrap()
            .is_empty(),
        "south's leader waits for north's earlier change of the plant"
    );
    acquire(&*store, "feed:north", "a", TTL).await;
    acquire(&*store, "feed:south", "b", TTL).await;
    let created = store.unprocessed_changes(&north, 10).await.unwrap();
    store
        .record_processed(&[routed(&created[0])], &[fence("a", 1)])
        .await
        .expect("north's write");
    let updated = store.unprocessed_changes(&south, 10).await.unwrap();
    assert_eq!(updated.len(), 1);
    let south_fence = Fence {
        lease: "feed:south".into(),
        holder: "b".into(),
        epoch: 1,
    };
    store
        .record_processed(&[routed(&updated[0])], &[south_fence])
        .await
        .expect("south's write");
    assert!(
        store
            .due_deliveries("out", &south, 10)
            .await
            .unwrap()
            .is_empty(),
        "south's delivery waits for north's earlier one"
    );
    let first = store.due_deliveries("out", &north, 10).await.unwrap();
    let delivered = store::Attempts {
        delivered: vec![first[0].id],
        ..Default::default()
    };
    store
        .record_attempts("out", &delivered)
        .await
        .expect("delivered");
    assert_eq!(
        store.due_deliveries("out", &south, 10).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn on_sqlite_a_plant_that_moves_regions_keeps_its_order_across_leaders() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("leases.db").display());
    a_plant_that_moves_regions_keeps_its_order_across_leaders(open(url).await).await;
}

#[tokio::test]
async fn on_postgres_a_plant_that_moves_regions_keeps_its_order_across_leaders() {
    let database = TestDatabase::create().await;
    a_plant_that_moves_regions_keeps_its_order_across_leaders(open(database.url.clone()).await)
        .await;
}

#[tokio::test]
async fn get_v1_leases_shows_this_instance_leading_each_region_in_the_data() {
    let app = plant_monitor_tests::TestApp::start().await;
    app.create(&plant_monitor_tests::plant("Grand Coulee"))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let leases = loop {
        let leases = app.get_json("/v1/leases").await;
        if leases["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
        {
            break leases;
        }
        assert!(std::time::Instant::now() < deadline, "no lease taken");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let item = &leases["items"][0];
    assert_eq!(item["region"], "us-west");
    assert_eq!(item["name"], "feed:us-west");
    assert_eq!(item["holder"], leases["instance_id"]);
    assert_eq!(item["epoch"], 1);
    assert_eq!(item["held"], true);
    assert!(
        item["expires_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z'))
    );
}
