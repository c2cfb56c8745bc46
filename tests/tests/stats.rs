//! `GET /v1/stats` and the per-minute counts behind it, on each backend: after real traffic (plants
//! written through the API, a filter plugin dropping one, a sink that delivers and one whose
//! deliveries fail until they are dead letters) the current buckets hold exactly that traffic and the
//! others zeros, with plausible latency percentiles; the counts are the feed's and the recorder's own
//! (an answer is the same once the journal and the outbox are emptied), a window reads only its
//! buckets, buckets align to the step, old minutes are pruned, and bad parameters get a 400 naming
//! the parameter.

use std::time::{Duration, SystemTime};

use plant_monitor::domain::OutcomeKind;
use plant_monitor::store::{Attempts, Dead, Delivered, Processed, Retry, Stats, Store, stats};
use plant_monitor_tests::{
    Backend, PluginDir, Receiver, TestApp, WAIT, draft, eventually, lead, plant, sink, sink_with,
};
use reqwest::Method;
use serde_json::{Value, json};

plant_monitor_tests::on_every_backend! {
    the_current_buckets_show_the_events_deliveries_and_latencies_of_real_traffic,
    the_feed_and_the_recorder_count_what_they_marked_and_not_a_late_answer,
    a_window_counts_only_the_minutes_inside_it,
    buckets_start_at_multiples_of_the_step_and_the_last_holds_now,
    minutes_older_than_the_longest_window_are_pruned_a_batch_at_a_time,
}

const TOKEN: &str = "s3cret";

/// The sum of a series' counts.
fn total(series: &Value) -> u64 {
    (series["counts"].as_array().unwrap().iter())
        .map(|count| count.as_u64().unwrap())
        .sum()
}

/// The series of `list` whose fields have these values.
fn series<'a>(answer: &'a Value, list: &str, fields: &[(&str, &str)]) -> Option<&'a Value> {
    (answer[list].as_array().unwrap().iter())
        .find(|series| fields.iter().all(|(field, value)| series[*field] == *value))
}

/// What an answer counted, whichever buckets it fell in (a minute may end between two reads): each
/// series by its names, with its total or its percentiles in order.
fn summary(answer: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for list in ["events", "deliveries", "latency"] {
        for series in answer[list].as_array().unwrap() {
            let mut series = series.clone();
            let object = series.as_object_mut().unwrap();
            let values: Vec<Value> = ["counts", "p50_ms", "p95_ms", "p99_ms"]
                .iter()
                .filter_map(|field| object.remove(*field))
                .flat_map(|values| values.as_array().unwrap().clone())
                .filter(|value| !value.is_null() && *value != 0)
                .collect();
            lines.push(format!("{list} {series} {values:?}"));
        }
    }
    lines
}

/// The current minute of the system clock, which the database's shares, as RFC 3339 text: bucket
/// starts compare with it as text.
fn minute_now() -> String {
    let seconds = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    humantime::format_rfc3339_seconds(
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds / 60 * 60),
    )
    .to_string()
}

async fn the_current_buckets_show_the_events_deliveries_and_latencies_of_real_traffic(
    backend: Backend,
) {
    let receiver = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.answer_all(Some(500));
    let plugins = PluginDir::default().add(
        "small",
        "min-capacity-filter",
        Some("[config]\nmin_capacity_mw = \"50\"\n"),
    );
    let app = TestApp::start_on(backend, |c| {
        c.server.api_token = Some(TOKEN.into());
        c.plugins.dir = plugins.path().to_path_buf();
        c.sinks.insert("grid".into(), sink(&receiver.url("/grid")));
        c.sinks.insert(
            "doomed".into(),
            sink_with(&failing.url("/doomed"), json!({"max_attempts": 2})),
        );
    })
    .await;
    let began = minute_now();

    let mut small = plant("Garden shed");
    small["capacity_mw"] = json!(0.004);
    let mut ids = Vec::new();
    for body in [plant("Grand Coulee"), plant("Hoover"), small] {
        let response = app
            .request(Method::POST, "/v1/plants")
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        ids.push(response.json::<Value>().await.unwrap()["id"].clone());
    }
    let response = app
        .request(
            Method::PATCH,
            &format!("/v1/plants/{}", ids[0].as_str().unwrap()),
        )
        .bearer_auth(TOKEN)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"output_mw": 4000}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    receiver.wait_for(3, WAIT).await;

    let read = |path: &'static str| {
        let request = app.request(Method::GET, path).bearer_auth(TOKEN);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    // Three events, delivered to one sink and tried twice at the other before they are dead; a
    // result is recorded just after the receiver has answered.
    let answer = eventually(WAIT, || async {
        let answer = read("/v1/stats?window=10m").await;
        let counted = |sink, outcome| {
            series(
                &answer,
                "deliveries",
                &[("sink", sink), ("outcome", outcome)],
            )
            .map(total)
        };
        match (counted("grid", "delivered"), counted("doomed", "dead")) {
            (Some(3), Some(3)) => Ok(answer),
            seen => Err(format!("{seen:?} delivered and dead counted: {answer:#}")),
        }
    })
    .await;

    assert_eq!(
        (answer["window"].as_str(), answer["step"].as_str()),
        (Some("10m"), Some("1m"))
    );
    let buckets: Vec<&str> = (answer["buckets"].as_array().unwrap().iter())
        .map(|bucket| bucket.as_str().unwrap())
        .collect();
    assert_eq!(buckets.len(), 10);
    assert_eq!(answer["from"], buckets[0]);
    // Only the buckets from the one the traffic began in may count anything.
    let quiet_before = buckets
        .iter()
        .filter(|start| **start < began.as_str())
        .count();
    let counted_only_since_the_start = |series: &Value| {
        let counts = series["counts"].as_array().unwrap();
        assert_eq!(counts.len(), 10, "{series}");
        assert!(
            counts[..quiet_before].iter().all(|count| count == 0),
            "nothing before {began}: {series} over {buckets:?}"
        );
    };

    let events = answer["events"].as_array().unwrap();
    let expected = [
        ("created", "routed", 2),
        ("created", "filtered", 1),
        ("updated", "routed", 1),
    ];
    assert_eq!(events.len(), expected.len(), "{answer:#}");
    for (kind, outcome, count) in expected {
        let found = series(
            &answer,
            "events",
            &[("region", "us-west"), ("kind", kind), ("outcome", outcome)],
        )
        .unwrap_or_else(|| panic!("no {kind} {outcome} events: {answer:#}"));
        assert_eq!(total(found), count, "{kind} {outcome}");
        counted_only_since_the_start(found);
    }

    let expected = [
        ("grid", "delivered", 3),
        ("doomed", "failed", 6),
        ("doomed", "dead", 3),
    ];
    assert_eq!(
        answer["deliveries"].as_array().unwrap().len(),
        expected.len(),
        "{answer:#}"
    );
    for (sink, outcome, count) in expected {
        let found = series(
            &answer,
            "deliveries",
            &[("sink", sink), ("outcome", outcome)],
        )
        .unwrap_or_else(|| panic!("no {sink} {outcome} deliveries: {answer:#}"));
        assert_eq!(total(found), count, "{sink} {outcome}");
        counted_only_since_the_start(found);
    }

    // A percentile wherever the sink delivered, null elsewhere; commit to 2xx took more than nothing
    // and less than the test's patience.
    let latency = answer["latency"].as_array().unwrap();
    assert_eq!(
        latency.len(),
        1,
        "only a sink that delivered has latencies: {answer:#}"
    );
    assert_eq!(latency[0]["sink"], "grid");
    let delivered = series(
        &answer,
        "deliveries",
        &[("sink", "grid"), ("outcome", "delivered")],
    )
    .unwrap()["counts"]
        .as_array()
        .unwrap();
    for (at, count) in delivered.iter().enumerate() {
        let percentiles: Vec<&Value> = ["p50_ms", "p95_ms", "p99_ms"]
            .iter()
            .map(|p| &latency[0][*p][at])
            .collect();
        if count == 0 {
            assert!(
                percentiles.iter().all(|p| p.is_null()),
                "{percentiles:?} at {at}"
            );
            continue;
        }
        let values: Vec<f64> = percentiles.iter().map(|p| p.as_f64().unwrap()).collect();
        assert!(
            values[0] > 0.0 && values[0] <= values[1] && values[1] <= values[2],
            "{values:?}"
        );
        assert!(values[2] < WAIT.as_millis() as f64, "{values:?}");
    }

    // The answer is the counts' own: it stays the same without the journal and the outbox.
    let sql = app.sql().await;
    for table in ["deliveries", "plant_changes"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&sql)
            .await
            .unwrap();
    }
    let again = read("/v1/stats?window=10m").await;
    assert_eq!(summary(&again), summary(&answer));

    // An operational read: it needs the token.
    let anonymous = app.call(Method::GET, "/v1/stats").await;
    assert_eq!(anonymous.status(), 401);
}

/// A plant of `region`, as a store test writes it.
/// The whole window's count of each series, after its names.
fn totals(stats: &Stats) -> Vec<String> {
    let events = (stats.events.iter()).map(|s| {
        let total: u64 = s.counts.iter().sum();
        let (kind, outcome) = (s.kind.as_str(), s.outcome.as_str());
        format!("events {} {kind} {outcome} {total}", s.region)
    });
    let deliveries = (stats.deliveries.iter()).map(|s| {
        let total: u64 = s.counts.iter().sum();
        format!("deliveries {} {} {total}", s.sink, s.outcome.as_str())
    });
    events.chain(deliveries).collect()
}

async fn the_feed_and_the_recorder_count_what_they_marked_and_not_a_late_answer(backend: Backend) {
    let test_store = backend.store().await;
    let store: &dyn Store = &*test_store;
    let kept = store
        .create_plant(&draft("north", "Kept"), None)
        .await
        .unwrap();
    store
        .create_plant(&draft("north", "Dropped"), None)
        .await
        .unwrap();
    store
        .create_plant(&draft("north", "Other"), None)
        .await
        .unwrap();
    store.delete_plant(&kept.id, None, None).await.unwrap();
    test_store.captured().await;
    let fence = lead(store, "north").await;
    let changes = store
        .unprocessed_changes(&["north".into()], 100, &[])
        .await
        .unwrap();
    assert_eq!(changes.len(), 4);
    let batch: Vec<Processed> = (changes.iter())
        .map(|change| {
            let dropped = change.after.as_ref().is_some_and(|p| p.name == "Dropped");
            Processed {
                seq: change.seq,
                plant_id: change.plant_id.clone(),
                region: change.region.clone(),
                result: if dropped {
                    OutcomeKind::Filtered
                } else {
                    OutcomeKind::Routed
                },
                plugin: None,
                reason: None,
                event: Some("{}".into()),
                sinks: if dropped {
                    Vec::new()
                } else {
                    vec!["out".into()]
                },
                pipeline: "3fa2c1d9e0b4".into(),
            }
        })
        .collect();
    store
        .record_processed(&batch, std::slice::from_ref(&fence))
        .await
        .unwrap();
    // An entry already processed is not marked again, and not counted again.
    let again: Vec<Processed> = batch.into_iter().filter(|p| p.sinks.is_empty()).collect();
    store.record_processed(&again, &[fence]).await.unwrap();

    let due = store
        .due_deliveries("out", &["north".into()], 10)
        .await
        .unwrap();
    let ids: Vec<i64> = due.iter().map(|delivery| delivery.id).collect();
    assert_eq!(ids.len(), 3);
    let acknowledged = |id, ms| Delivered {
        id,
        latency: Some(Duration::from_millis(ms)),
    };
    let first = Attempts {
        delivered: vec![acknowledged(ids[0], 5), acknowledged(ids[1], 300)],
        retries: vec![Retry {
            id: ids[2],
            after: Duration::ZERO,
            error: "HTTP 503".into(),
        }],
        dead: Vec::new(),
    };
    store.record_attempts("out", &first).await.unwrap();
    let buried = Attempts {
        dead: vec![Dead {
            id: ids[2],
            error: "HTTP 500".into(),
        }],
        ..Attempts::default()
    };
    store.record_attempts("out", &buried).await.unwrap();
    // A late answer for what is already delivered changes nothing, and counts nothing.
    let late = Attempts {
        delivered: vec![acknowledged(ids[0], 60_000)],
        ..Attempts::default()
    };
    store.record_attempts("out", &late).await.unwrap();

    // Two buckets of a minute: the work may have straddled a minute's end.
    let stats = store.stats(1, 2).await.unwrap();
    assert_eq!(
        totals(&stats),
        [
            "events north created filtered 1",
            "events north created routed 2",
            "events north deleted routed 1",
            "deliveries out dead 1",
            "deliveries out delivered 2",
            "deliveries out failed 2",
        ]
    );
    assert_eq!(stats.latency.len(), 1);
    let latency = &stats.latency[0];
    assert_eq!(latency.sink, "out");
    let at = (stats.deliveries.iter())
        .find(|s| s.outcome.as_str() == "delivered")
        .unwrap()
        .counts
        .iter()
        .position(|count| *count > 0)
        .unwrap();
    // Two deliveries, 5 ms and 300 ms: the median is the first, the 95th and 99th the second, each
    // within 9.05 % (a latency bucket's half width).
    let close = |read: Option<f64>, exact: f64| {
        let read = read.expect("a percentile");
        assert!((read / exact - 1.0).abs() <= 0.0905, "{read} for {exact}");
    };
    close(latency.p50_ms[at], 5.0);
    close(latency.p95_ms[at], 300.0);
    close(latency.p99_ms[at], 300.0);
}

/// Counts written at `minute` for every series, as any SQL client could.
async fn write_minute(sql: &sqlx::AnyPool, minute: i64, count: i64) {
    for statement in [
        "INSERT INTO stats_events (minute, region, kind, outcome, count) \
         VALUES ($1, 'north', 'created', 'routed', $2)",
        "INSERT INTO stats_deliveries (minute, sink, outcome, count) VALUES ($1, 'out', 'delivered', $2)",
        "INSERT INTO stats_latency (minute, sink, bucket, count) VALUES ($1, 'out', 40, $2)",
    ] {
        sqlx::query(statement)
            .bind(minute)
            .bind(count)
            .execute(sql)
            .await
            .unwrap();
    }
}

async fn a_window_counts_only_the_minutes_inside_it(backend: Backend) {
    let store = backend.store().await;
    let sql = store.sql().await;
    let now = store.stats(1, 1).await.unwrap().from_minute;
    // Inside ten minutes even if a minute ends meanwhile; the others outside.
    write_minute(&sql, now - 3, 5).await;
    write_minute(&sql, now - 30, 7).await;
    write_minute(&sql, now - 9 * 24 * 60, 11).await;
    write_minute(&sql, now + 60, 13).await;

    let stats = store.stats(1, 10).await.unwrap();
    let rolled = stats.from_minute - (now - 9);
    assert!(
        rolled == 0 || rolled == 1,
        "{} for {now}",
        stats.from_minute
    );
    let at = (6 - rolled) as usize;
    let mut expected = vec![0; 10];
    expected[at] = 5;
    assert_eq!(stats.events[0].counts, expected);
    assert_eq!(stats.deliveries[0].counts, expected);
    let latency = &stats.latency[0];
    assert_eq!(latency.p50_ms[at], Some(stats::bucket_ms(40)));
    assert_eq!(latency.p99_ms[at], Some(stats::bucket_ms(40)));
    assert_eq!(latency.p50_ms.iter().flatten().count(), 1);

    // Six buckets of ten minutes: both of the last hour, summed where they share one.
    let hour = store.stats(10, 6).await.unwrap();
    assert_eq!(hour.events[0].counts.iter().sum::<u64>(), 12);
    assert_eq!(hour.deliveries[0].counts.iter().sum::<u64>(), 12);
}

async fn buckets_start_at_multiples_of_the_step_and_the_last_holds_now(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let minute = |text: &str| -> u64 {
        let at = humantime::parse_rfc3339(text).unwrap();
        at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() / 60
    };
    for (query, window, step, points) in [
        ("", "1h", "1m", 60),
        ("?window=1h&step=5m", "1h", "5m", 12),
        ("?window=90m&step=1h", "1h 30m", "1h", 2),
        ("?window=7d&step=1d", "7days", "1day", 7),
        ("?window=1d&step=1m", "1day", "1m", 1440),
    ] {
        let answer = app.get_json(&format!("/v1/stats{query}")).await;
        assert_eq!(answer["window"], window, "{query}");
        assert_eq!(answer["step"], step, "{query}");
        let buckets: Vec<u64> = (answer["buckets"].as_array().unwrap().iter())
            .map(|bucket| minute(bucket.as_str().unwrap()))
            .collect();
        assert_eq!(buckets.len(), points, "{query}");
        let step = humantime::parse_duration(step).unwrap().as_secs() / 60;
        assert!(
            buckets.iter().all(|start| start % step == 0),
            "{query}: {buckets:?}"
        );
        assert!(
            buckets.windows(2).all(|pair| pair[1] - pair[0] == step),
            "{query}"
        );
        assert_eq!(minute(answer["from"].as_str().unwrap()), buckets[0]);
        let to = minute(answer["to"].as_str().unwrap());
        assert_eq!(to, buckets[points - 1] + step, "{query}");
        let now = minute(&minute_now());
        assert!(
            buckets[points - 1] <= now && now <= to,
            "{query}: now {now}, to {to}"
        );
        for list in ["events", "deliveries", "latency"] {
            assert_eq!(answer[list], json!([]), "nothing happened: {query}");
        }
    }
}

async fn minutes_older_than_the_longest_window_are_pruned_a_batch_at_a_time(backend: Backend) {
    let store = backend.store().await;
    let sql = store.sql().await;
    let now = store.stats(1, 1).await.unwrap().from_minute;
    let kept = (stats::KEPT.as_secs() / 60) as i64;
    for old in [now - kept - 10, now - kept - 5] {
        write_minute(&sql, old, 1).await;
    }
    // Its minute ends inside the kept time, even if the current minute ends meanwhile.
    write_minute(&sql, now - kept + 5, 1).await;

    assert_eq!(
        store.prune_stats(stats::KEPT, 1).await.unwrap(),
        3,
        "one row of each table"
    );
    assert_eq!(store.prune_stats(stats::KEPT, 1).await.unwrap(), 3);
    assert_eq!(store.prune_stats(stats::KEPT, 1).await.unwrap(), 0);
    for table in ["stats_events", "stats_deliveries", "stats_latency"] {
        let minutes: Vec<i64> = sqlx::query_scalar(&format!("SELECT minute FROM {table}"))
            .fetch_all(&sql)
            .await
            .unwrap();
        assert_eq!(minutes, [now - kept + 5], "{table}");
    }
}

#[tokio::test]
async fn bad_windows_and_steps_are_refused_naming_the_parameter() {
    let app = TestApp::start().await;
    for (query, named) in [
        ("window=soon", "`window`"),
        ("window=90s", "`window`"),
        ("window=0m", "`window`"),
        ("window=8d", "`window`"),
        ("window=-1h", "`window`"),
        ("step=30s", "`step`"),
        ("step=2d", "`step`"),
        ("step=1m500ms", "`step`"),
        ("window=7d&step=1m", "`step`"),
        ("window=1d&step=59s", "`step`"),
        ("every=1m", "every"),
    ] {
        let response = app.call(Method::GET, &format!("/v1/stats?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{query}"
        );
        let problem: Value = response.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(named), "{query}: {detail}");
    }
}
