//! Backfills and the bulk retry of dead letters, on each backend, against real receivers: a backfill
//! sends one `snapshot` event per matching plant to its sinks and no other, its filter selects exactly,
//! it goes on after a restart without skipping or repeating a plant, a filter plugin still applies to
//! it, and a bad request is refused; its steps, against the store itself, keep at most a batch ahead
//! of the feed and leave the region snapshots whole. A bulk retry counts before it changes anything,
//! then puts back exactly the dead letters its filter names, each plant's in order.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use plant_monitor::domain::{Fuel, OutcomeKind, PlantDraft, Status};
use plant_monitor::store::{BackfillFilter, BackfillStep, Fence, Processed, Store};
use plant_monitor_tests::{
    Backend, PluginDir, Receiver, TestApp, WAIT, eventually, lead, plant, sink, sink_with,
};
use reqwest::Method;
use serde_json::{Value, json};

plant_monitor_tests::on_every_backend! {
    a_backfill_of_a_region_sends_one_snapshot_per_plant_to_its_sink_and_none_to_another,
    a_backfills_filter_selects_plants_by_fuel_status_and_ids_exactly,
    a_backfill_goes_on_after_a_restart_and_sends_every_plant_once,
    plants_a_filter_plugin_drops_are_not_sent_but_count_as_done,
    a_backfill_with_an_unknown_sink_or_a_bad_filter_is_refused_and_backfills_are_listed_newest_first,
    a_backfill_steps_no_further_than_a_batch_ahead_of_the_feed_and_leaves_region_snapshots_whole,
    a_bulk_retry_counts_first_then_puts_back_exactly_the_matching_dead_letters_in_order,
}

/// Sends `body` to `POST path` and returns the status and the JSON answer.
async fn post_json(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let response = app
        .request(Method::POST, path)
        .json(body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Starts a backfill and returns it as the answer shows it.
async fn backfill(app: &TestApp, filter: Value, sinks: &[&str]) -> Value {
    let response = app
        .request(Method::POST, "/v1/backfills")
        .json(&json!({"filter": filter, "sinks": sinks}))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/v1/backfills/{}", created["id"]));
    created
}

/// Waits until the backfill `id` is done and every entry it journaled has been fed, and returns it.
async fn finished(app: &TestApp, id: &Value, within: Duration) -> Value {
    let path = format!("/v1/backfills/{id}");
    eventually(within, || async {
        let backfill = app.get_json(&path).await;
        if backfill["state"] == "done" && backfill["done"] == backfill["total"] {
            Ok(backfill)
        } else {
            Err(format!("not finished: {backfill}"))
        }
    })
    .await
}

/// The plant ids of the snapshot events `receiver` accepted on `path`, in arrival order.
fn snapshots(receiver: &Receiver, path: &str) -> Vec<String> {
    (receiver.accepted().iter())
        .filter(|event| event.path == path && event.data()["kind"] == "snapshot")
        .map(|event| event.data()["plant_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates a plant named `name` with the given fields changed and returns its id.
async fn create(app: &TestApp, name: &str, fields: Value) -> String {
    let mut body = plant(name);
    for (key, value) in fields.as_object().unwrap() {
        body[key] = value.clone();
    }
    app.create(&body).await["id"].as_str().unwrap().to_owned()
}

async fn a_backfill_of_a_region_sends_one_snapshot_per_plant_to_its_sink_and_none_to_another(
    backend: Backend,
) {
    let receiver = Receiver::start().await;
    let app = TestApp::start_on(backend, |c| {
        c.sinks
            .insert("chosen".into(), sink(&receiver.url("/chosen")));
        c.sinks
            .insert("other".into(), sink(&receiver.url("/other")));
    })
    .await;
    let mut north = BTreeSet::new();
    for n in 0..5 {
        north.insert(create(&app, &format!("North {n}"), json!({"region": "north"})).await);
    }
    for n in 0..3 {
        create(&app, &format!("South {n}"), json!({"region": "south"})).await;
    }
    // The routers' choice (every sink, by default) for the plants' creation.
    receiver.wait_for(16, WAIT).await;

    let started = backfill(&app, json!({"region": "north"}), &["chosen"]).await;
    assert_eq!(started["total"], 5);
    assert_eq!(started["filter"], json!({"region": "north"}));
    assert_eq!(started["sinks"], json!(["chosen"]));
    let done = finished(&app, &started["id"], WAIT).await;
    assert_eq!(
        (done["emitted"].clone(), done["done"].clone()),
        (json!(5), json!(5))
    );
    assert!(done["finished_at"].is_string(), "{done}");
    receiver.wait_for(21, WAIT).await;
    let received = receiver.settle(Duration::from_millis(300)).await;
    assert_eq!(received.len(), 21, "nothing more than the five snapshots");
    let sent = snapshots(&receiver, "/chosen");
    assert_eq!(sent.len(), 5, "{sent:?}");
    assert_eq!(sent.into_iter().collect::<BTreeSet<_>>(), north);
    assert!(snapshots(&receiver, "/other").is_empty());
    // The journal names the backfill with each of its entries.
    let journal = app.journal().await;
    let entries: Vec<&Value> = (journal.iter())
        .filter(|entry| entry["kind"] == "snapshot")
        .collect();
    assert_eq!(entries.len(), 5);
    assert!(
        entries
            .iter()
            .all(|entry| entry["backfill"] == started["id"]
                && entry["before"].is_null()
                && entry["after"]["region"] == "north"
                && entry["outcome"]["result"] == "routed")
    );
}

async fn a_backfills_filter_selects_plants_by_fuel_status_and_ids_exactly(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = TestApp::start_on(backend, |c| {
        c.routing.default_sinks = Vec::new();
        for name in ["wind", "offline-north", "ids"] {
            c.sinks
                .insert(name.into(), sink(&receiver.url(&format!("/{name}"))));
        }
    })
    .await;
    let a = create(
        &app,
        "A",
        json!({"fuel": "wind", "status": "offline", "region": "north"}),
    )
    .await;
    let b = create(&app, "B", json!({"fuel": "wind", "status": "operational"})).await;
    let c = create(
        &app,
        "C",
        json!({"fuel": "solar", "status": "offline", "region": "north"}),
    )
    .await;
    let d = create(
        &app,
        "D",
        json!({"fuel": "solar", "status": "offline", "region": "south"}),
    )
    .await;
    let cases = [
        (json!({"fuel": "wind"}), "wind", BTreeSet::from([&a, &b])),
        (
            json!({"status": "offline", "region": "north"}),
            "offline-north",
            BTreeSet::from([&a, &c]),
        ),
        (
            json!({"ids": [&d, "no-such-plant", &b], "fuel": "solar"}),
            "ids",
            BTreeSet::from([&d]),
        ),
    ];
    let mut started = Vec::new();
    for (filter, sink, expected) in &cases {
        let backfill = backfill(&app, filter.clone(), &[sink]).await;
        assert_eq!(backfill["total"], expected.len(), "{filter}");
        started.push(backfill["id"].clone());
    }
    for id in &started {
        finished(&app, id, WAIT).await;
    }
    receiver.wait_for(5, WAIT).await;
    receiver.settle(Duration::from_millis(300)).await;
    for (filter, sink, expected) in cases {
        let sent = snapshots(&receiver, &format!("/{sink}"));
        assert_eq!(sent.len(), expected.len(), "{filter}: {sent:?}");
        assert_eq!(
            sent.iter().collect::<BTreeSet<_>>(),
            expected,
            "{filter} selects exactly"
        );
    }
}

async fn a_backfill_goes_on_after_a_restart_and_sends_every_plant_once(backend: Backend) {
    const PLANTS: usize = 300;
    let receiver = Receiver::start().await;
    let app = TestApp::start_on(backend, |c| {
        c.feed.batch_size = 3.try_into().unwrap();
        c.routing.default_sinks = Vec::new();
        c.sinks.insert(
            "out".into(),
            sink_with(&receiver.url("/out"), json!({"batch_max": 50})),
        );
    })
    .await;
    let sql = app.sql().await;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO power_plants (name, region, fuel, capacity_mw) \
         SELECT 'Plant ' || i, 'north', 'wind', 10 FROM n",
    )
    .bind(PLANTS as i64)
    .execute(&sql)
    .await
    .unwrap();
    sql.close().await;

    let started = backfill(&app, json!({}), &["out"]).await;
    assert_eq!(started["total"], PLANTS);
    let path = format!("/v1/backfills/{}", started["id"]);
    let midway = app
        .wait_for_json(&path, |backfill| backfill["done"].as_u64() > Some(0))
        .await;
    assert!(
        midway["emitted"].as_u64() < Some(PLANTS as u64),
        "the backfill is cut off midway: {midway}"
    );
    let app = app.restart(|_| {}).await;
    let done = finished(&app, &started["id"], Duration::from_secs(90)).await;
    assert_eq!(done["emitted"], PLANTS);
    receiver.wait_for(PLANTS, WAIT).await;
    receiver.settle(Duration::from_millis(300)).await;
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for plant in snapshots(&receiver, "/out") {
        *times.entry(plant).or_default() += 1;
    }
    assert_eq!(times.len(), PLANTS, "every plant is sent");
    assert!(
        times.values().all(|&sent| sent == 1),
        "no plant is sent twice: {times:?}"
    );
}

async fn plants_a_filter_plugin_drops_are_not_sent_but_count_as_done(backend: Backend) {
    let receiver = Receiver::start().await;
    let plugins = PluginDir::default().add(
        "big-only",
        "min-capacity-filter",
        Some("[config]\nmin_capacity_mw = \"50\"\n"),
    );
    let app = TestApp::start_on(backend, |c| {
        c.plugins.dir = plugins.path().to_path_buf();
        c.routing.default_sinks = Vec::new();
        c.sinks.insert("out".into(), sink(&receiver.url("/out")));
    })
    .await;
    let mut big = BTreeSet::new();
    for n in 0..3 {
        big.insert(create(&app, &format!("Big {n}"), json!({"capacity_mw": 100.0})).await);
    }
    for n in 0..2 {
        create(&app, &format!("Small {n}"), json!({"capacity_mw": 5.0})).await;
    }
    let started = backfill(&app, json!({}), &["out"]).await;
    let done = finished(&app, &started["id"], WAIT).await;
    assert_eq!(
        (done["total"].clone(), done["done"].clone()),
        (json!(5), json!(5))
    );
    receiver.wait_for(3, WAIT).await;
    receiver.settle(Duration::from_millis(300)).await;
    let sent = snapshots(&receiver, "/out");
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent.into_iter().collect::<BTreeSet<_>>(), big);
    let filtered = (app.journal().await.iter())
        .filter(|entry| entry["kind"] == "snapshot" && entry["outcome"]["result"] == "filtered")
        .count();
    assert_eq!(filtered, 2);
}

async fn a_backfill_with_an_unknown_sink_or_a_bad_filter_is_refused_and_backfills_are_listed_newest_first(
    backend: Backend,
) {
    let receiver = Receiver::start().await;
    let app = TestApp::start_on(backend, |c| {
        c.sinks.insert("out".into(), sink(&receiver.url("/out")));
    })
    .await;
    let too_many: Vec<String> = (0..1001).map(|n| format!("id-{n}")).collect();
    for (body, field) in [
        (json!({"filter": {}, "sinks": ["nowhere"]}), "sinks[0]"),
        (
            json!({"filter": {}, "sinks": ["out", "elsewhere"]}),
            "sinks[1]",
        ),
        (json!({"filter": {}, "sinks": []}), "sinks"),
        (
            json!({"filter": {"fuel": "plutonium"}, "sinks": ["out"]}),
            "filter.fuel",
        ),
        (
            json!({"filter": {"status": "lost"}, "sinks": ["out"]}),
            "filter.status",
        ),
        (
            json!({"filter": {"region": "Nowhere!"}, "sinks": ["out"]}),
            "filter.region",
        ),
        (
            json!({"filter": {"ids": too_many}, "sinks": ["out"]}),
            "filter.ids",
        ),
        (
            json!({"filter": {"ids": ["a\u{0}b"]}, "sinks": ["out"]}),
            "filter.ids[0]",
        ),
        (
            json!({"filter": {"colour": "red"}, "sinks": ["out"]}),
            "filter.colour",
        ),
        (
            json!({"filter": {}, "sinks": ["out"], "when": "now"}),
            "when",
        ),
        (json!({"sinks": ["out"]}), ""),
    ] {
        let (status, problem) = post_json(&app, "/v1/backfills", &body).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let malformed = app
        .request(Method::POST, "/v1/backfills")
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        app.call(Method::GET, "/v1/backfills/99").await.status(),
        404
    );
    assert_eq!(
        app.call(Method::GET, "/v1/backfills/one").await.status(),
        400
    );

    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(backfill(&app, json!({}), &["out"]).await["id"].clone());
    }
    let first = app.get_json("/v1/backfills?limit=2").await;
    let listed: Vec<&Value> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["id"])
        .collect();
    assert_eq!(listed, [&ids[2], &ids[1]]);
    let rest = app
        .get_json(&format!("/v1/backfills?limit=2&after={}", first["next"]))
        .await;
    assert_eq!(rest["items"][0]["id"], ids[0]);
    assert!(rest["next"].is_null());
}

/// Processes every unprocessed journal entry of `north` as unrouted, under `fence`; returns how many.
async fn feed_north(store: &dyn Store, fence: &Fence) -> usize {
    let changes = store
        .unprocessed_changes(&["north".into()], 1000, &[])
        .await
        .unwrap();
    let batch: Vec<Processed> = (changes.iter())
        .map(|change| Processed {
            seq: change.seq,
            plant_id: change.plant_id.clone(),
            region: change.region.clone(),
            result: OutcomeKind::Unrouted,
            plugin: None,
            reason: None,
            event: None,
            sinks: Vec::new(),
            pipeline: "test".into(),
        })
        .collect();
    store
        .record_processed(&batch, std::slice::from_ref(fence))
        .await
        .unwrap();
    batch.len()
}

async fn a_backfill_steps_no_further_than_a_batch_ahead_of_the_feed_and_leaves_region_snapshots_whole(
    backend: Backend,
) {
    let store = backend.store().await;
    let draft = PlantDraft {
        name: "Plant".into(),
        region: "north".into(),
        fuel: Fuel::Wind,
        capacity_mw: 10.0,
        output_mw: None,
        status: Status::Operational,
        latitude: None,
        longitude: None,
        attributes: Default::default(),
    };
    for _ in 0..3 {
        store.create_plant(&draft, None).await.unwrap();
    }
    store.captured().await;
    let fence = lead(&*store, "north").await;
    assert_eq!(feed_north(&*store, &fence).await, 3, "the plants' creation");

    let backfill = store
        .create_backfill(&BackfillFilter::default(), &["out".into()])
        .await
        .unwrap();
    assert_eq!((backfill.total, backfill.emitted, backfill.done), (3, 0, 0));
    let step = |limit| store.step_backfill(backfill.id, limit);
    assert_eq!(
        step(2).await.unwrap(),
        BackfillStep::Emitted {
            entries: 2,
            finished: false
        }
    );
    assert_eq!(
        step(2).await.unwrap(),
        BackfillStep::Waiting,
        "a batch waits"
    );
    // A region snapshot taken now still journals the plants whose backfill entries wait: those go to
    // the backfill's sinks only.
    assert_eq!(store.snapshot("north", false, &fence).await.unwrap(), 3);
    let snapshots_and_backfill = feed_north(&*store, &fence).await;
    assert_eq!(snapshots_and_backfill, 5);
    let halfway = store.get_backfill(backfill.id).await.unwrap().unwrap();
    assert_eq!((halfway.emitted, halfway.done), (2, 2));
    assert_eq!(
        step(2).await.unwrap(),
        BackfillStep::Emitted {
            entries: 1,
            finished: true
        }
    );
    assert_eq!(step(2).await.unwrap(), BackfillStep::NotRunning);
    let done = store.get_backfill(backfill.id).await.unwrap().unwrap();
    assert_eq!(
        (done.state.as_str(), done.total, done.emitted, done.done),
        ("done", 3, 3, 2),
        "the last entry waits for the feed"
    );
    assert!(done.finished_at.is_some());
    assert_eq!(store.running_backfills().await.unwrap(), Vec::<i64>::new());
    let journal = store.list_changes(None, 0, 100).await.unwrap();
    let entries: Vec<_> = (journal.iter())
        .filter(|change| change.backfill == Some(backfill.id))
        .map(|change| change.plant_id.clone())
        .collect();
    let mut in_order = entries.clone();
    in_order.sort();
    assert_eq!(entries, in_order, "a backfill walks the plants in id order");
    assert_eq!(
        store.backfill_sinks(&[backfill.id]).await.unwrap(),
        [(backfill.id, vec!["out".to_owned()])]
    );
}

/// The dead letters listed now, oldest first.
async fn dead_letters(app: &TestApp) -> Vec<Value> {
    app.get_json("/v1/deliveries?status=dead&limit=1000").await["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// The (plant, seq) of each event `receiver` accepted, in arrival order.
fn arrivals(receiver: &Receiver) -> Vec<(String, u64)> {
    (receiver.accepted().iter())
        .map(|event| {
            (
                event.data()["plant_id"].as_str().unwrap().to_owned(),
                event.seq(),
            )
        })
        .collect()
}

/// Whether each plant's events arrived in `seq` order.
fn in_order_per_plant(arrivals: &[(String, u64)]) -> bool {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    arrivals
        .iter()
        .all(|(plant, seq)| last.insert(plant, *seq).is_none_or(|before| before < *seq))
}

async fn a_bulk_retry_counts_first_then_puts_back_exactly_the_matching_dead_letters_in_order(
    backend: Backend,
) {
    let to_a = Receiver::start().await;
    to_a.answer_all(Some(500));
    let to_b = Receiver::start().await;
    to_b.answer_all(Some(503));
    let plugins = PluginDir::default().add(
        "breaks",
        "test-chaos-filter",
        Some("[config]\nmode = \"error\"\nmatch_name = \"Broken\"\n"),
    );
    let app = TestApp::start_on(backend, |c| {
        c.plugins.dir = plugins.path().to_path_buf();
        let once = json!({"max_attempts": 1});
        c.sinks
            .insert("a".into(), sink_with(&to_a.url("/a"), once.clone()));
        c.sinks.insert("b".into(), sink_with(&to_b.url("/b"), once));
    })
    .await;
    // Early: two plants, three events of one and two of the other, to each sink; and a plant the
    // filter plugin fails on, a plugin's dead letter that no bulk retry takes.
    let first = create(&app, "First", json!({})).await;
    let second = create(&app, "Second", json!({})).await;
    create(&app, "Broken", json!({})).await;
    for (plant, output) in [(&first, 1), (&second, 2), (&first, 3)] {
        app.patch(plant, &format!(r#"{{"output_mw": {output}}}"#))
            .await;
    }
    let wait_for_dead = |count: usize| {
        let app = &app;
        async move {
            eventually(WAIT, || async {
                let dead = dead_letters(app).await;
                if dead.len() == count {
                    Ok(dead)
                } else {
                    Err(format!("{} dead letters, not {count}", dead.len()))
                }
            })
            .await
        }
    };
    wait_for_dead(11).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Later: a third plant with two events.
    let third = create(&app, "Third", json!({})).await;
    app.patch(&third, r#"{"output_mw": 4}"#).await;
    let dead = wait_for_dead(15).await;
    let later = (dead.iter())
        .filter(|letter| letter["plant_id"] == third.as_str())
        .map(|letter| letter["created_at"].as_str().unwrap())
        .min()
        .unwrap()
        .to_owned();

    let dry_runs = [
        (json!({}), 14),
        (json!({"sink": "a"}), 7),
        (json!({"plant_id": first}), 6),
        (json!({"sink": "b", "plant_id": first}), 3),
        (json!({"error": "503"}), 7),
        (json!({"error": "HTTP 500 Internal"}), 7),
        (json!({"error": "http 500"}), 0),
        (json!({"to": later}), 10),
        (json!({"from": later}), 4),
        (json!({"from": later, "to": later}), 0),
        (
            json!({"from": "2000-01-01T00:00:00+01:00", "to": "9999-01-01T00:00:00Z"}),
            14,
        ),
    ];
    for (mut filter, matched) in dry_runs {
        filter["dry_run"] = json!(true);
        let (status, answer) = post_json(&app, "/v1/deliveries/retry", &filter).await;
        assert_eq!(status, 200, "{filter}: {answer}");
        assert_eq!(answer, json!({"matched": matched}), "{filter}");
    }
    assert_eq!(dead_letters(&app).await, dead, "a dry run changes nothing");

    for (body, field) in [
        (json!({"sink": "nowhere"}), "sink"),
        (json!({"from": "yesterday"}), "from"),
        (json!({"to": "2026-02-30T00:00:00Z"}), "to"),
        (json!({"plant_id": "a\u{0}"}), "plant_id"),
        (json!({"dry_run": "yes"}), "dry_run"),
        (json!({"sinks": ["a"]}), "sinks"),
    ] {
        let (status, problem) = post_json(&app, "/v1/deliveries/retry", &body).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }

    to_a.answer_all(None);
    let retries = [
        (json!({"sink": "a", "plant_id": first}), 3),
        (json!({"sink": "a", "error": "500", "to": later}), 2),
        (json!({"sink": "a", "from": later}), 2),
        (json!({"sink": "a"}), 0),
    ];
    let mut sent = 0;
    for (filter, retried) in retries {
        let (status, answer) = post_json(&app, "/v1/deliveries/retry", &filter).await;
        assert_eq!(status, 202, "{filter}: {answer}");
        assert_eq!(answer, json!({"retried": retried}), "{filter}");
        sent += retried;
        to_a.wait_for(sent, WAIT).await;
    }
    let arrived = arrivals(&to_a);
    let plants: Vec<&str> = arrived.iter().map(|(plant, _)| plant.as_str()).collect();
    assert_eq!(
        plants,
        [&first, &first, &first, &second, &second, &third, &third],
        "each retry sends what it matched and nothing else"
    );
    assert!(in_order_per_plant(&arrived), "{arrived:?}");

    to_b.answer_all(None);
    let (status, answer) = post_json(&app, "/v1/deliveries/retry", &json!({"error": "503"})).await;
    assert_eq!((status, answer), (202, json!({"retried": 7})));
    to_b.wait_for(7, WAIT).await;
    let arrived = arrivals(&to_b);
    assert!(in_order_per_plant(&arrived), "{arrived:?}");
    let remaining = wait_for_dead(1).await;
    assert!(
        remaining[0]["sink"].is_null(),
        "the plugin's dead letter stays: {remaining:?}"
    );
    assert_eq!(to_a.settle(Duration::from_millis(300)).await.len(), 7);
}
