//! Group commit of the process's writes on SQLite: concurrent writes share transactions, yet each is
//! answered as if it ran alone, only once committed, journaled with its own trace; a write that fails
//! inside a group fails alone, a plant write or a feed's record; `If-Match` still lets exactly one of
//! several racing writers through.

use std::time::Duration;

use futures_util::future::join_all;
use plant_monitor::domain::{OutcomeKind, TraceParent};
use plant_monitor::store::{Fence, Processed, StoreError};
use plant_monitor_tests::{Backend, TestApp, draft, lead, plant};
use sqlx::{AnyPool, Row};

const WRITERS: usize = 64;

fn traceparent(i: usize) -> String {
    format!("00-{:032x}-{:016x}-01", 0xabc0_0000 + i, 0xdef0_0000 + i)
}

/// The journal's trace of each entry of `plant_id`.
async fn traces_of(sql: &AnyPool, plant_id: &str) -> Vec<String> {
    sqlx::query("SELECT traceparent FROM plant_changes WHERE plant_id = $1 ORDER BY seq")
        .bind(plant_id)
        .fetch_all(sql)
        .await
        .expect("journal read")
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect()
}

/// Runs `writes` while another connection holds the file's write lock for 300 ms, so they queue up
/// and then commit in as few groups as the writer task makes once it lets go.
async fn behind_the_write_lock<T>(sql: &AnyPool, writes: impl Future<Output = T>) -> T {
    let mut blocker = sql.acquire().await.expect("a connection");
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut *blocker)
        .await
        .expect("lock");
    let release = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut *blocker)
            .await
            .expect("unlock");
    };
    let (written, ()) = tokio::join!(writes, release);
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_api_writes_are_all_committed_and_each_journaled_with_its_own_traceparent() {
    let app = TestApp::start().await;
    let created = join_all((0..WRITERS).map(|i| {
        let request = app
            .request(reqwest::Method::POST, "/v1/plants")
            .header("traceparent", traceparent(i))
            .json(&plant(&format!("grouped {i}")));
        async move {
            let response = request.send().await.expect("sent");
            assert_eq!(response.status(), 201);
            response.json::<serde_json::Value>().await.expect("JSON")
        }
    }))
    .await;

    let sql = app.sql().await;
    for (i, plant) in created.iter().enumerate() {
        let id = plant["id"].as_str().expect("an id");
        let name: String = sqlx::query_scalar("SELECT name FROM power_plants WHERE id = $1")
            .bind(id)
            .fetch_one(&sql)
            .await
            .expect("the acknowledged plant is in the database");
        assert_eq!(name, format!("grouped {i}"));
        // The write is a child span of the request's: the same trace, a span of its own.
        let traces = traces_of(&sql, id).await;
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0][..35], traceparent(i)[..35]);
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM write_trace")
        .fetch_one(&sql)
        .await
        .expect("count");
    assert_eq!(left, 0, "no trace is left behind for other writers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_fails_inside_a_group_fails_alone_and_the_others_commit() {
    let store = Backend::Sqlite.store().await;
    let existing = store
        .create_plant(&draft("north", "existing"), None)
        .await
        .expect("create");
    let sql = store.sql().await;

    let trace = |i: usize| TraceParent::parse(&traceparent(i)).expect("a traceparent");
    let (good, traces): (Vec<_>, Vec<_>) = (0..8)
        .map(|i| (draft("north", &format!("good {i}")), trace(i)))
        .unzip();
    let mut invalid = draft("north", "invalid");
    invalid.latitude = Some(91.0);
    let (invalid_trace, stale_trace, missing_trace) = (trace(100), trace(101), trace(102));
    let writes = async {
        let goods = join_all(
            good.iter()
                .zip(&traces)
                .map(|(draft, trace)| store.create_plant(draft, Some(trace))),
        );
        let replacement = draft("north", "stale replacement");
        tokio::join!(
            goods,
            store.create_plant(&invalid, Some(&invalid_trace)),
            store.replace_plant(&existing.id, &replacement, Some(7), Some(&stale_trace)),
            store.delete_plant("no-such-plant", None, Some(&missing_trace)),
        )
    };
    let (goods, invalid, stale, missing) = behind_the_write_lock(&sql, writes).await;

    assert!(
        matches!(invalid, Err(StoreError::Database(_))),
        "the CHECK violation is its own: {invalid:?}"
    );
    assert!(
        matches!(
            stale,
            Err(StoreError::VersionMismatch {
                expected: 7,
                current: 1,
                ..
            })
        ),
        "{stale:?}"
    );
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    for (i, created) in goods.into_iter().enumerate() {
        let created = created.expect("every valid write commits");
        assert_eq!(created.name, format!("good {i}"));
        assert_eq!(created.version, 1);
        let stored = store.get_plant(&created.id).await.expect("read");
        assert_eq!(stored.as_ref(), Some(&created));
        assert_eq!(traces_of(&sql, &created.id).await, [traceparent(i)]);
    }
    let journaled: Vec<String> = sqlx::query_scalar("SELECT traceparent FROM plant_changes")
        .fetch_all(&sql)
        .await
        .expect("journal");
    for failed in [100, 101, 102] {
        assert!(
            !journaled.contains(&traceparent(failed)),
            "a failed write leaves no journal entry"
        );
    }
    let kept = store.get_plant(&existing.id).await.expect("read");
    assert_eq!(kept, Some(existing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_groups_first_write_failing_undoes_it_alone_though_it_began_the_transaction() {
    let store = Backend::Sqlite.store().await;
    let sql = store.sql().await;
    let mut invalid = draft("north", "invalid first");
    invalid.latitude = Some(91.0);
    let goods: Vec<_> = (0..4)
        .map(|i| draft("north", &format!("after the invalid {i}")))
        .collect();
    // `join!` queues its writes in order, so the invalid one is the first of the first group: its
    // query opens the group's transaction, which must outlive its failure.
    let writes = async {
        tokio::join!(
            store.create_plant(&invalid, None),
            join_all(goods.iter().map(|draft| store.create_plant(draft, None))),
        )
    };
    let (invalid, created) = behind_the_write_lock(&sql, writes).await;

    assert!(
        matches!(invalid, Err(StoreError::Database(_))),
        "the CHECK violation is its own: {invalid:?}"
    );
    for (draft, created) in goods.iter().zip(created) {
        let created = created.expect("the writes after it commit");
        assert_eq!(created.name, draft.name);
        assert_eq!(
            store.get_plant(&created.id).await.expect("read"),
            Some(created)
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM power_plants")
        .fetch_one(&sql)
        .await
        .expect("count");
    assert_eq!(stored, 4);
    // The writer goes on with its connection: the next write commits on its own.
    store
        .create_plant(&draft("north", "later"), None)
        .await
        .expect("a later write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feeds_records_queue_with_api_writes_and_one_under_a_stale_fence_fails_alone() {
    let store = Backend::Sqlite.store().await;
    let fence = lead(&*store, "north").await;
    store
        .create_plant(&draft("north", "fed"), None)
        .await
        .expect("create");
    let north = ["north".to_owned()];
    let change = store
        .unprocessed_changes(&north, 10, &[])
        .await
        .expect("read");
    let processed = Processed {
        seq: change[0].seq,
        plant_id: change[0].plant_id.clone(),
        region: "north".into(),
        result: OutcomeKind::Routed,
        plugin: None,
        reason: None,
        event: Some("{}".into()),
        sinks: vec!["out".into()],
        pipeline: "pipeline".into(),
    };
    let stale = Fence {
        epoch: fence.epoch + 1,
        ..fence.clone()
    };
    let sql = store.sql().await;

    let drafts: Vec<_> = (0..4)
        .map(|i| draft("north", &format!("written {i}")))
        .collect();
    let writes = async {
        tokio::join!(
            join_all(drafts.iter().map(|draft| store.create_plant(draft, None))),
            store.record_processed(
                std::slice::from_ref(&processed),
                std::slice::from_ref(&stale)
            ),
            store.record_processed(
                std::slice::from_ref(&processed),
                std::slice::from_ref(&fence)
            ),
        )
    };
    let (created, fenced, recorded) = behind_the_write_lock(&sql, writes).await;

    assert!(
        matches!(&fenced, Err(StoreError::Fenced { lease }) if *lease == fence.lease),
        "{fenced:?}"
    );
    recorded.expect("the leader's record commits");
    for created in created {
        let created = created.expect("every plant write commits");
        assert!(store.get_plant(&created.id).await.expect("read").is_some());
    }
    let due = store.due_deliveries("out", &north, 10).await.expect("due");
    assert_eq!(due.len(), 1, "one delivery, queued once: {due:?}");
    assert_eq!(due[0].seq, processed.seq);
    let unprocessed = store
        .unprocessed_changes(&north, 10, &[])
        .await
        .expect("read");
    assert_eq!(
        unprocessed.len(),
        4,
        "the four new plants wait; the fed one does not"
    );
    assert!(unprocessed.iter().all(|change| change.seq > processed.seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_racing_writes_on_one_version_exactly_one_gets_through_if_match() {
    let app = TestApp::start().await;
    let created = app.create(&plant("raced")).await;
    let id = created["id"].as_str().expect("an id");
    let statuses = join_all((0..16).map(|i| {
        let request = app
            .request(reqwest::Method::PUT, &format!("/v1/plants/{id}"))
            .header("if-match", "\"1\"")
            .json(&plant(&format!("racer {i}")));
        async move { request.send().await.expect("sent").status().as_u16() }
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 412).count(),
        15,
        "{statuses:?}"
    );
    let stored = app.get_json(&format!("/v1/plants/{id}")).await;
    assert_eq!(stored["version"], 2);
}
