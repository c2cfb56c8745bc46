//! The live plugin folder: files dropped, replaced, edited or deleted in `plugins.dir` while events
//! flow take effect without a restart; every event is processed by exactly one pipeline snapshot,
//! whose id the delivered CloudEvent (`pipeline`) and the journal outcome both carry; a file still
//! being written is read once, when complete; a file that cannot load leaves the running version in
//! place. Real components, a real receiver.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use plant_monitor::config::Config;
use plant_monitor_tests::{PluginDir, Receiver, TestApp, WAIT, component, eventually, plant, sink};
use serde_json::Value;

/// A service whose plugin folder holds `tagger`, the chaos enricher labelling every event
/// (`chaos=seen`), delivering to one sink at a receiver; `adjust` changes its configuration first.
async fn with_tagger(adjust: impl FnOnce(&mut Config)) -> (Receiver, PluginDir, TestApp) {
    let receiver = Receiver::start().await;
    let plugins = PluginDir::default().add(
        "tagger",
        "test-chaos-enricher",
        Some("[config]\nmode = \"label\"\n"),
    );
    let app = TestApp::start_with(|c| {
        c.plugins.dir = plugins.path().to_path_buf();
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
        adjust(c);
    })
    .await;
    (receiver, plugins, app)
}

/// Puts `source`'s component in `dir` as `NAME.wasm` (see [`write_atomically`]).
fn replace_atomically(dir: &Path, name: &str, source: &str) {
    let bytes = std::fs::read(component(source)).expect("component read");
    write_atomically(dir, &format!("{name}.wasm"), &bytes);
}

/// Writes `file` in `dir` the way deployment tools do: beside it first, then renamed into place in
/// one step.
fn write_atomically(dir: &Path, file: &str, bytes: &[u8]) {
    let staging = dir.join(format!("{file}.partial"));
    std::fs::write(&staging, bytes).expect("staged");
    std::fs::rename(&staging, dir.join(file)).expect("renamed into place");
}

/// The plugin list once its pipeline id is other than `old`.
async fn next_pipeline(app: &TestApp, old: &str) -> Value {
    app.wait_for_json("/v1/plugins", |list| list["pipeline"] != old)
        .await
}

/// Every journal entry's outcome pipeline, by seq.
async fn journal_pipelines(app: &TestApp) -> BTreeMap<u64, String> {
    let mut pipelines = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = app
            .get_json(&format!("/v1/changes?limit=1000&after={after}"))
            .await;
        for entry in page["items"].as_array().unwrap() {
            let pipeline = entry["outcome"]["pipeline"]
                .as_str()
                .unwrap_or("unprocessed");
            pipelines.insert(entry["seq"].as_u64().unwrap(), pipeline.to_owned());
        }
        match page["next"].as_u64() {
            Some(next) => after = next,
            None => return pipelines,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enricher_replaced_under_load_hands_over_at_one_seq_and_no_event_is_lost_or_repeated() {
    let (receiver, plugins, app) = with_tagger(|_| {}).await;
    let first = app.get_json("/v1/plugins").await;
    let old = first["pipeline"].as_str().unwrap().to_owned();

    // About 1,000 plants a second for 3 s, from another SQL client.
    let sql = app.sql().await;
    let writer = tokio::spawn(async move {
        for batch in 0..150 {
            let rows: Vec<String> = (0..20)
                .map(|n| format!("('p{batch}-{n}', 'Plant', 'us-west', 'wind', 10)"))
                .collect();
            sqlx::query(&format!(
                "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) VALUES {}",
                rows.join(", ")
            ))
            .execute(&sql)
            .await
            .expect("written");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    replace_atomically(plugins.path(), "tagger", "output-alert-enricher");
    let swapped = next_pipeline(&app, &old).await;
    let new = swapped["pipeline"].as_str().unwrap().to_owned();
    writer.await.unwrap();

    let received = receiver.wait_for(3000, WAIT).await;
    let mut seen = BTreeMap::new();
    for event in &received {
        let pipeline = event.body["pipeline"].as_str().unwrap().to_owned();
        assert!(
            seen.insert(
                event.seq(),
                (pipeline, event.body["data"]["labels"].clone())
            )
            .is_none(),
            "seq {} delivered twice",
            event.seq()
        );
    }
    assert_eq!(seen.len(), 3000, "every event, once");
    let mut flips: Vec<&str> = seen.values().map(|(p, _)| p.as_str()).collect();
    flips.dedup();
    assert_eq!(
        flips,
        [old.as_str(), new.as_str()],
        "one hand-over, in seq order"
    );
    for (seq, (pipeline, labels)) in &seen {
        let tagged = labels.get("chaos").is_some();
        assert_eq!(
            tagged,
            *pipeline == old,
            "seq {seq} on {pipeline}: {labels}"
        );
    }
    let journal = journal_pipelines(&app).await;
    for (seq, (pipeline, _)) in &seen {
        assert_eq!(
            &journal[seq], pipeline,
            "the journal names the same snapshot"
        );
    }
    let tagger = &swapped["items"][0];
    assert_eq!(tagger["name"], "tagger");
    assert_eq!(tagger["state"], "active");
    assert_eq!(tagger["previous"]["sha256"], first["items"][0]["sha256"]);
    assert_eq!(
        tagger["history"].as_array().unwrap().len(),
        2,
        "{swapped:#}"
    );
}

#[tokio::test]
async fn a_manifest_edit_applies_and_a_deleted_file_is_unloaded() {
    let (receiver, plugins, app) = with_tagger(|_| {}).await;
    let labelled = app.get_json("/v1/plugins").await["pipeline"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create(&plant("before the edit")).await;
    receiver.wait_for(1, WAIT).await;

    write_atomically(
        plugins.path(),
        "tagger.toml",
        b"[config]\nmode = \"pass\"\n",
    );
    let edited = next_pipeline(&app, &labelled).await;
    let passing = edited["pipeline"].as_str().unwrap().to_owned();
    assert_eq!(edited["items"].as_array().unwrap().len(), 1);
    app.create(&plant("after the edit")).await;
    receiver.wait_for(2, WAIT).await;

    std::fs::remove_file(plugins.path().join("tagger.wasm")).unwrap();
    let emptied = next_pipeline(&app, &passing).await;
    assert!(
        emptied["items"].as_array().unwrap().is_empty(),
        "{emptied:#}"
    );
    app.create(&plant("after the delete")).await;
    let received = receiver.wait_for(3, WAIT).await;

    let by_name: BTreeMap<&str, &Value> = (received.iter())
        .map(|r| (r.body["data"]["after"]["name"].as_str().unwrap(), &r.body))
        .collect();
    let before = by_name["before the edit"];
    assert_eq!(before["pipeline"], labelled.as_str());
    assert_eq!(before["data"]["labels"]["chaos"], "seen");
    let after = by_name["after the edit"];
    assert_eq!(after["pipeline"], passing.as_str());
    assert!(after["data"]["labels"].get("chaos").is_none(), "{after}");
    let deleted = by_name["after the delete"];
    assert_eq!(deleted["pipeline"], emptied["pipeline"]);
}

#[tokio::test]
async fn a_file_written_in_chunks_loads_once_and_a_broken_one_leaves_the_running_version() {
    let (receiver, plugins, app) = with_tagger(|_| {}).await;
    let first = app.get_json("/v1/plugins").await;
    let old = first["pipeline"].as_str().unwrap().to_owned();

    // Written in place in ten chunks with pauses shorter than the debounce, then closed.
    let bytes = std::fs::read(component("output-alert-enricher")).unwrap();
    let mut file = std::fs::File::create(plugins.path().join("tagger.wasm")).unwrap();
    for chunk in bytes.chunks(bytes.len().div_ceil(10)) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    drop(file);
    let loaded = next_pipeline(&app, &old).await;
    let replacement = loaded["items"][0]["sha256"].as_str().unwrap().to_owned();
    let history = loaded["items"][0]["history"].as_array().unwrap().clone();
    let results: Vec<&str> = history
        .iter()
        .map(|h| h["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["loaded", "loaded"],
        "read once, whole: {history:#?}"
    );
    assert!(loaded["refused"].as_array().unwrap().is_empty());

    write_atomically(
        plugins.path(),
        "tagger.wasm",
        b"\0asm\x0d\0\x01\0 truncated",
    );
    let broken = eventually(WAIT, || async {
        let list = app.get_json("/v1/plugins").await;
        if list["refused"].as_array().unwrap().is_empty() {
            Err(format!("not refused yet: {list}"))
        } else {
            Ok(list)
        }
    })
    .await;
    assert_eq!(broken["pipeline"], loaded["pipeline"], "{broken:#}");
    assert_eq!(broken["items"][0]["sha256"], replacement.as_str());
    let refusal = &broken["refused"][0];
    assert!(
        refusal["reason"]
            .as_str()
            .unwrap()
            .contains("not a valid WebAssembly component"),
        "{refusal}"
    );
    assert_ne!(refusal["sha256"], replacement.as_str());
    app.create(&plant("still enriched")).await;
    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(received[0].body["pipeline"], loaded["pipeline"]);
}

#[tokio::test]
async fn a_new_version_that_fails_its_first_events_is_rolled_back_and_nothing_is_lost() {
    let (receiver, plugins, app) = with_tagger(|c| {
        c.plugins.rollback_after = 10;
        c.plugins.rollback_share = 0.5;
    })
    .await;
    let good = app.get_json("/v1/plugins").await["pipeline"]
        .as_str()
        .unwrap()
        .to_owned();

    write_atomically(
        plugins.path(),
        "tagger.toml",
        b"[config]\nmode = \"trap\"\n",
    );
    next_pipeline(&app, &good).await;
    let rows: Vec<String> = (0..40)
        .map(|n| format!("('p{n}', 'Plant', 'us-west', 'wind', 10)"))
        .collect();
    sqlx::query(&format!(
        "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) VALUES {}",
        rows.join(", ")
    ))
    .execute(&app.sql().await)
    .await
    .unwrap();

    let received = receiver.wait_for(34, WAIT).await;
    let journal = app.get_json("/v1/changes?limit=100").await;
    let outcomes: Vec<&Value> = (journal["items"].as_array().unwrap().iter())
        .map(|entry| &entry["outcome"])
        .collect();
    let failed: Vec<&&Value> = outcomes
        .iter()
        .filter(|o| o["result"] == "failed")
        .collect();
    assert_eq!(
        failed.len(),
        6,
        "failed until more than half of 10 had: {failed:#?}"
    );
    assert!(
        failed
            .iter()
            .all(|o| o["reason"].as_str().unwrap().contains("trapped"))
    );
    let routed = outcomes.iter().filter(|o| o["result"] == "routed").count();
    assert_eq!(routed + failed.len(), 40, "every event has its one outcome");
    assert_eq!(received.len(), 34);
    for event in &received {
        assert_eq!(event.body["pipeline"], good.as_str(), "restored version");
        assert_eq!(event.body["data"]["labels"]["chaos"], "seen");
    }

    let list = app.get_json("/v1/plugins").await;
    assert_eq!(list["pipeline"], good.as_str());
    let tagger = &list["items"][0];
    assert_eq!(tagger["state"], "rolled_back", "{list:#}");
    let last = tagger["history"].as_array().unwrap().last().unwrap();
    assert_eq!(last["result"], "rolled_back");
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("failed on 6 of its first 6 events"),
        "{last}"
    );

    // The failed version's file, unchanged, is not loaded again.
    app.create(&plant("still labelled")).await;
    receiver.wait_for(35, WAIT).await;
    assert_eq!(app.get_json("/v1/plugins").await["pipeline"], good.as_str());
}

#[tokio::test]
async fn a_shadow_version_is_compared_on_live_events_without_reaching_a_receiver_and_can_be_promoted()
 {
    let receiver = Receiver::start().await;
    let plugins = PluginDir::default()
        .add(
            "gate",
            "test-chaos-filter",
            Some("[config]\nmode = \"keep\"\n"),
        )
        .add(
            "gate.shadow",
            "test-chaos-filter",
            Some("[config]\nmode = \"drop\"\nmatch_name = \"bad\"\n"),
        );
    let app = TestApp::start_with(|c| {
        c.plugins.dir = plugins.path().to_path_buf();
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
    })
    .await;
    let list = app.get_json("/v1/plugins").await;
    let names: Vec<&str> = (list["items"].as_array().unwrap().iter())
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gate"], "a shadow is not a plugin of its own");
    assert!(list["items"][0]["shadow"]["sha256"].is_string(), "{list:#}");

    // One plant in ten is one the shadow would drop and the live version keeps.
    for n in 0..20 {
        let name = if n % 10 == 3 {
            "bad".to_owned()
        } else {
            format!("p{n}")
        };
        app.create(&plant(&name)).await;
    }
    let received = receiver.wait_for(20, WAIT).await;
    assert_eq!(received.len(), 20, "the shadow changes nothing");
    let bad: Vec<u64> = (received.iter())
        .filter(|r| r.body["data"]["after"]["name"] == "bad")
        .map(|r| r.seq())
        .collect();

    let shadow = app.get_json("/v1/plugins/gate/shadow").await;
    let report = &shadow["report"];
    assert_eq!(report["events"], 20, "{shadow:#}");
    assert_eq!(report["same"], 18);
    assert_eq!(report["differences"]["kept"], 2);
    let differing: Vec<u64> = (report["first"].as_array().unwrap().iter())
        .map(|d| d["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(differing, bad);
    assert_eq!(report["first"][0]["live"]["kept"], true);
    assert_eq!(report["first"][0]["shadow"]["kept"], false);
    assert_eq!(shadow["shadow"]["calls"], 20);
    let missing = app
        .call(reqwest::Method::GET, "/v1/plugins/nothing/shadow")
        .await;
    assert_eq!(missing.status(), 404);

    let live = list["pipeline"].as_str().unwrap();
    let promoted = app
        .call(reqwest::Method::POST, "/v1/plugins/gate/promote")
        .await;
    assert_eq!(promoted.status(), 202);
    let after = next_pipeline(&app, live).await;
    let gate = &after["items"][0];
    assert_eq!(gate["name"], "gate");
    assert!(gate.get("shadow").is_none(), "{after:#}");
    assert!(!plugins.path().join("gate.shadow.wasm").exists());
    app.create(&plant("bad")).await;
    app.create(&plant("good")).await;
    let received = receiver.wait_for(21, WAIT).await;
    assert_eq!(
        received.last().unwrap().body["data"]["after"]["name"],
        "good",
        "the promoted version drops what it dropped as a shadow"
    );
}

/// A Kubernetes ConfigMap or projected volume updates its folder the way the kubelet's atomic writer
/// does: the files are symlinks through `..data` to a timestamped folder, and an update writes a new
/// timestamped folder, points `..data_tmp` at it and renames that over `..data`.
#[tokio::test]
async fn a_configmap_style_update_through_a_renamed_symlink_is_picked_up() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let publish = |generation: &str, mode: &str| {
        let folder = root.join(generation);
        std::fs::create_dir(&folder).unwrap();
        std::fs::copy(component("test-chaos-enricher"), folder.join("tagger.wasm")).unwrap();
        std::fs::write(
            folder.join("tagger.toml"),
            format!("[config]\nmode = \"{mode}\"\n"),
        )
        .unwrap();
        std::os::unix::fs::symlink(generation, root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    };
    publish("..2026_12_01_10_00_00.1", "label");
    for file in ["tagger.wasm", "tagger.toml"] {
        std::os::unix::fs::symlink(format!("..data/{file}"), root.join(file)).unwrap();
    }
    let app = TestApp::start_with(|c| {
        c.plugins.dir = root.to_path_buf();
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
    })
    .await;
    let first = app.get_json("/v1/plugins").await;
    assert_eq!(first["items"][0]["name"], "tagger", "{first:#}");

    publish("..2026_12_01_10_05_00.2", "pass");
    let updated = next_pipeline(&app, first["pipeline"].as_str().unwrap()).await;
    assert_eq!(updated["items"][0]["state"], "active");
    app.create(&plant("after the update")).await;
    let received = receiver.wait_for(1, WAIT).await;
    assert!(received[0].body["data"]["labels"].get("chaos").is_none());
    assert_eq!(received[0].body["pipeline"], updated["pipeline"]);
}
