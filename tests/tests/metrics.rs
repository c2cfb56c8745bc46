//! `GET /metrics` after real traffic, on each backend: plants written through the API and by SQL, a
//! filter plugin, a sink that delivers and one held by its failing health probe, and a region no one
//! leads. Every family the README lists is scraped and must have moved as that traffic says. Both
//! backends' tests share this process's recorder, so each names its plugin, sinks and regions after its
//! backend, and the series they share (HTTP requests) are compared with a scrape taken before.

use std::collections::BTreeMap;
use std::time::Duration;

use plant_monitor_tests::{
    Backend, PluginDir, Receiver, TestApp, WAIT, eventually, plant, sink, sink_with,
};
use serde_json::json;

plant_monitor_tests::on_every_backend! {
    metrics_move_with_real_traffic,
}

/// A scrape: each sample's value by its series, written `name{label="value",…}` with the labels sorted.
#[derive(Debug)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    async fn of(app: &TestApp) -> Scrape {
        let response = app.call(reqwest::Method::GET, "/metrics").await;
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            samples.insert(normalized(series), value.parse().expect("a number"));
        }
        Scrape(samples)
    }

    /// The sample of `name` with exactly these labels, if exported.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        labels.sort();
        let series = if labels.is_empty() {
            name.to_owned()
        } else {
            format!("{name}{{{}}}", labels.join(","))
        };
        self.0.get(&series).copied()
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no series {name} {labels:?} in {:#?}", self.0))
    }
}

/// A series with its labels in sorted order.
fn normalized(series: &str) -> String {
    let Some((name, labels)) = series.split_once('{') else {
        return series.to_owned();
    };
    let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

async fn metrics_move_with_real_traffic(backend: Backend) {
    let tag = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
        Backend::PostgresWal => "postgres-wal",
    };
    let (region, elsewhere) = (format!("led-{tag}"), format!("unled-{tag}"));
    let (open, gated) = (format!("open-{tag}"), format!("gated-{tag}"));
    let filter = format!("filter-{tag}");
    let receiver = Receiver::start().await;
    let health = Receiver::start().await;
    health.answer_all(Some(503));
    let plugins = PluginDir::default().add(
        &filter,
        "min-capacity-filter",
        Some("[config]\nmin_capacity_mw = \"50\"\n"),
    );
    let app = TestApp::start_on(backend, |c| {
        c.feed.regions = vec![region.clone()];
        c.plugins.dir = plugins.path().to_path_buf();
        c.sinks.insert(open.clone(), sink(&receiver.url("/open")));
        c.sinks.insert(
            gated.clone(),
            sink_with(
                &receiver.url("/gated"),
                json!({"health_url": health.url("/health"), "probe_interval": "100ms"}),
            ),
        );
    })
    .await;
    let before = Scrape::of(&app).await;

    let mut small = plant("Small");
    small["capacity_mw"] = json!(5.0);
    for mut body in [plant("Big one"), plant("Big two"), small] {
        body["region"] = json!(region);
        app.create(&body).await;
    }
    let sql = app.sql().await;
    sqlx::query(
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('Unled', $1, 'wind', 60)",
    )
    .bind(&elsewhere)
    .execute(&sql)
    .await
    .unwrap();
    // In wal capture the unled plant's entry appears once the capture leader has journaled it.
    app.captured().await;
    receiver.wait_for(2, WAIT).await;

    let after = eventually(WAIT, || async {
        let scrape = Scrape::of(&app).await;
        let delivered = scrape.get(
            "plant_monitor_deliveries_total",
            &[("sink", &open), ("outcome", "delivered")],
        );
        let pending = scrape.get("plant_monitor_sink_pending_deliveries", &[("sink", &open)]);
        // The small plant is written last and may be fed after the big ones have arrived.
        let filtered = scrape.get(
            "plant_monitor_feed_events_total",
            &[("region", &region), ("outcome", "filtered")],
        );
        if delivered == Some(2.0) && pending == Some(0.0) && filtered == Some(1.0) {
            Ok(scrape)
        } else {
            Err(format!(
                "delivered {delivered:?}, pending {pending:?}, filtered {filtered:?}"
            ))
        }
    })
    .await;

    let events = |outcome| {
        after.value(
            "plant_monitor_plugin_events_total",
            &[
                ("plugin", &filter),
                ("role", "filter"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(
        (events("processed"), events("filtered"), events("failed")),
        (2.0, 1.0, 0.0)
    );
    let calls = [("plugin", filter.as_str()), ("role", "filter")];
    assert_eq!(
        after.value("plant_monitor_plugin_call_duration_seconds_count", &calls),
        3.0
    );
    assert!(after.value("plant_monitor_plugin_call_duration_seconds_sum", &calls) > 0.0);

    let fed = |outcome| {
        after.value(
            "plant_monitor_feed_events_total",
            &[("region", &region), ("outcome", outcome)],
        )
    };
    assert_eq!((fed("routed"), fed("filtered")), (2.0, 1.0));
    assert!(after.value("plant_monitor_feed_batch_duration_seconds_count", &[]) >= 1.0);

    let latency = [("sink", open.as_str())];
    assert_eq!(
        after.value("plant_monitor_delivery_latency_seconds_count", &latency),
        2.0
    );
    let latency_sum = after.value("plant_monitor_delivery_latency_seconds_sum", &latency);
    assert!(
        latency_sum > 0.0 && latency_sum < 2.0 * WAIT.as_secs_f64(),
        "{latency_sum}"
    );
    assert_eq!(
        after.value("plant_monitor_sink_dead_deliveries", &latency),
        0.0
    );
    assert_eq!(after.value("plant_monitor_sink_waiting", &latency), 0.0);

    let held_back = [("sink", gated.as_str())];
    assert_eq!(after.value("plant_monitor_sink_waiting", &held_back), 1.0);
    assert_eq!(
        after.value("plant_monitor_sink_pending_deliveries", &held_back),
        2.0
    );
    assert_eq!(
        after.get(
            "plant_monitor_deliveries_total",
            &[("sink", &gated), ("outcome", "failed")]
        ),
        None,
        "a gated sink spends no attempts"
    );

    assert_eq!(
        after.value("plant_monitor_lease_held", &[("region", &region)]),
        1.0
    );
    assert!(after.value("plant_monitor_lease_epoch", &[("region", &region)]) >= 1.0);
    assert_eq!(
        after.value(
            "plant_monitor_journal_lag_entries",
            &[("region", &elsewhere)]
        ),
        1.0
    );
    let lag = after.value(
        "plant_monitor_journal_lag_seconds",
        &[("region", &elsewhere)],
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = Scrape::of(&app).await;
    let grown = later.value(
        "plant_monitor_journal_lag_seconds",
        &[("region", &elsewhere)],
    );
    assert!(
        grown >= lag + 0.25,
        "the unled region's lag grows: {lag} then {grown}"
    );
    let led_lag = later.get("plant_monitor_journal_lag_entries", &[("region", &region)]);
    assert_eq!(led_lag.unwrap_or(0.0), 0.0, "the led region is caught up");

    let created = [
        ("method", "POST"),
        ("route", "/v1/plants"),
        ("status", "201"),
    ];
    let counted = after.value("plant_monitor_http_requests_total", &created)
        - before
            .get("plant_monitor_http_requests_total", &created)
            .unwrap_or(0.0);
    assert!(counted >= 3.0, "{counted}");
    let timed = [("method", "POST"), ("route", "/v1/plants")];
    assert!(after.value("plant_monitor_http_request_duration_seconds_count", &timed) >= 3.0);
    let connections = after.value("plant_monitor_db_connections", &[]);
    assert!(connections >= 1.0);
    assert!(after.value("plant_monitor_db_connections_in_use", &[]) <= connections);
}
