//! The store's contract, on each backend, against the store itself (no service around it): leases and
//! fencing (acquisition only of a free, expired or released lease, the epoch rising each time, every
//! write under a stale fence refused whole), the outbox (what is due, in which order, for which
//! regions; what attempts come to; disabled sinks; the figures), dead letters and their replay, and
//! retention.

use std::time::Duration;

use plant_monitor::domain::{Change, ChangeKind, OutcomeKind, PlantDraft};
use plant_monitor::store::{
    self, Acquisition, Attempts, Dead, DeadLetters, Delivered, DeliveryStatus, Fence, Processed,
    Replay, Retry, Store, StoreError,
};
use plant_monitor_tests::{Backend, TestStore, draft, lead};
use sqlx::AnyPool;

plant_monitor_tests::on_every_backend! {
    a_stale_fence_refuses_every_write_and_a_fresh_one_succeeds,
    an_expired_lease_is_taken_with_the_next_epoch,
    a_plant_that_moves_regions_keeps_its_order_across_leaders,
    a_plant_that_moves_away_and_back_waits_for_its_entry_in_the_region_it_left,
    a_plant_deleted_in_one_region_and_created_again_in_another_waits_for_its_delete,
    the_next_batch_read_while_one_is_recorded_leaves_out_the_entries_in_flight,
    due_deliveries_are_those_of_the_led_regions_in_id_order_and_a_retry_holds_back_only_its_plant,
    recorded_attempts_deliver_retry_or_bury_and_the_sink_figures_count_them,
    a_disabled_sink_has_nothing_due_until_it_is_enabled,
    replaying_a_sinks_dead_letter_requeues_it_and_a_plugins_reprocesses_its_change,
    retrying_a_sinks_dead_letters_requeues_every_one_of_that_sink,
    pruning_deletes_old_delivered_rows_and_the_processed_changes_left_with_nothing_to_deliver,
    a_batch_of_large_rows_is_cut_at_the_read_budget,
    the_sink_figures_stay_equal_to_a_count_of_the_outbox_whoever_changes_it,
    the_pipeline_that_processed_a_change_is_kept_with_its_outcome_and_its_deliveries,
    the_recorded_journal_gives_the_last_processed_entries_with_their_event_and_sinks,
    the_journal_tells_its_last_seq_and_which_of_given_entries_are_processed,
    an_open_transaction_that_wrote_the_journal_is_named_among_its_writers_until_it_ends,
    every_reader_of_the_journal_is_woken_by_a_write_even_one_made_while_it_was_busy,
}

const TTL: Duration = Duration::from_secs(10);

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

/// What the pipeline makes of a change it routes to `sinks`.
fn routed(change: &Change, sinks: &[&str]) -> Processed {
    Processed {
        seq: change.seq,
        plant_id: change.plant_id.clone(),
        region: change.region.clone(),
        result: OutcomeKind::Routed,
        plugin: None,
        reason: None,
        event: Some("{}".into()),
        sinks: sinks.iter().map(|sink| sink.to_string()).collect(),
        pipeline: PIPELINE.into(),
    }
}

/// What the pipeline makes of a change: filtered out when it is about `filtered`, else routed to `sinks`.
fn filtering(change: &Change, filtered: &str, sinks: &[&str]) -> Processed {
    if change.plant_id == filtered {
        Processed {
            result: OutcomeKind::Filtered,
            event: None,
            ..routed(change, &[])
        }
    } else {
        routed(change, sinks)
    }
}

/// The pipeline snapshot id the tests' feed records.
const PIPELINE: &str = "3fa2c1d9e0b4";

/// Takes the lease of `region` as its feed would, and runs every unprocessed change of the region
/// through `process`; returns the changes.
async fn feed(
    store: &TestStore,
    region: &str,
    process: impl Fn(&Change) -> Processed,
) -> Vec<Change> {
    store.captured().await;
    let lease = format!("feed:{region}");
    let Acquisition::Acquired { epoch } = acquire(&**store, &lease, "leader", TTL).await else {
        panic!("the region's lease is free");
    };
    let fence = Fence {
        lease,
        holder: "leader".into(),
        epoch,
    };
    let changes = store
        .unprocessed_changes(&[region.to_owned()], 100, &[])
        .await
        .expect("read");
    let batch: Vec<Processed> = changes.iter().map(process).collect();
    store
        .record_processed(&batch, &[fence])
        .await
        .expect("the leader's write");
    changes
}

/// Deliveries with these ids, acknowledged by their receiver a few milliseconds after their commit.
fn acknowledged(ids: &[i64]) -> Vec<Delivered> {
    (ids.iter())
        .map(|&id| Delivered {
            id,
            latency: Some(Duration::from_millis(5)),
        })
        .collect()
}

/// The ids of what is due at `sink` for `regions`.
async fn due(store: &dyn Store, sink: &str, regions: &[&str]) -> Vec<i64> {
    let regions: Vec<String> = regions.iter().map(|r| r.to_string()).collect();
    store
        .due_deliveries(sink, &regions, 100)
        .await
        .expect("due deliveries")
        .iter()
        .map(|delivery| delivery.id)
        .collect()
}

/// The figures of `sink` (all zero for a sink the store knows nothing of).
async fn stats(store: &dyn Store, sink: &str) -> store::SinkStats {
    store
        .sink_stats()
        .await
        .expect("sink stats")
        .into_iter()
        .find(|(name, _)| name == sink)
        .map(|(_, stats)| stats)
        .unwrap_or_default()
}

async fn a_stale_fence_refuses_every_write_and_a_fresh_one_succeeds(backend: Backend) {
    let store = backend.store().await;
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

    let plant = store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .expect("create");
    store.captured().await;
    let change = store
        .unprocessed_changes(&north, 10, &[])
        .await
        .expect("read");
    assert_eq!(change.len(), 1);
    assert_eq!(change[0].plant_id, plant.id);
    let processed = routed(&change[0], &["out"]);
    let stale = store
        .record_processed(std::slice::from_ref(&processed), &[fence("a", 1)])
        .await;
    assert!(
        matches!(&stale, Err(StoreError::Fenced { lease }) if lease == "feed:north"),
        "{stale:?}"
    );
    assert_eq!(
        store
            .unprocessed_changes(&north, 10, &[])
            .await
            .unwrap()
            .len(),
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
            .unprocessed_changes(&north, 10, &[])
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

async fn an_expired_lease_is_taken_with_the_next_epoch(backend: Backend) {
    let store = backend.store().await;
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
    // In wal capture the capture leader's lease is listed too.
    let leases: Vec<_> = (store.leases().await.expect("leases").into_iter())
        .filter(|lease| lease.name != "capture")
        .collect();
    assert_eq!(leases.len(), 1);
    assert_eq!((leases[0].holder.as_str(), leases[0].epoch), ("b", 2));
    assert!(leases[0].held);
}

/// The feed reads its next batch while the last one's record has not committed: the entries named in
/// flight are left out wherever they lie, the rest come in `seq` order up to the limit, and once the
/// record commits a plain read gives what the one made meanwhile gave.
async fn the_next_batch_read_while_one_is_recorded_leaves_out_the_entries_in_flight(
    backend: Backend,
) {
    let store = backend.store().await;
    for name in ["a", "b", "c", "d", "e"] {
        store
            .create_plant(&draft("north", name), None)
            .await
            .unwrap();
    }
    store
        .create_plant(&draft("south", "f"), None)
        .await
        .unwrap();
    store.captured().await;
    let north = ["north".to_owned()];
    let all = store.unprocessed_changes(&north, 10, &[]).await.unwrap();
    assert_eq!(all.len(), 5);
    let seqs = |changes: &[Change]| changes.iter().map(|c| c.seq).collect::<Vec<_>>();

    let in_flight = [all[0].seq, all[2].seq];
    let read = store.unprocessed_changes(&north, 10, &in_flight).await;
    assert_eq!(seqs(&read.unwrap()), [all[1].seq, all[3].seq, all[4].seq]);
    let read = store.unprocessed_changes(&north, 2, &[all[1].seq]).await;
    assert_eq!(seqs(&read.unwrap()), [all[0].seq, all[2].seq]);
    let every = seqs(&all);
    let read = store.unprocessed_changes(&north, 10, &every).await;
    assert!(read.unwrap().is_empty());

    let Acquisition::Acquired { epoch } = acquire(&*store, "feed:north", "leader", TTL).await
    else {
        panic!("the region's lease is free");
    };
    let batch: Vec<Processed> = all[..2].iter().map(|c| routed(c, &["out"])).collect();
    let fences = [fence("leader", epoch)];
    let (recorded, ahead) = tokio::join!(
        store.record_processed(&batch, &fences),
        store.unprocessed_changes(&north, 10, &every[..2])
    );
    recorded.expect("the leader's write");
    assert_eq!(seqs(&ahead.unwrap()), every[2..]);
    let after = store.unprocessed_changes(&north, 10, &[]).await.unwrap();
    assert_eq!(seqs(&after), every[2..]);
}

async fn a_plant_that_moves_regions_keeps_its_order_across_leaders(backend: Backend) {
    let store = backend.store().await;
    let (north, south) = (["north".to_owned()], ["south".to_owned()]);
    let plant = store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .expect("create");
    let moved = PlantDraft {
        region: "south".into(),
        ..draft("north", "Fenced")
    };
    store
        .replace_plant(&plant.id, &moved, None, None)
        .await
        .expect("move");
    store.captured().await;
    assert!(
        nothing_to_feed(&*store, "south").await,
        "south's leader waits for north's earlier change of the plant"
    );
    acquire(&*store, "feed:north", "a", TTL).await;
    acquire(&*store, "feed:south", "b", TTL).await;
    let created = store.unprocessed_changes(&north, 10, &[]).await.unwrap();
    store
        .record_processed(&[routed(&created[0], &["out"])], &[fence("a", 1)])
        .await
        .expect("north's write");
    let updated = store.unprocessed_changes(&south, 10, &[]).await.unwrap();
    assert_eq!(updated.len(), 1);
    let south_fence = Fence {
        lease: "feed:south".into(),
        holder: "b".into(),
        epoch: 1,
    };
    store
        .record_processed(&[routed(&updated[0], &["out"])], &[south_fence])
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
    let delivered = Attempts {
        delivered: acknowledged(&[first[0].id]),
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

/// Whether the feed of `region` alone finds nothing to read.
async fn nothing_to_feed(store: &dyn Store, region: &str) -> bool {
    let regions = [region.to_owned()];
    let entries = store.unprocessed_changes(&regions, 10, &[]).await;
    entries.unwrap().is_empty()
}

/// Records every unprocessed entry of `region` as routed, under a lease on it that it takes, and
/// returns their kinds.
async fn feed_region(store: &dyn Store, region: &str) -> Vec<ChangeKind> {
    let fence = lead(store, region).await;
    let entries = store
        .unprocessed_changes(&[region.to_owned()], 10, &[])
        .await
        .unwrap();
    let batch: Vec<Processed> = entries.iter().map(|c| routed(c, &["out"])).collect();
    store
        .record_processed(&batch, &[fence])
        .await
        .expect("the region's write");
    entries.into_iter().map(|c| c.kind).collect()
}

async fn a_plant_that_moves_away_and_back_waits_for_its_entry_in_the_region_it_left(
    backend: Backend,
) {
    let store = backend.store().await;
    let plant = store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .expect("create");
    store.captured().await;
    assert_eq!(feed_region(&*store, "north").await, [ChangeKind::Created]);
    for region in ["south", "north"] {
        store
            .replace_plant(&plant.id, &draft(region, "Fenced"), None, None)
            .await
            .expect("move");
    }
    store.captured().await;
    assert!(
        nothing_to_feed(&*store, "north").await,
        "north's leader waits for south's entry of the plant"
    );
    assert_eq!(
        feed_region(&*store, "south").await,
        [ChangeKind::Updated],
        "south's leader is not held back by north's entries, all processed"
    );
    assert_eq!(feed_region(&*store, "north").await, [ChangeKind::Updated]);
}

async fn a_plant_deleted_in_one_region_and_created_again_in_another_waits_for_its_delete(
    backend: Backend,
) {
    let store = backend.store().await;
    let plant = store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .expect("create");
    store
        .delete_plant(&plant.id, None, None)
        .await
        .expect("delete");
    sqlx::query(
        "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) \
         VALUES ($1, 'Again', 'south', 'wind', 10)",
    )
    .bind(&plant.id)
    .execute(&store.sql().await)
    .await
    .expect("the same id created again");
    store.captured().await;
    assert!(
        nothing_to_feed(&*store, "south").await,
        "south's leader waits for north's delete of the plant"
    );
    assert_eq!(
        feed_region(&*store, "north").await,
        [ChangeKind::Created, ChangeKind::Deleted]
    );
    assert_eq!(feed_region(&*store, "south").await, [ChangeKind::Created]);
}

/// An entry journaled before migration 12 holds its images as JSON only: a move of that time names
/// the region it left in its `before` image, and still waits for the plant's entry there.
#[tokio::test]
async fn a_move_journaled_as_json_waits_for_the_plants_entry_in_the_region_it_left() {
    let store = Backend::Postgres.store().await;
    let plant = store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .expect("create");
    sqlx::query(
        "INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields) \
         SELECT plant_id, 'south', 'updated', plant_image(after_row), \
                jsonb_set(plant_image(after_row), '{region}', '\"south\"'), '[\"region\"]' \
         FROM plant_changes WHERE plant_id = $1",
    )
    .bind(&plant.id)
    .execute(&store.sql().await)
    .await
    .expect("a move journaled as JSON");
    assert!(
        nothing_to_feed(&*store, "south").await,
        "south's leader waits for north's entry of the plant"
    );
    assert_eq!(feed_region(&*store, "north").await, [ChangeKind::Created]);
    assert_eq!(feed_region(&*store, "south").await, [ChangeKind::Updated]);
}

async fn due_deliveries_are_those_of_the_led_regions_in_id_order_and_a_retry_holds_back_only_its_plant(
    backend: Backend,
) {
    let store = backend.store().await;
    let first = store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .unwrap();
    store
        .replace_plant(
            &first.id,
            &PlantDraft {
                capacity_mw: 20.0,
                ..draft("north", "Fenced")
            },
            None,
            None,
        )
        .await
        .unwrap();
    let second = store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .unwrap();
    let southern = store
        .create_plant(&draft("south", "Fenced"), None)
        .await
        .unwrap();
    feed(&store, "north", |c| routed(c, &["out"])).await;
    feed(&store, "south", |c| routed(c, &["out"])).await;

    let north = store
        .due_deliveries("out", &["north".to_owned()], 10)
        .await
        .unwrap();
    let plants: Vec<&str> = north.iter().map(|d| d.plant_id.as_str()).collect();
    assert_eq!(plants, [first.id.as_str(), &first.id, &second.id]);
    assert!(
        north
            .windows(2)
            .all(|w| w[0].id < w[1].id && w[0].seq < w[1].seq)
    );
    assert!(
        north
            .iter()
            .all(|d| d.region == "north" && d.attempts == 0 && d.event == "{}")
    );
    let south = store
        .due_deliveries("out", &["south".to_owned()], 10)
        .await
        .unwrap();
    assert_eq!(south.len(), 1);
    assert_eq!(south[0].plant_id, southern.id);
    assert_eq!(due(&*store, "out", &["north", "south"]).await.len(), 4);
    assert_eq!(
        store
            .due_deliveries("out", &["north".to_owned()], 2)
            .await
            .unwrap()
            .len(),
        2,
        "at most limit"
    );
    assert!(due(&*store, "other", &["north", "south"]).await.is_empty());
    assert!(due(&*store, "out", &["east"]).await.is_empty());

    let retry = Attempts {
        retries: vec![Retry {
            id: north[0].id,
            after: Duration::from_secs(3600),
            error: "HTTP 503 Service Unavailable".into(),
        }],
        ..Default::default()
    };
    store.record_attempts("out", &retry).await.unwrap();
    assert_eq!(
        due(&*store, "out", &["north"]).await,
        [north[2].id],
        "a delivery waiting for its retry holds back its plant's later ones, and only those"
    );
}

async fn recorded_attempts_deliver_retry_or_bury_and_the_sink_figures_count_them(backend: Backend) {
    let store = backend.store().await;
    for _ in 0..4 {
        store
            .create_plant(&draft("north", "Fenced"), None)
            .await
            .unwrap();
    }
    feed(&store, "north", |c| routed(c, &["out"])).await;
    let ids = due(&*store, "out", &["north"]).await;
    assert_eq!(ids.len(), 4);
    let attempts = Attempts {
        delivered: acknowledged(&[ids[0]]),
        retries: vec![
            Retry {
                id: ids[1],
                after: Duration::from_secs(3600),
                error: "HTTP 503 Service Unavailable".into(),
            },
            Retry {
                id: ids[2],
                after: Duration::ZERO,
                error: "connection refused".into(),
            },
        ],
        dead: vec![Dead {
            id: ids[3],
            error: "HTTP 500 Internal Server Error".into(),
        }],
    };
    store.record_attempts("out", &attempts).await.unwrap();

    let again = store
        .due_deliveries("out", &["north".to_owned()], 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "only the retry that is due: {again:?}");
    assert_eq!((again[0].id, again[0].attempts), (ids[2], 1));
    let out = stats(&*store, "out").await;
    assert_eq!(
        (out.pending, out.delivered, out.dead, out.failed_attempts),
        (2, 1, 1, 3)
    );
    assert_eq!(out.last_error.as_deref(), Some("connection refused"));
    assert!(out.last_error_at.is_some_and(|at| at.ends_with('Z')));
    assert_eq!((out.disabled_reason, out.disabled_at), (None, None));

    let delivered = store
        .list_deliveries(DeliveryStatus::Delivered, Some("out"), 0, 10)
        .await
        .unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!((delivered[0].id, delivered[0].attempts), (ids[0], 1));
    assert_eq!(delivered[0].last_error, None);
    assert!(
        delivered[0]
            .delivered_at
            .as_ref()
            .is_some_and(|at| at.ends_with('Z'))
    );
    let dead = store
        .list_deliveries(DeliveryStatus::Dead, Some("out"), 0, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, ids[3]);
    assert_eq!(dead[0].sink.as_deref(), Some("out"));
    assert_eq!(dead[0].plugin, None);
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    assert_eq!(dead[0].delivered_at, None);
    assert!(dead[0].created_at.ends_with('Z') && dead[0].next_attempt_at.ends_with('Z'));
    let pending = store
        .list_deliveries(DeliveryStatus::Pending, None, ids[1], 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1, "after an id: {pending:?}");
    assert_eq!(
        (pending[0].id, pending[0].last_error.as_deref()),
        (ids[2], Some("connection refused"))
    );

    // Only pending deliveries are touched: a late answer for a finished one changes nothing.
    let late = Attempts {
        delivered: acknowledged(&[ids[3]]),
        dead: vec![Dead {
            id: ids[0],
            error: "late".into(),
        }],
        ..Default::default()
    };
    store.record_attempts("out", &late).await.unwrap();
    let after = stats(&*store, "out").await;
    assert_eq!((after.pending, after.delivered, after.dead), (2, 1, 1));
}

async fn a_disabled_sink_has_nothing_due_until_it_is_enabled(backend: Backend) {
    let store = backend.store().await;
    store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .unwrap();
    feed(&store, "north", |c| routed(c, &["out", "other"])).await;
    assert!(
        !store.enable_sink("out").await.unwrap(),
        "it was not disabled"
    );

    store.disable_sink("out", "HTTP 410 Gone").await.unwrap();
    store.disable_sink("idle", "HTTP 410 Gone").await.unwrap();
    assert!(due(&*store, "out", &["north"]).await.is_empty());
    assert_eq!(
        due(&*store, "other", &["north"]).await.len(),
        1,
        "other sinks deliver"
    );
    let out = stats(&*store, "out").await;
    assert_eq!(out.pending, 1);
    assert_eq!(out.disabled_reason.as_deref(), Some("HTTP 410 Gone"));
    assert!(out.disabled_at.is_some_and(|at| at.ends_with('Z')));
    let names: Vec<String> = store
        .sink_stats()
        .await
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        names,
        ["idle", "other", "out"],
        "a sink with only a state is listed"
    );
    assert_eq!(
        stats(&*store, "idle").await.disabled_reason.as_deref(),
        Some("HTTP 410 Gone")
    );

    assert!(store.enable_sink("out").await.unwrap());
    assert!(!store.enable_sink("out").await.unwrap());
    assert_eq!(due(&*store, "out", &["north"]).await.len(), 1);
    let out = stats(&*store, "out").await;
    assert_eq!((out.disabled_reason, out.disabled_at), (None, None));
}

async fn replaying_a_sinks_dead_letter_requeues_it_and_a_plugins_reprocesses_its_change(
    backend: Backend,
) {
    let store = backend.store().await;
    let routed_plant = store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .unwrap();
    let failed_plant = store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .unwrap();
    feed(&store, "north", |change| {
        if change.plant_id == failed_plant.id {
            Processed {
                result: OutcomeKind::Failed,
                plugin: Some("chaos".into()),
                reason: Some("chaos: asked to fail".into()),
                event: None,
                ..routed(change, &[])
            }
        } else {
            routed(change, &["out"])
        }
    })
    .await;
    let delivery = due(&*store, "out", &["north"]).await[0];
    let pending = store.retry_delivery(delivery).await.unwrap();
    assert_eq!(pending, Replay::NotDead);
    let bury = Attempts {
        dead: vec![Dead {
            id: delivery,
            error: "HTTP 500 Internal Server Error".into(),
        }],
        ..Default::default()
    };
    store.record_attempts("out", &bury).await.unwrap();

    let dead = store
        .list_deliveries(DeliveryStatus::Dead, None, 0, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    let plugin_letter = dead
        .iter()
        .find(|d| d.plant_id == failed_plant.id)
        .expect("the plugin's dead letter");
    assert_eq!(plugin_letter.sink, None);
    assert_eq!(plugin_letter.plugin.as_deref(), Some("chaos"));
    assert_eq!(
        plugin_letter.last_error.as_deref(),
        Some("plugin chaos: chaos: asked to fail")
    );
    let only_out = store
        .list_deliveries(DeliveryStatus::Dead, Some("out"), 0, 10)
        .await
        .unwrap();
    assert!(
        only_out.iter().all(|d| d.sink.as_deref() == Some("out")),
        "{only_out:?}"
    );
    assert_eq!(stats(&*store, "out").await.dead, 1);
    assert!(
        store
            .sink_stats()
            .await
            .unwrap()
            .iter()
            .all(|(name, _)| name == "out"),
        "a plugin's dead letter belongs to no sink"
    );

    assert_eq!(
        store.retry_delivery(delivery).await.unwrap(),
        Replay::Requeued
    );
    let requeued = store
        .due_deliveries("out", &["north".to_owned()], 10)
        .await
        .unwrap();
    assert_eq!(requeued.len(), 1);
    assert_eq!(
        (requeued[0].id, &requeued[0].plant_id, requeued[0].attempts),
        (delivery, &routed_plant.id, 0)
    );
    assert_eq!(
        store.retry_delivery(delivery).await.unwrap(),
        Replay::NotDead
    );

    assert!(
        store
            .unprocessed_changes(&["north".to_owned()], 10, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.retry_delivery(plugin_letter.id).await.unwrap(),
        Replay::Reprocessed
    );
    let again = store
        .unprocessed_changes(&["north".to_owned()], 10, &[])
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].plant_id, failed_plant.id);
    assert_eq!(again[0].outcome, None);
    assert_eq!(
        store.retry_delivery(plugin_letter.id).await.unwrap(),
        Replay::NotFound,
        "the replayed letter is gone"
    );
    assert!(
        store
            .list_deliveries(DeliveryStatus::Dead, None, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.retry_delivery(999_999).await.unwrap(),
        Replay::NotFound
    );
}

async fn retrying_a_sinks_dead_letters_requeues_every_one_of_that_sink(backend: Backend) {
    let store = backend.store().await;
    for _ in 0..2 {
        store
            .create_plant(&draft("north", "Fenced"), None)
            .await
            .unwrap();
    }
    feed(&store, "north", |c| routed(c, &["out", "other"])).await;
    for sink in ["out", "other"] {
        let bury = Attempts {
            dead: due(&*store, sink, &["north"])
                .await
                .into_iter()
                .map(|id| Dead {
                    id,
                    error: "HTTP 500 Internal Server Error".into(),
                })
                .collect(),
            ..Default::default()
        };
        store.record_attempts(sink, &bury).await.unwrap();
    }
    assert_eq!(store.retry_dead(&of_sink("out")).await.unwrap(), 2);
    assert_eq!(store.retry_dead(&of_sink("out")).await.unwrap(), 0);
    assert_eq!(due(&*store, "out", &["north"]).await.len(), 2);
    let other = stats(&*store, "other").await;
    assert_eq!(
        (other.pending, other.dead),
        (0, 2),
        "another sink's letters stay"
    );
    assert_eq!(store.retry_dead(&of_sink("nowhere")).await.unwrap(), 0);
}

/// Every dead letter of `sink`.
fn of_sink(sink: &str) -> DeadLetters {
    DeadLetters {
        sink: Some(sink.into()),
        ..DeadLetters::default()
    }
}

async fn pruning_deletes_old_delivered_rows_and_the_processed_changes_left_with_nothing_to_deliver(
    backend: Backend,
) {
    let store = backend.store().await;
    let mut plants = Vec::new();
    for _ in 0..4 {
        plants.push(
            store
                .create_plant(&draft("north", "Fenced"), None)
                .await
                .unwrap()
                .id,
        );
    }
    // The first is delivered, the second still pending, the third dead, the fourth filtered out.
    let filtered = plants[3].clone();
    feed(&store, "north", |change| {
        filtering(change, &filtered, &["out"])
    })
    .await;
    let unprocessed = store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .unwrap()
        .id;
    let ids = due(&*store, "out", &["north"]).await;
    let attempts = Attempts {
        delivered: acknowledged(&[ids[0]]),
        dead: vec![Dead {
            id: ids[2],
            error: "HTTP 500 Internal Server Error".into(),
        }],
        ..Default::default()
    };
    store.record_attempts("out", &attempts).await.unwrap();

    assert_eq!(
        store.prune(Duration::from_secs(3600), 100).await.unwrap(),
        (0, 0),
        "nothing is an hour old"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        store.prune(Duration::from_millis(10), 100).await.unwrap(),
        (1, 2),
        "the delivered row, then its change and the filtered one"
    );
    let left: Vec<String> = store
        .list_changes(None, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|change| change.plant_id)
        .collect();
    assert_eq!(left, [plants[1].clone(), plants[2].clone(), unprocessed]);
    let out = stats(&*store, "out").await;
    assert_eq!((out.pending, out.delivered, out.dead), (1, 0, 1));
    assert_eq!(
        store.prune(Duration::from_millis(10), 100).await.unwrap(),
        (0, 0)
    );
}

/// Thirty changes of 700 KB plants, and thirty events of 700 KB, are 21 MB: the feed and a sink worker
/// read them in batches of about `READ_BYTES`, not in one, and still get every one in order.
async fn a_batch_of_large_rows_is_cut_at_the_read_budget(backend: Backend) {
    let store = backend.store().await;
    let mut large = draft("north", "Fenced");
    large.attributes.insert("blob".into(), "x".repeat(700_000));
    for _ in 0..30 {
        store.create_plant(&large, None).await.unwrap();
    }
    let north = ["north".to_owned()];
    let first = store.unprocessed_changes(&north, 100, &[]).await.unwrap();
    assert!(
        (1..30).contains(&first.len()),
        "{} of 30 changes in one batch",
        first.len()
    );
    let budget = store::READ_BYTES as usize;
    assert!(
        first.len() * 700_000 < budget + 800_000,
        "{} changes",
        first.len()
    );
    let event = format!("{{\"blob\": \"{}\"}}", "y".repeat(700_000));
    let mut fed = 0;
    while fed < 30 {
        let changes = feed(&store, "north", |change| Processed {
            event: Some(event.clone()),
            ..routed(change, &["out"])
        })
        .await;
        assert!(!changes.is_empty());
        fed += changes.len();
    }
    let due = store.due_deliveries("out", &north, 1024).await.unwrap();
    assert!(
        (1..30).contains(&due.len()),
        "{} of 30 events due at once",
        due.len()
    );
    assert!(due.windows(2).all(|w| w[0].id < w[1].id));
}

/// Every sink's figures as a count of the outbox's rows gives them, and as `sink_stats` reads them.
async fn counted_and_read(store: &TestStore, sql: &AnyPool) -> (Vec<Figures>, Vec<Figures>) {
    let counted: Vec<Figures> = sqlx::query_as(
        "SELECT sink, sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), \
           sum(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), \
           sum(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), \
           sum(attempts - CASE WHEN status = 'delivered' THEN 1 ELSE 0 END) \
         FROM deliveries WHERE sink IS NOT NULL GROUP BY sink ORDER BY sink",
    )
    .fetch_all(sql)
    .await
    .expect("counted");
    let read = store
        .sink_stats()
        .await
        .expect("sink stats")
        .into_iter()
        .filter(|(_, s)| s.pending + s.delivered + s.dead + s.failed_attempts > 0)
        .map(|(name, s)| {
            let n = |v: u64| v as i64;
            (
                name,
                n(s.pending),
                n(s.delivered),
                n(s.dead),
                n(s.failed_attempts),
            )
        })
        .collect();
    (counted, read)
}

type Figures = (String, i64, i64, i64, i64);

/// The figures are counters the database keeps as outbox rows come, change and go, so that reading
/// them costs a row per sink; whoever changes the outbox, the store or another SQL client, they stay
/// what a count of its rows gives.
async fn the_sink_figures_stay_equal_to_a_count_of_the_outbox_whoever_changes_it(backend: Backend) {
    let store = backend.store().await;
    let sql = store.sql().await;
    for _ in 0..6 {
        store
            .create_plant(&draft("north", "Fenced"), None)
            .await
            .unwrap();
    }
    feed(&store, "north", |change| routed(change, &["a", "b"])).await;
    let (counted, read) = counted_and_read(&store, &sql).await;
    assert_eq!(
        counted,
        [("a".into(), 6, 0, 0, 0), ("b".into(), 6, 0, 0, 0)]
    );
    assert_eq!(read, counted, "the feed's rows");

    let ids = due(&*store, "a", &["north"]).await;
    let attempts = Attempts {
        delivered: acknowledged(&ids[..2]),
        retries: vec![Retry {
            id: ids[2],
            after: Duration::from_secs(3600),
            error: "HTTP 503 Service Unavailable".into(),
        }],
        dead: vec![Dead {
            id: ids[3],
            error: "HTTP 500 Internal Server Error".into(),
        }],
    };
    store.record_attempts("a", &attempts).await.unwrap();
    let (counted, read) = counted_and_read(&store, &sql).await;
    assert_eq!(counted[0], ("a".into(), 3, 2, 1, 2));
    assert_eq!(read, counted, "recorded attempts");

    store.reschedule_pending("a").await.unwrap();
    assert_eq!(store.retry_dead(&of_sink("a")).await.unwrap(), 1);
    let (counted, read) = counted_and_read(&store, &sql).await;
    assert_eq!(counted[0], ("a".into(), 4, 2, 0, 1));
    assert_eq!(read, counted, "a rescheduled and a retried dead letter");

    for statement in [
        "UPDATE deliveries SET status = 'delivered', attempts = attempts + 3 \
         WHERE sink = 'b' AND id IN (SELECT id FROM deliveries WHERE sink = 'b' ORDER BY id LIMIT 2)",
        "INSERT INTO deliveries (seq, sink, plant_id, region, status, attempts) \
         SELECT seq, 'c', plant_id, region, 'dead', 5 FROM deliveries WHERE sink = 'a'",
        "UPDATE deliveries SET sink = 'd' WHERE sink = 'c' AND seq IN (SELECT min(seq) FROM deliveries)",
        "DELETE FROM deliveries WHERE sink = 'b' AND status = 'pending' \
           AND id IN (SELECT max(id) FROM deliveries WHERE sink = 'b')",
    ] {
        sqlx::query(statement).execute(&sql).await.unwrap();
        let (counted, read) = counted_and_read(&store, &sql).await;
        assert_eq!(read, counted, "after {statement}");
    }
    let (counted, _) = counted_and_read(&store, &sql).await;
    assert_eq!(
        counted.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c", "d"],
        "{counted:?}"
    );

    tokio::time::sleep(Duration::from_millis(50)).await;
    store.prune(Duration::from_millis(10), 100).await.unwrap();
    let (counted, read) = counted_and_read(&store, &sql).await;
    assert_eq!(read, counted, "after pruning");
}

async fn the_pipeline_that_processed_a_change_is_kept_with_its_outcome_and_its_deliveries(
    backend: Backend,
) {
    let store = backend.store().await;
    store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .unwrap();
    feed(&store, "north", |change| routed(change, &["out"])).await;
    let journal = store.list_changes(None, 0, 10).await.unwrap();
    let outcome = journal[0].outcome.as_ref().expect("processed");
    assert_eq!(outcome.pipeline.as_deref(), Some(PIPELINE));
    let due = store
        .due_deliveries("out", &["north".to_owned()], 10)
        .await
        .unwrap();
    assert_eq!(due[0].pipeline.as_deref(), Some(PIPELINE));
}

async fn the_recorded_journal_gives_the_last_processed_entries_with_their_event_and_sinks(
    backend: Backend,
) {
    let store = backend.store().await;
    let mut plants = Vec::new();
    for _ in 0..3 {
        plants.push(
            store
                .create_plant(&draft("north", "Fenced"), None)
                .await
                .unwrap()
                .id,
        );
    }
    let filtered = plants[1].clone();
    feed(&store, "north", |change| {
        filtering(change, &filtered, &["out", "b"])
    })
    .await;
    store
        .create_plant(&draft("north", "Fenced"), None)
        .await
        .unwrap();
    let recorded = store.recorded(2).await.unwrap();
    let seen: Vec<(&str, Option<&str>, Vec<&str>)> = (recorded.iter())
        .map(|r| {
            (
                r.change.plant_id.as_str(),
                r.event.as_deref(),
                r.sinks.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (plants[1].as_str(), None, vec![]),
            (plants[2].as_str(), Some("{}"), vec!["b", "out"]),
        ],
        "the last two processed, oldest first; the unprocessed one is left out"
    );
}

async fn the_journal_tells_its_last_seq_and_which_of_given_entries_are_processed(backend: Backend) {
    let store = backend.store().await;
    assert_eq!(store.last_seq().await.unwrap(), 0);
    for region in ["north", "south", "north"] {
        store
            .create_plant(&draft(region, "Fenced"), None)
            .await
            .unwrap();
    }
    store.captured().await;
    let seqs: Vec<u64> = (store.list_changes(None, 0, 10).await.unwrap().iter())
        .map(|change| change.seq)
        .collect();
    assert_eq!(store.last_seq().await.unwrap(), seqs[2]);
    assert!(store.processed_among(&seqs, 10).await.unwrap().is_empty());
    feed(&store, "north", |change| routed(change, &["out"])).await;
    let processed = store.processed_among(&seqs, 10).await.unwrap();
    assert_eq!(
        processed.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [seqs[0], seqs[2]],
        "the north entries, in seq order"
    );
    assert!(processed.iter().all(|change| change.outcome.is_some()));
    let first = store.processed_among(&seqs, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].seq, seqs[0]);
    assert!(
        (store
            .processed_among(&[seqs[1], 999_999], 10)
            .await
            .unwrap())
        .is_empty(),
        "neither an unprocessed entry nor a seq that does not exist"
    );
}

async fn an_open_transaction_that_wrote_the_journal_is_named_among_its_writers_until_it_ends(
    backend: Backend,
) {
    let store = backend.store().await;
    no_journal_writers_soon(&store).await;
    let sql = store.sql().await;
    let mut open = sql.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('Open', 'north', 'wind', 1)",
    )
    .execute(&mut *open)
    .await
    .unwrap();
    let writers = store.journal_writers().await.unwrap();
    match backend {
        // Its seq may be overtaken by a later transaction's until it commits.
        Backend::Postgres => assert_eq!(writers, [virtual_transaction(&mut open).await]),
        // Writers take turns: nothing can overtake it.
        Backend::Sqlite => assert!(writers.is_empty(), "{writers:?}"),
        // The capture leader journals transactions in commit order once they commit, so this one is
        // not a writer of the journal; the leader itself is, while it journals.
        Backend::PostgresWal => {
            let itself = virtual_transaction(&mut open).await;
            assert!(!writers.contains(&itself), "{writers:?}");
        }
    }
    open.commit().await.unwrap();
    no_journal_writers_soon(&store).await;
}

/// The id PostgreSQL's `pg_locks` names a transaction by.
async fn virtual_transaction(open: &mut sqlx::Transaction<'_, sqlx::Any>) -> String {
    sqlx::query_scalar(
        "SELECT virtualtransaction FROM pg_locks WHERE pid = pg_backend_pid() LIMIT 1",
    )
    .fetch_one(&mut **open)
    .await
    .unwrap()
}

/// Waits until nothing writes the journal: at once, but for `wal` capture's leader, which is a
/// writer for as long as it journals a transaction.
async fn no_journal_writers_soon(store: &TestStore) {
    plant_monitor_tests::eventually(Duration::from_secs(10), || async {
        match store.journal_writers().await.unwrap() {
            writers if writers.is_empty() => Ok(()),
            writers => Err(format!("the journal's writers are {writers:?}")),
        }
    })
    .await
}

async fn every_reader_of_the_journal_is_woken_by_a_write_even_one_made_while_it_was_busy(
    backend: Backend,
) {
    let store = backend.store().await;
    let (mut first, mut second) = (store.change_signal(), store.change_signal());
    let waited = std::time::Instant::now();
    let (_, _, created) = tokio::join!(
        first.wait(Duration::from_secs(10)),
        second.wait(Duration::from_secs(10)),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            store
                .create_plant(&draft("north", "Fenced"), None)
                .await
                .unwrap()
        },
    );
    assert!(
        waited.elapsed() < Duration::from_secs(5),
        "{:?}",
        waited.elapsed()
    );
    store.delete_plant(&created.id, None, None).await.unwrap();
    // Written before the wait: the wake-up was kept.
    let waited = std::time::Instant::now();
    first.wait(Duration::from_secs(10)).await;
    assert!(
        waited.elapsed() < Duration::from_secs(1),
        "{:?}",
        waited.elapsed()
    );
}

/// A sink worker recording results and the feed adding deliveries for the same sink both write the
/// sink's figures. On PostgreSQL, where writers run in parallel, neither waits for the other's commit
/// (migration 0013: the figures are appended as deltas), and the figures count each write once it has
/// committed, whether a fold of the deltas ran before or after.
#[tokio::test]
async fn writers_of_one_sinks_deliveries_do_not_wait_for_each_other_and_both_count() {
    let store = Backend::Postgres.store().await;
    let db = store.sql().await;
    for name in ["A", "B"] {
        store
            .create_plant(&draft("north", name), None)
            .await
            .unwrap();
    }
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM plant_changes ORDER BY seq")
        .fetch_all(&db)
        .await
        .unwrap();
    let insert = "INSERT INTO deliveries (seq, sink, plant_id, region, status) \
                  SELECT seq, 'out', plant_id, region, 'pending' FROM plant_changes WHERE seq = $1";
    sqlx::query(insert)
        .bind(seqs[0])
        .execute(&db)
        .await
        .unwrap();

    let mut recording = db.begin().await.unwrap();
    sqlx::query("UPDATE deliveries SET status = 'delivered', attempts = 1 WHERE seq = $1")
        .bind(seqs[0])
        .execute(&mut *recording)
        .await
        .unwrap();
    let mut feeding = db.begin().await.unwrap();
    sqlx::query("SET LOCAL lock_timeout = '1s'")
        .execute(&mut *feeding)
        .await
        .unwrap();
    sqlx::query(insert)
        .bind(seqs[1])
        .execute(&mut *feeding)
        .await
        .expect("the feed's insert does not wait for the open recording");
    feeding.commit().await.unwrap();

    let out = stats(&*store, "out").await;
    assert_eq!((out.pending, out.delivered), (2, 0), "{out:?}");
    recording.commit().await.unwrap();
    let out = stats(&*store, "out").await;
    assert_eq!(
        (out.pending, out.delivered, out.failed_attempts),
        (1, 1, 0),
        "{out:?}"
    );
}
