//! End to end: changes made through the API or raw SQL pass real WebAssembly plugins (built from
//! `plugins/`) and arrive at a real HTTP receiver as CloudEvents, in order, routed as the plugins say.
//! The tests of the path from database to receiver run on each backend; those of the plugin host
//! itself (failure policies, guest limits, loading) on SQLite, since the database plays no part there.

use std::time::Duration;

use plant_monitor::config::Config;
use plant_monitor_tests::{
    Backend, PluginDir, Receiver, TestApp, WAIT, eventually, plant, sink, with_extra_modules,
};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

plant_monitor_tests::on_every_backend! {
    api_changes_arrive_as_cloudevents_in_order_labelled_and_routed_by_fuel,
    a_write_through_raw_sql_reaches_the_receiver,
    plants_present_before_the_first_feed_are_snapshotted_once,
    a_failing_sink_is_retried_and_order_per_plant_is_kept,
}

/// The example plugins, with sinks green, grid and alerts at the receiver.
fn examples(config: &mut Config, plugins: &PluginDir, receiver: &Receiver) {
    config.plugins.dir = plugins.path().to_path_buf();
    for name in ["green", "grid", "alerts"] {
        config
            .sinks
            .insert(name.into(), sink(&receiver.url(&format!("/{name}"))));
    }
}

fn at<'a>(
    received: &'a [plant_monitor_tests::Received],
    path: &str,
) -> Vec<&'a plant_monitor_tests::Received> {
    received.iter().filter(|r| r.path == path).collect()
}

async fn outcome_of(app: &TestApp, name: &str) -> Value {
    let journal = app.journal().await;
    journal
        .iter()
        .rev()
        .find(|e| e["after"]["name"] == name || e["before"]["name"] == name)
        .map(|e| e["outcome"].clone())
        .unwrap_or(Value::Null)
}

async fn wait_for_outcome(app: &TestApp, name: &str) -> Value {
    eventually(WAIT, || async {
        match outcome_of(app, name).await {
            Value::Null => Err(format!("no outcome for {name}")),
            outcome => Ok(outcome),
        }
    })
    .await
}

async fn api_changes_arrive_as_cloudevents_in_order_labelled_and_routed_by_fuel(backend: Backend) {
    let receiver = Receiver::start().await;
    let plugins = PluginDir::default()
        .example("min-capacity-filter")
        .example("output-alert-enricher")
        .example("fuel-router");
    let app = TestApp::start_on(backend, |c| examples(c, &plugins, &receiver)).await;

    let hydro = app.create(&plant("Grand Coulee")).await;
    let id = hydro["id"].as_str().unwrap();
    let mut gas = plant("Four Corners");
    gas["fuel"] = json!("gas");
    app.create(&gas).await;
    let updated = app.patch(id, r#"{"output_mw": 7000}"#).await;
    app.call(Method::DELETE, &format!("/v1/plants/{id}")).await;

    let received = receiver.wait_for(5, WAIT).await;
    let green = at(&received, "/green");
    let kinds: Vec<&str> = green
        .iter()
        .map(|r| r.data()["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["created", "updated", "deleted"],
        "hydro is green, in order"
    );
    assert!(green.windows(2).all(|w| w[0].seq() < w[1].seq()));
    let grid = at(&received, "/grid");
    assert_eq!(grid.len(), 1);
    assert_eq!(grid[0].data()["after"]["name"], "Four Corners");
    let alerts = at(&received, "/alerts");
    assert_eq!(
        alerts.len(),
        1,
        "only the over-capacity reading is an alert"
    );
    assert_eq!(
        alerts[0].data()["labels"],
        json!({"alert": "over-capacity"})
    );

    let (created, update, deleted) = (green[0], green[1], green[2]);
    assert_eq!(
        created.headers[CONTENT_TYPE],
        "application/cloudevents+json"
    );
    assert_eq!(created.body["specversion"], "1.0");
    assert_eq!(created.body["type"], "powerplant.created");
    assert_eq!(created.body["source"], "/plant-monitor/regions/us-west");
    assert_eq!(created.body["subject"], id);
    assert_eq!(created.body["datacontenttype"], "application/json");
    assert_eq!(created.body["id"], created.data()["seq"].to_string());
    assert_eq!(created.data()["before"], Value::Null);
    assert_eq!(created.data()["after"], hydro);
    assert_eq!(created.data()["labels"], json!({}));
    assert_eq!(update.body["type"], "powerplant.updated");
    assert_eq!(update.data()["before"], hydro);
    assert_eq!(update.data()["after"], updated);
    assert_eq!(update.data()["changed_fields"], json!(["output_mw"]));
    assert_eq!(update.data()["labels"], json!({"alert": "over-capacity"}));
    assert_eq!(update.body["time"], update.data()["committed_at"]);
    assert_eq!(deleted.body["type"], "powerplant.deleted");
    assert_eq!(deleted.data()["after"], Value::Null);
    assert_eq!(deleted.data()["before"], updated);

    let journal = app.journal().await;
    assert!(
        journal.iter().all(|e| e["outcome"]["result"] == "routed"),
        "{journal:#?}"
    );
}

async fn a_write_through_raw_sql_reaches_the_receiver(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = TestApp::start_on(backend, |c| {
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
    })
    .await;
    sqlx::query("INSERT INTO power_plants (id, name, region, fuel, capacity_mw) VALUES ('raw', 'Raw', 'eu', 'wind', 5)")
        .execute(&app.sql().await)
        .await
        .unwrap();
    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(received[0].body["subject"], "raw");
    assert_eq!(received[0].body["type"], "powerplant.created");
    assert_eq!(received[0].data()["after"]["name"], "Raw");
}

#[tokio::test]
async fn a_filter_drops_events_and_the_journal_names_the_plugin() {
    let receiver = Receiver::start().await;
    let plugins = PluginDir::default().example("min-capacity-filter");
    let app = TestApp::start_with(|c| examples(c, &plugins, &receiver)).await;
    let mut small = plant("Tiny");
    small["capacity_mw"] = json!(10);
    app.create(&small).await;
    app.create(&plant("Big")).await;
    let received = receiver.wait_for(3, WAIT).await;
    assert!(
        received.iter().all(|r| r.data()["after"]["name"] == "Big"),
        "no router: every sink gets Big"
    );
    let outcome = wait_for_outcome(&app, "Tiny").await;
    assert_eq!(outcome["result"], "filtered");
    assert_eq!(outcome["plugin"], "min-capacity-filter");
    assert_eq!(receiver.settle(Duration::from_millis(200)).await.len(), 3);
}

#[tokio::test]
async fn a_router_fans_out_to_two_sinks_and_an_unknown_sink_is_a_plugin_error() {
    let receiver = Receiver::start().await;
    let plugins = PluginDir::default().add("router", "fuel-router", None).add(
        "enricher",
        "output-alert-enricher",
        Some("[config]\nmin_output_mw = \"0\"\n"),
    );
    let app = TestApp::start_with(|c| {
        c.plugins.dir = plugins.path().to_path_buf();
        c.sinks.insert("grid".into(), sink(&receiver.url("/grid")));
        c.sinks
            .insert("alerts".into(), sink(&receiver.url("/alerts")));
    })
    .await;
    let mut coal = plant("Alerting coal");
    coal["fuel"] = json!("coal");
    coal["output_mw"] = json!(-1);
    app.create(&coal).await;
    let received = receiver.wait_for(2, WAIT).await;
    let mut paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["/alerts", "/grid"]);
    assert!(
        received
            .iter()
            .all(|r| r.data()["labels"]["alert"] == "out-of-range")
    );

    app.create(&plant("Hydro goes green")).await;
    failed_once_by(&app, "Hydro goes green", "router", "\"green\"").await;
}

/// The event of `plant` failed in `plugin`, for a reason that contains `reason`, and `/v1/plugins`
/// counts it as that plugin's one error.
async fn failed_once_by(app: &TestApp, plant: &str, plugin: &str, reason: &str) {
    let outcome = wait_for_outcome(app, plant).await;
    assert_eq!(outcome["result"], "failed");
    assert_eq!(outcome["plugin"], plugin);
    assert!(
        outcome["reason"].as_str().unwrap().contains(reason),
        "{outcome}"
    );
    assert_eq!(plugin_errors(app, plugin).await, 1, "{plugin}'s errors");
}

/// The `errors` `/v1/plugins` shows for the plugin `name`.
async fn plugin_errors(app: &TestApp, name: &str) -> u64 {
    let plugins = app.get_json("/v1/plugins").await;
    let items = plugins["items"].as_array().unwrap();
    let plugin = items.iter().find(|p| p["name"] == name).unwrap();
    plugin["errors"].as_u64().unwrap()
}

/// The chaos filter, failing (by `mode`) only on the plant named "bad", under `policy`.
fn chaos(mode: &str, policy: &str) -> PluginDir {
    PluginDir::default().add(
        "chaos",
        "test-chaos-filter",
        Some(&format!(
            "on_error = \"{policy}\"\n[config]\nmode = \"{mode}\"\nmatch_name = \"bad\"\n"
        )),
    )
}

/// The chaos enricher installed as `name`, its `[config]` table holding `config`.
fn chaos_enricher(name: &str, config: &str) -> PluginDir {
    PluginDir::default().add(
        name,
        "test-chaos-enricher",
        Some(&format!("[config]\n{config}\n")),
    )
}

#[tokio::test]
async fn under_dead_letter_a_failing_event_is_recorded_and_the_feed_goes_on() {
    for mode in ["error", "trap"] {
        let receiver = Receiver::start().await;
        let plugins = chaos(mode, "dead-letter");
        let app = TestApp::start_with(|c| examples(c, &plugins, &receiver)).await;
        for name in ["good1", "bad", "good2"] {
            app.create(&plant(name)).await;
        }
        let received = receiver.wait_for(6, WAIT).await;
        let names: Vec<&str> = at(&received, "/green")
            .iter()
            .map(|r| r.data()["after"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["good1", "good2"], "{mode}");
        let outcome = wait_for_outcome(&app, "bad").await;
        assert_eq!(outcome["result"], "failed", "{mode}");
        assert_eq!(outcome["plugin"], "chaos");
        let reason = outcome["reason"].as_str().unwrap();
        match mode {
            "error" => assert_eq!(reason, "chaos: asked to fail"),
            _ => assert!(reason.starts_with("trapped"), "{reason}"),
        }
    }
}

#[tokio::test]
async fn under_skip_the_failing_plugin_is_passed_over_for_that_event() {
    for mode in ["error", "trap"] {
        let receiver = Receiver::start().await;
        let plugins = chaos(mode, "skip");
        let app = TestApp::start_with(|c| examples(c, &plugins, &receiver)).await;
        for name in ["good1", "bad", "good2"] {
            app.create(&plant(name)).await;
        }
        let received = receiver.wait_for(9, WAIT).await;
        let names: Vec<&str> = at(&received, "/grid")
            .iter()
            .map(|r| r.data()["after"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["good1", "bad", "good2"], "{mode}");
    }
}

#[tokio::test]
async fn under_halt_the_feed_stops_at_the_failing_event_and_retries_until_it_passes() {
    for mode in ["error", "trap"] {
        let receiver = Receiver::start().await;
        let plugins = chaos(mode, "halt");
        let app = TestApp::start_with(|c| {
            examples(c, &plugins, &receiver);
            c.sinks.retain(|name, _| name == "green");
        })
        .await;
        for name in ["good1", "bad", "good2"] {
            app.create(&plant(name)).await;
        }
        receiver.wait_for(1, WAIT).await;
        let calls = |plugins: Value| plugins["items"][0]["calls"].as_u64().unwrap();
        let before = calls(app.get_json("/v1/plugins").await);
        let held = receiver.settle(Duration::from_millis(600)).await;
        assert_eq!(held.len(), 1, "{mode}: nothing passes the halted event");
        assert!(
            calls(app.get_json("/v1/plugins").await) > before,
            "{mode}: the halted event is retried"
        );
        assert_eq!(outcome_of(&app, "bad").await, Value::Null);
        assert_eq!(outcome_of(&app, "good2").await, Value::Null);

        // The operator fixes the plugin's configuration; the held events go out in order.
        std::fs::write(
            plugins.path().join("chaos.toml"),
            "on_error = \"halt\"\n[config]\nmode = \"keep\"\n",
        )
        .unwrap();
        let app = app.restart(|_| {}).await;
        let received = receiver.wait_for(3, WAIT).await;
        let names: Vec<&str> = received
            .iter()
            .map(|r| r.data()["after"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["good1", "bad", "good2"], "{mode}");
        app.stop().await;
    }
}

/// A halt holds back only the region of the failing event: the events of another region this process
/// leads flow on meanwhile, and the halted region's own wait in order behind it. One event per batch,
/// so each is read while the one before it is recorded, and the event behind a halt is read too.
#[tokio::test]
async fn a_halt_holds_back_only_the_region_of_the_failing_event() {
    let receiver = Receiver::start().await;
    let plugins = chaos("error", "halt");
    let app = TestApp::start_with(|c| {
        examples(c, &plugins, &receiver);
        c.sinks.retain(|name, _| name == "green");
        c.feed.batch_size = 1.try_into().unwrap();
    })
    .await;
    let in_region = |name: &str, region: &str| {
        let mut body = plant(name);
        body["region"] = region.into();
        body
    };
    app.create(&in_region("bad", "north")).await;
    app.create(&in_region("held", "north")).await;
    app.create(&in_region("flows", "south")).await;
    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(received[0].data()["after"]["name"], "flows");
    let held = receiver.settle(Duration::from_millis(600)).await;
    assert_eq!(held.len(), 1, "nothing of the halted region passes");
    assert_eq!(outcome_of(&app, "held").await, Value::Null);

    std::fs::write(
        plugins.path().join("chaos.toml"),
        "on_error = \"halt\"\n[config]\nmode = \"keep\"\n",
    )
    .unwrap();
    let received = receiver.wait_for(3, WAIT).await;
    let north: Vec<&str> = (received.iter())
        .map(|r| r.data()["after"]["name"].as_str().unwrap())
        .filter(|name| *name != "flows")
        .collect();
    assert_eq!(
        north,
        ["bad", "held"],
        "the manifest edit applies without a restart"
    );
}

/// A plugin failing on every event is quarantined after `quarantine_failures`: the events that reach
/// it fail at once under its `on_error` without calling it, and after the backoff one event is let
/// through, whose failure quarantines it again.
#[tokio::test]
async fn a_plugin_that_keeps_failing_is_quarantined_and_tried_again_after_the_backoff() {
    let receiver = Receiver::start().await;
    let plugins = chaos_enricher("chaos", "mode = \"error\"");
    let app = TestApp::start_with(|c| {
        examples(c, &plugins, &receiver);
        c.plugins.quarantine_failures = 3;
        c.plugins.quarantine_window = Duration::from_secs(60);
        c.plugins.quarantine_backoff = Duration::from_secs(1);
    })
    .await;
    let chaos = |list: &Value| {
        (list["items"].as_array().unwrap().iter())
            .find(|p| p["name"] == "chaos")
            .unwrap()
            .clone()
    };
    for n in 0..5 {
        app.create(&plant(&format!("p{n}"))).await;
    }
    let mut reasons = Vec::new();
    for n in 0..5 {
        let outcome = wait_for_outcome(&app, &format!("p{n}")).await;
        reasons.push(outcome["reason"].as_str().unwrap().to_owned());
    }
    assert!(
        reasons[..3]
            .iter()
            .all(|r| r.contains("chaos: asked to fail")),
        "{reasons:#?}"
    );
    assert!(
        reasons[3..]
            .iter()
            .all(|r| r.contains("quarantined for 1s after 3 failures")),
        "{reasons:#?}"
    );
    let quarantined = chaos(&app.get_json("/v1/plugins").await);
    assert_eq!(quarantined["state"], "quarantined", "{quarantined}");
    assert_eq!(quarantined["calls"], 3, "not called while quarantined");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.create(&plant("trial")).await;
    let trial = wait_for_outcome(&app, "trial").await;
    assert!(
        trial["reason"].as_str().unwrap().contains("asked to fail"),
        "{trial}"
    );
    app.create(&plant("after the trial")).await;
    let after = wait_for_outcome(&app, "after the trial").await;
    assert!(
        after["reason"]
            .as_str()
            .unwrap()
            .contains("quarantined for 2s"),
        "{after}"
    );
    let again = chaos(&app.get_json("/v1/plugins").await);
    assert_eq!(
        (again["state"].as_str(), again["calls"].as_u64()),
        (Some("quarantined"), Some(4))
    );
}

#[tokio::test]
async fn a_guest_that_loops_forever_is_stopped_at_the_call_timeout() {
    let receiver = Receiver::start().await;
    let plugins = chaos("loop", "dead-letter");
    let app = TestApp::start_with(|c| {
        examples(c, &plugins, &receiver);
        c.plugins.call_timeout = Duration::from_millis(50);
    })
    .await;
    fails_and_the_next_flows(&app, &receiver, "bad", "exceeded the call timeout of 50ms").await;
}

/// Creates the plant `failing` and then `next`: `failing`'s event fails with a reason that contains
/// `reason`, and `next`'s reaches all three sinks, served by a fresh instance.
async fn fails_and_the_next_flows(app: &TestApp, receiver: &Receiver, failing: &str, reason: &str) {
    app.create(&plant(failing)).await;
    app.create(&plant("next")).await;
    let outcome = wait_for_outcome(app, failing).await;
    assert_eq!(outcome["result"], "failed");
    let kept = outcome["reason"].as_str().unwrap();
    assert!(kept.contains(reason), "{kept}");
    let received = receiver.wait_for(3, WAIT).await;
    assert!(
        received.iter().all(|r| r.data()["after"]["name"] == "next"),
        "a fresh instance serves the next event"
    );
}

/// A guest that blocks on a WASI clock waits inside the host, where epoch interruption does not reach:
/// the wait itself must end at the call's deadline, or the feed, and shutdown, would wait an hour.
#[tokio::test]
async fn a_guest_that_blocks_for_an_hour_is_stopped_at_the_call_timeout_and_shutdown_is_prompt() {
    let receiver = Receiver::start().await;
    let plugins = chaos_enricher("sleeper", "mode = \"sleep\"\nmatch_name = \"sleepy\"");
    let app = TestApp::start_with(|c| examples(c, &plugins, &receiver)).await;
    let started = std::time::Instant::now();
    fails_and_the_next_flows(
        &app,
        &receiver,
        "sleepy",
        "exceeded the call timeout of 100ms (plugins.call_timeout)",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    app.create(&plant("sleepy")).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopping = std::time::Instant::now();
    app.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "shutdown took {:?} with a guest asleep",
        stopping.elapsed()
    );
}

#[tokio::test]
async fn a_guest_that_allocates_without_bound_is_stopped_at_the_memory_limit() {
    let receiver = Receiver::start().await;
    let plugins = chaos("oom", "dead-letter");
    let app = TestApp::start_with(|c| {
        examples(c, &plugins, &receiver);
        c.plugins.memory_limit = 16 << 20;
    })
    .await;
    app.create(&plant("bad")).await;
    app.create(&plant("after")).await;
    let outcome = wait_for_outcome(&app, "bad").await;
    let reason = outcome["reason"].as_str().unwrap();
    assert!(
        reason.contains("exceeded the memory limit of 16 MiB"),
        "{reason}"
    );
    receiver.wait_for(3, WAIT).await;
}

/// A guest whose memory is never given back (as componentize-js 0.23 keeps part of every event)
/// would reach the memory limit and trap on an innocent event; its instance is replaced between
/// calls once it has taken half of the headroom it started with, so no event fails.
#[tokio::test]
async fn an_instance_that_keeps_its_memory_is_replaced_before_the_limit_and_no_event_fails() {
    let receiver = Receiver::start().await;
    let plugins = chaos_enricher("leaky", "mode = \"leak\"");
    let app = TestApp::start_with(|c| {
        examples(c, &plugins, &receiver);
        c.plugins.memory_limit = 16 << 20;
    })
    .await;
    // 1 MiB kept per event: without replacement the instance traps within 16 events.
    for n in 0..40 {
        app.create(&plant(&format!("plant {n}"))).await;
    }
    let received = receiver.wait_for(3 * 40, WAIT).await;
    let green = at(&received, "/green");
    assert_eq!(green.len(), 40);
    assert!(
        green
            .iter()
            .all(|r| r.body["data"]["labels"]["chaos"] == "1048576"),
        "every event went through the plugin"
    );
    let leaky = app.get_json("/v1/plugins").await["items"][0].clone();
    assert_eq!(
        (
            leaky["calls"].as_u64(),
            leaky["errors"].as_u64(),
            leaky["traps"].as_u64()
        ),
        (Some(40), Some(0), Some(0)),
        "{leaky}"
    );
}

#[tokio::test]
async fn a_guest_finds_no_files_no_environment_no_arguments_and_no_network() {
    let receiver = Receiver::start().await;
    let plugins = chaos("sandbox", "dead-letter");
    let app = TestApp::start_with(|c| examples(c, &plugins, &receiver)).await;
    app.create(&plant("bad")).await;
    let outcome = wait_for_outcome(&app, "bad").await;
    assert_eq!(
        outcome["result"], "routed",
        "every escape attempt failed: {outcome}"
    );
}

#[tokio::test]
async fn an_enricher_may_change_after_but_not_the_identity_of_the_event() {
    for (mode, field) in [
        ("tamper-seq", "seq"),
        ("tamper-kind", "kind"),
        ("tamper-plant-id", "plant-id"),
        ("tamper-region", "region"),
    ] {
        let receiver = Receiver::start().await;
        let plugins = PluginDir::default().add(
            "tamper",
            "test-chaos-enricher",
            Some(&format!("[config]\nmode = \"{mode}\"\n")),
        );
        let app = TestApp::start_with(|c| examples(c, &plugins, &receiver)).await;
        app.create(&plant("p")).await;
        let outcome = wait_for_outcome(&app, "p").await;
        assert_eq!(outcome["result"], "failed", "{mode}");
        assert!(
            outcome["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("`{field}`")),
            "{outcome}"
        );
        assert_eq!(plugin_errors(&app, "tamper").await, 1, "{mode}");
    }
    let receiver = Receiver::start().await;
    let plugins = chaos_enricher("tamper", "mode = \"bad-fuel\"");
    let app = TestApp::start_with(|c| examples(c, &plugins, &receiver)).await;
    app.create(&plant("p")).await;
    failed_once_by(&app, "p", "tamper", "\"peat\"").await;
    let receiver = Receiver::start().await;
    let plugins = chaos_enricher("after", "mode = \"tamper-after\"");
    let app = TestApp::start_with(|c| {
        examples(c, &plugins, &receiver);
        c.sinks.retain(|name, _| name == "green");
    })
    .await;
    app.create(&plant("p")).await;
    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(received[0].data()["after"]["output_mw"], 1.0);
}

/// A guest can answer with anything its memory holds; the host keeps no more than its caps, and an
/// answer over one is the plugin's error, naming the key that sets it.
#[tokio::test]
async fn an_answer_over_a_cap_is_the_plugins_error_naming_the_cap() {
    for (plugin, manifest, cap) in [
        (
            "test-chaos-enricher",
            "mode = \"many-labels\"",
            "plugins.max_labels",
        ),
        (
            "test-chaos-enricher",
            "mode = \"huge-label\"",
            "plugins.max_label_size",
        ),
        (
            "test-chaos-enricher",
            "mode = \"huge-event\"",
            "plugins.max_event_size",
        ),
        (
            "test-chaos-router",
            "mode = \"many-sinks\"\nsink = \"green\"",
            "plugins.max_route_sinks",
        ),
        // Answers too large to copy at all trap before the host holds them.
        (
            "test-chaos-enricher",
            "mode = \"giant-label\"",
            "plugins.max_event_size",
        ),
        (
            "test-chaos-router",
            "mode = \"flood\"\nsink = \"green\"",
            "plugins.max_event_size",
        ),
    ] {
        let receiver = Receiver::start().await;
        let plugins =
            PluginDir::default().add("flood", plugin, Some(&format!("[config]\n{manifest}\n")));
        let app = TestApp::start_with(|c| examples(c, &plugins, &receiver)).await;
        app.create(&plant("p")).await;
        let outcome = wait_for_outcome(&app, "p").await;
        assert_eq!(outcome["result"], "failed", "{manifest}");
        assert_eq!(outcome["plugin"], "flood");
        let reason = outcome["reason"].as_str().unwrap();
        assert!(reason.contains(cap), "{manifest}: {reason}");
        assert!(reason.len() < 1024, "{manifest}: the reason is short");
    }
}

#[tokio::test]
async fn a_huge_error_reason_is_cut_at_max_reason_size() {
    let receiver = Receiver::start().await;
    let plugins = chaos_enricher("flood", "mode = \"huge-error\"");
    let app = TestApp::start_with(|c| examples(c, &plugins, &receiver)).await;
    app.create(&plant("p")).await;
    let outcome = wait_for_outcome(&app, "p").await;
    assert_eq!(outcome["result"], "failed");
    let reason = outcome["reason"].as_str().unwrap();
    assert!(reason.len() < 2048, "{} bytes kept", reason.len());
    assert!(reason.starts_with("eeee"), "{reason}");
    assert!(
        reason.ends_with("cut at plugins.max_reason_size)"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_broken_component_is_refused_with_a_reason_while_the_others_load() {
    let plugins = PluginDir::default().example("fuel-router");
    std::fs::write(plugins.path().join("garbage.wasm"), b"not wasm at all").unwrap();
    std::fs::write(plugins.path().join("core-module.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(
        plugins.path().join("bad-manifest.wasm"),
        std::fs::read(plant_monitor_tests::component("fuel-router")).unwrap(),
    )
    .unwrap();
    std::fs::write(plugins.path().join("bad-manifest.toml"), "ordr = 3\n").unwrap();
    let app = TestApp::start_with(|c| c.plugins.dir = plugins.path().to_path_buf()).await;
    let listing = app.get_json("/v1/plugins").await;
    let names: Vec<&str> = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fuel-router"]);
    assert_eq!(listing["items"][0]["role"], "route");
    assert_eq!(listing["items"][0]["order"], 300);
    let refused = listing["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 3, "{refused:#?}");
    let reason = |file: &str| {
        refused
            .iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(file))
            .map(|r| r["reason"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert!(
        reason("garbage.wasm").contains("not a valid WebAssembly component"),
        "{}",
        reason("garbage.wasm")
    );
    assert!(reason("core-module.wasm").contains("not a valid WebAssembly component"));
    assert!(
        reason("bad-manifest.wasm").contains("ordr"),
        "{}",
        reason("bad-manifest.wasm")
    );
}

/// `memory_limit` holds for all of an instance's memories together, and a component may hold no more
/// than its share of the sandbox's pool: one made of many core modules, each memory under the limit,
/// is refused at load when they add up to more; one with more memories or core instances than
/// allowed is refused too, naming the key; the other plugins load and run.
#[tokio::test]
async fn a_component_of_many_core_modules_is_held_to_one_memory_limit_and_its_share_of_the_pool() {
    let receiver = Receiver::start().await;
    // The chaos filter alone has 3 core instances and 1 memory of about 1 MiB.
    let plugins = PluginDir::default()
        .example("fuel-router")
        .add_bytes(
            "memories-over-the-limit",
            &with_extra_modules("test-chaos-filter", 3, Some(96)),
        )
        .add_bytes(
            "too-many-memories",
            &with_extra_modules("test-chaos-filter", 4, Some(0)),
        )
        .add_bytes(
            "too-many-instances",
            &with_extra_modules("test-chaos-filter", 6, None),
        )
        .add_bytes(
            "within-every-cap",
            &with_extra_modules("test-chaos-filter", 2, Some(16)),
        );
    let app = TestApp::start_with(|c| {
        examples(c, &plugins, &receiver);
        c.plugins.memory_limit = 16 << 20;
        c.plugins.max_memories = 4.try_into().unwrap();
        c.plugins.max_core_instances = 8.try_into().unwrap();
    })
    .await;
    let listing = app.get_json("/v1/plugins").await;
    let names: Vec<&str> = (listing["items"].as_array().unwrap().iter())
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fuel-router", "within-every-cap"], "{listing:#}");
    let reason = |file: &str| {
        (listing["refused"].as_array().unwrap().iter())
            .find(|r| r["path"].as_str().unwrap().ends_with(file))
            .map(|r| r["reason"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{file} was not refused: {listing:#}"))
    };
    let over = reason("memories-over-the-limit.wasm");
    assert!(
        over.contains("memories need more than the memory limit of 16 MiB (plugins.memory_limit)"),
        "{over}"
    );
    let memories = reason("too-many-memories.wasm");
    assert!(
        memories.contains("larger than plugins.max_memories allows")
            && memories.contains("5 Wasm linear memories"),
        "{memories}"
    );
    let instances = reason("too-many-instances.wasm");
    assert!(
        instances.contains("larger than plugins.max_core_instances allows")
            && instances.contains("9 core module instances"),
        "{instances}"
    );
    app.create(&plant("flows")).await;
    receiver.wait_for(1, WAIT).await;
}

#[tokio::test]
async fn a_second_start_reuses_the_compiled_cache() {
    let plugins = PluginDir::default()
        .example("fuel-router")
        .example("min-capacity-filter");
    let app = TestApp::start_with(|c| c.plugins.dir = plugins.path().to_path_buf()).await;
    let cache = |listing: Value| -> Vec<String> {
        listing["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["cache"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(cache(app.get_json("/v1/plugins").await), ["miss", "miss"]);
    let app = app.restart(|_| {}).await;
    assert_eq!(cache(app.get_json("/v1/plugins").await), ["hit", "hit"]);
}

async fn plants_present_before_the_first_feed_are_snapshotted_once(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = TestApp::start_on(backend, |c| {
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
        c.feed.snapshot = plant_monitor::config::SnapshotMode::Never;
    })
    .await;
    app.create(&plant("existing")).await;
    receiver.wait_for(1, WAIT).await;
    let app = app
        .restart(|c| c.feed.snapshot = plant_monitor::config::SnapshotMode::OnFirstLease)
        .await;
    let received = receiver.wait_for(2, WAIT).await;
    assert_eq!(received[1].body["type"], "powerplant.snapshot");
    assert_eq!(received[1].data()["before"], Value::Null);
    assert_eq!(received[1].data()["after"]["name"], "existing");
    let app = app.restart(|_| {}).await;
    assert_eq!(
        receiver.settle(Duration::from_millis(300)).await.len(),
        2,
        "once per database"
    );
    let _app = app
        .restart(|c| c.feed.snapshot = plant_monitor::config::SnapshotMode::OnEveryLease)
        .await;
    receiver.wait_for(3, WAIT).await;
}

async fn a_failing_sink_is_retried_and_order_per_plant_is_kept(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = TestApp::start_on(backend, |c| {
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
    })
    .await;
    receiver.answer_next(&[500, 503, 404]);
    let id = app.create(&plant("v1")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for name in ["v2", "v3"] {
        app.request(Method::PUT, &format!("/v1/plants/{id}"))
            .json(&plant(name))
            .send()
            .await
            .unwrap();
    }
    let received = receiver.wait_for(3, WAIT).await;
    let names: Vec<&str> = received
        .iter()
        .map(|r| r.data()["after"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["v1", "v2", "v3"]);
}

#[tokio::test]
async fn plugins_still_load_when_the_compiled_cache_cannot_be_written() {
    let plugins = PluginDir::default().example("fuel-router");
    let blocked = tempfile::NamedTempFile::new().unwrap();
    let app = TestApp::start_with(|c| {
        c.plugins.dir = plugins.path().to_path_buf();
        // A file where the cache folder should be: nothing can be written under it.
        c.plugins.cache_dir = blocked.path().join("cache");
    })
    .await;
    let listing = app.get_json("/v1/plugins").await;
    assert_eq!(listing["items"][0]["name"], "fuel-router");
    assert_eq!(listing["items"][0]["cache"], "miss");
}

/// The names in `/v1/plugins`' `cache` column, in listing order.
fn cache_outcomes(listing: &Value) -> Vec<String> {
    listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["cache"].as_str().unwrap().to_owned())
        .collect()
}

/// A cached compiled plugin is native code: one that was changed on disk (not by this cache, under
/// its key) is refused and compiled again, never run.
#[tokio::test]
async fn a_cached_compiled_plugin_that_was_changed_on_disk_is_compiled_again() {
    let receiver = Receiver::start().await;
    let plugins = PluginDir::default().example("fuel-router");
    let app = TestApp::start_with(|c| examples(c, &plugins, &receiver)).await;
    assert_eq!(cache_outcomes(&app.get_json("/v1/plugins").await), ["miss"]);
    let cache_dir = app.config.plugins.cache_dir.clone();
    let cached: Vec<_> = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let mut bytes = std::fs::read(&cached[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&cached[0], &bytes).unwrap();
    let app = app.restart(|_| {}).await;
    assert_eq!(cache_outcomes(&app.get_json("/v1/plugins").await), ["miss"]);
    app.create(&plant("still routed")).await;
    receiver.wait_for(1, WAIT).await;
    let app = app.restart(|_| {}).await;
    assert_eq!(
        cache_outcomes(&app.get_json("/v1/plugins").await),
        ["hit"],
        "compiled again and cached anew"
    );
}

/// A cache folder other users may write to could hold anyone's code: it is not used at all.
#[tokio::test]
async fn a_cache_folder_others_may_write_to_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let plugins = PluginDir::default().example("fuel-router");
    let cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let app = TestApp::start_with(|c| {
        c.plugins.dir = plugins.path().to_path_buf();
        c.plugins.cache_dir = cache.path().to_path_buf();
    })
    .await;
    assert_eq!(cache_outcomes(&app.get_json("/v1/plugins").await), ["miss"]);
    let app = app.restart(|_| {}).await;
    assert_eq!(cache_outcomes(&app.get_json("/v1/plugins").await), ["miss"]);
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "nothing was written there"
    );
}

/// A plugin that logs 1,000 messages of 8 KiB in one call would write 8 MB to the host's log; the
/// host keeps 100 a second, each cut at 4 KiB, and says how many it dropped.
#[test]
fn a_plugin_that_floods_the_log_is_cut_to_size_and_rate() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = chaos_enricher("chatty", "mode = \"log-flood\"");
    std::fs::write(
        dir.path().join("pm.toml"),
        format!(
            "[database]\nurl = \"sqlite://pm.db\"\n[feed]\nsnapshot = \"never\"\n\
             [plugins]\ndir = \"{}\"\ncache_dir = \"cache\"\n",
            plugins.path().display()
        ),
    )
    .unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut child = plant_monitor_tests::plant_monitor(dir.path())
        .args(["serve", "-c", "pm.toml"])
        .env("PLANT_MONITOR_LISTEN", "127.0.0.1:0")
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let started = std::time::Instant::now();
    let addr = loop {
        if let Some(rest) = log().split("local_addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        assert!(started.elapsed() < WAIT, "serve did not start:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    };
    let client = reqwest::blocking::Client::new();
    let create = |name: &str| {
        let response = client
            .post(format!("http://{addr}/v1/plants"))
            .json(&plant(name))
            .send()
            .unwrap();
        assert_eq!(response.status(), 201);
    };
    let processed = |count: usize| {
        let started = std::time::Instant::now();
        loop {
            let journal: Value = client
                .get(format!("http://{addr}/v1/changes"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            let items = journal["items"].as_array().unwrap();
            if items.iter().filter(|e| !e["outcome"].is_null()).count() >= count {
                return;
            }
            assert!(started.elapsed() < WAIT, "not processed: {journal}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    create("first");
    processed(1);
    // The count of what was dropped is told with the first message of the next second.
    std::thread::sleep(Duration::from_millis(1100));
    create("second");
    processed(2);
    let _ = child.kill();
    let _ = child.wait();
    let log = log();
    let flood_lines = log.lines().filter(|line| line.contains("yyyy")).count();
    assert!(
        (100..=200).contains(&flood_lines),
        "{flood_lines} messages kept of 2,000"
    );
    assert!(
        log.lines()
            .filter(|line| line.contains("yyyy"))
            .all(|line| line.len() < 5 << 10 && line.contains("cut at plugins.max_log_size")),
        "every kept message is cut"
    );
    let dropped: u64 = log
        .lines()
        .find(|line| line.contains("Dropped the plugin's log messages"))
        .and_then(|line| line.split("dropped=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .expect("the drop is counted in the log");
    assert!(
        (800..=1000).contains(&dropped),
        "{dropped} of the first call's 1,000 dropped"
    );
    assert!(log.len() < 2 << 20, "{} bytes of log", log.len());
}
