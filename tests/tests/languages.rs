//! Plugins in every language: the same plugin written in each runs through the real host on the
//! same events and must answer exactly as the Rust example does, and `plugin new` makes a project in
//! each language and role that builds, fits the host and runs. Components other than Rust's are
//! built by `plugins/build-languages`, which installs the toolchains it needs and caches each
//! component by the hash of its sources, so a warm run builds nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use plant_monitor::config::PluginsConfig;
use plant_monitor::domain::Event;
use plant_monitor::plugins::{self, CallError, Manifest, Plugin, Runtime};
use plant_monitor_tests::{
    PluginDir, Receiver, TestApp, WAIT, binary, component, eventually, plant_monitor, repo, sink,
};
use serde_json::{Value, json};

/// Every language `plugin new` has a template for, as `plugins/LANG/` and `--lang` spell it.
const LANGUAGES: [&str; 6] = ["rust", "c", "js", "python", "go", "zig"];

/// Runs `plugins/build-languages` with `args`, with this checkout's binary for the C, Go and Zig
/// builds.
fn build_languages(args: &[&str]) {
    let status = Command::new(repo().join("plugins/build-languages"))
        .args(args)
        .env("PLANT_MONITOR", binary())
        .current_dir(repo())
        .status()
        .expect("plugins/build-languages runs");
    assert!(status.success(), "plugins/build-languages {args:?} failed");
}

/// Builds every language's plugins once per test process; returns plugins/dist-lang.
fn built_languages() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        build_languages(&[]);
        repo().join("plugins/dist-lang")
    })
}

/// The builds of the example `name` in every language that has one, Rust first.
fn builds_of(name: &str) -> Vec<(String, PathBuf)> {
    let mut builds = vec![("rust".to_owned(), component(name))];
    for lang in &LANGUAGES[1..] {
        let file = built_languages().join(lang).join(format!("{name}.wasm"));
        if file.exists() {
            builds.push(((*lang).to_owned(), file));
        }
    }
    builds
}

/// A plant image as the journal holds it.
fn image(
    id: &str,
    name: &str,
    fuel: &str,
    capacity: f64,
    output: Option<f64>,
    version: u64,
) -> Value {
    json!({
        "id": id, "name": name, "region": "eu-north", "fuel": fuel, "capacity_mw": capacity,
        "output_mw": output, "status": "operational", "latitude": 59.33, "longitude": 18.06,
        "attributes": {"operator": "Vattenfall"}, "version": version,
        "created_at": "2026-11-22T10:00:00.000Z", "updated_at": "2026-11-22T10:00:01.123Z"
    })
}

/// One event of each kind and shape a plugin meets: creates, updates, deletes and snapshots; plants
/// over capacity, in range, out of range and without a reading; missing optionals; unicode names;
/// hundreds of attributes; labels an earlier enricher set, including the one these plugins own.
fn events() -> Vec<Event> {
    let mut events = Vec::new();
    let mut seq = 0;
    let mut push = |kind: &str, before: Option<Value>, after: Option<Value>, labels: Value| {
        seq += 1;
        let id = after.as_ref().or(before.as_ref()).expect("an image")["id"].clone();
        let event = json!({
            "seq": seq, "kind": kind, "plant_id": id, "region": "eu-north",
            "before": before, "after": after,
            "changed_fields": if kind == "updated" { json!(["output_mw"]) } else { json!([]) },
            "committed_at": "2026-11-22T10:00:01.123Z", "labels": labels,
        });
        events.push(serde_json::from_value(event).expect("an event"));
    };
    let fuels = [
        "solar",
        "wind",
        "hydro",
        "nuclear",
        "coal",
        "gas",
        "oil",
        "biomass",
        "geothermal",
        "storage",
        "other",
    ];
    for (i, fuel) in fuels.iter().enumerate() {
        let capacity = [0.0, 0.004, 49.9, 50.0, 1386.0, 6809.0][i % 6];
        for output in [
            None,
            Some(-3.0),
            Some(0.0),
            Some(capacity),
            Some(capacity + 0.5),
            Some(5000.0),
        ] {
            let id = format!(
                "p-{i}-{}",
                output.map_or("none".to_owned(), |o| o.to_string())
            );
            let after = image(&id, &format!("Plant {i}"), fuel, capacity, output, 2);
            push("created", None, Some(after.clone()), json!({}));
            push("snapshot", None, Some(after.clone()), json!({}));
            let before = image(&id, &format!("Plant {i}"), fuel, capacity, Some(1.0), 1);
            push(
                "updated",
                Some(before),
                Some(after.clone()),
                json!({"region_owner": "north"}),
            );
            push("deleted", Some(after), None, json!({}));
        }
    }
    let mut bare = image(
        "bare",
        "Ünïcödé 発電所 ⚡ 🌬️",
        "wind",
        100.0,
        Some(150.0),
        1,
    );
    bare["latitude"] = Value::Null;
    bare["longitude"] = Value::Null;
    bare["attributes"] = json!({});
    push(
        "created",
        None,
        Some(bare.clone()),
        json!({"alert": "stale", "zone": "Ω"}),
    );
    let mut crowded = image("crowded", "Crowded", "gas", 10.0, Some(20.0), 7);
    crowded["attributes"] = (0..300)
        .map(|n| (format!("key-{n:03}"), json!(format!("välue {n} ✓"))))
        .collect::<serde_json::Map<_, _>>()
        .into();
    push(
        "updated",
        Some(bare),
        Some(crowded.clone()),
        json!({"alert": "over-capacity"}),
    );
    push(
        "snapshot",
        None,
        Some(crowded),
        json!({"a": "1", "b": "2", "c": "3"}),
    );
    events
}

/// What a plugin answered to one event, comparable across languages.
fn answer(plugin: &Plugin, event: &Event) -> Result<Value, String> {
    let outcome = if plugin.roles.contains(&plugins::Role::Filter) {
        plugin.keep(event).map(|keep| json!(keep))
    } else if plugin.roles.contains(&plugins::Role::Enrich) {
        plugin
            .enrich(event)
            .map(|event| serde_json::to_value(event).expect("JSON"))
    } else {
        plugin.route(event).map(|sinks| json!(sinks))
    };
    outcome.map_err(|error| match error {
        CallError::Returned(reason) => reason,
        other => panic!("a trap, not an answer: {other}"),
    })
}

fn load(runtime: &Runtime, file: &Path, config: &[(&str, &str)]) -> Plugin {
    let mut manifest = Manifest::beside(file).expect("the manifest parses");
    manifest.config.extend(
        config
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    // A cache kept between runs: JavaScript and Python components take 10–25 s to compile.
    let cache = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache/plant-monitor/test-plugin-cache"))
        .expect("HOME is set");
    plugins::load_file(runtime, file, &cache, Some(manifest))
        .unwrap_or_else(|error| panic!("{} does not load: {error}", file.display()))
}

/// Runs every build of plugin `name` on every event under each `[config]` variant and asserts
/// that each language answers what Rust answers: the same output, or an error where Rust errs.
fn every_language_answers_as_rust_does(
    name: &str,
    variants: &[&[(&str, &str)]],
    min_languages: usize,
) {
    let builds = builds_of(name);
    assert!(
        builds.len() >= min_languages,
        "{name} is built in only {:?}",
        builds.iter().map(|(lang, _)| lang).collect::<Vec<_>>()
    );
    // Every call errs under a bad `[config]`: the breaker must not quarantine the plugin for it.
    let config = PluginsConfig {
        quarantine_failures: 0,
        ..PluginsConfig::default()
    };
    let runtime = Runtime::new(&config).expect("a runtime");
    let events = events();
    for config in variants {
        let rust = load(&runtime, &builds[0].1, config);
        let expected: Vec<_> = events.iter().map(|event| answer(&rust, event)).collect();
        for (lang, file) in &builds[1..] {
            let plugin = load(&runtime, file, config);
            for (event, expected) in events.iter().zip(&expected) {
                let got = answer(&plugin, event);
                match (expected, &got) {
                    (Ok(expected), Ok(got)) => assert_eq!(
                        got, expected,
                        "{lang} {name} with {config:?} on event {}",
                        event.seq
                    ),
                    (Err(_), Err(_)) => {}
                    _ => panic!(
                        "{lang} {name} with {config:?} on event {}: Rust answered {expected:?}, {lang} {got:?}",
                        event.seq
                    ),
                }
            }
        }
    }
}

#[test]
fn output_alert_enricher_answers_alike_in_every_language() {
    every_language_answers_as_rust_does(
        "output-alert-enricher",
        &[
            &[],
            &[("min_output_mw", " 50 "), ("max_output_mw", "1e3")],
            &[("min_output_mw", "-3.5"), ("max_output_mw", "5000")],
            &[("min_output_mw", "abc")],
            &[("max_output_mw", "")],
            &[("max_output_mw", "0x10")],
            &[("max_output_mw", "1,5")],
            &[("min_output_mw", "inf")],
        ],
        LANGUAGES.len(),
    );
}

#[test]
fn min_capacity_filter_answers_alike_in_every_language_that_has_it() {
    every_language_answers_as_rust_does(
        "min-capacity-filter",
        &[
            &[],
            &[("min_capacity_mw", "0")],
            &[("min_capacity_mw", "1386")],
            &[("min_capacity_mw", "lots")],
        ],
        3,
    );
}

#[test]
fn fuel_router_answers_alike_in_every_language_that_has_it() {
    every_language_answers_as_rust_does("fuel-router", &[&[]], 3);
}

fn succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn plugin_new_makes_a_project_per_language_and_role_that_builds_fits_and_runs() {
    // The Rust examples' shared target folder, where wit-bindgen is already built.
    component("fuel-router");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("plugins");
    let dir = tempfile::tempdir().unwrap();
    for lang in LANGUAGES {
        for (role, expected) in [
            ("filter", json!({"filter": {"keep": true}})),
            ("enrich", json!("large")),
            ("route", json!({"route": {"sinks": ["green"]}})),
        ] {
            let name = format!("{lang}-{role}");
            let made = plant_monitor(dir.path())
                .args(["plugin", "new", &name, "--lang", lang, "--role", role])
                .output()
                .unwrap();
            succeeded(&made);
            let project = dir.path().join(&name);
            if lang == "rust" {
                let built = Command::new(project.join("build.sh"))
                    .arg("--quiet")
                    .env("CARGO_TARGET_DIR", &target)
                    .output()
                    .unwrap();
                succeeded(&built);
            } else {
                build_languages(&["--project", lang, project.to_str().expect("UTF-8 path")]);
            }
            let checked = plant_monitor(&project)
                .args(["plugin", "check", &format!("{name}.wasm")])
                .output()
                .unwrap();
            succeeded(&checked);
            let ran = plant_monitor(&project)
                .args([
                    "plugin",
                    "run",
                    &format!("{name}.wasm"),
                    "--event",
                    "sample-event.json",
                ])
                .output()
                .unwrap();
            succeeded(&ran);
            let answer: Value = serde_json::from_slice(&ran.stdout).unwrap();
            if role == "enrich" {
                assert_eq!(
                    answer["enrich"]["event"]["labels"]["size"], expected,
                    "{lang}: {answer}"
                );
            } else {
                assert_eq!(answer, expected, "{lang}");
            }
        }
    }

    let again = plant_monitor(dir.path())
        .args(["plugin", "new", "c-filter", "--lang", "c"])
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing folder is refused"
    );
    let listed = plant_monitor(dir.path())
        .args(["plugin", "new", "--list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&listed.stdout);
    for lang in LANGUAGES {
        assert!(
            list.lines().any(|l| l.starts_with(&format!("{lang} "))
                && l.contains(" template ")
                && l.contains("installed (")),
            "{lang} has a template and its toolchain is installed:\n{list}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_compile_shows_as_compiling_and_holds_up_no_other_plugin_and_no_event() {
    let javascript = built_languages().join("js/output-alert-enricher.wasm");
    let receiver = Receiver::start().await;
    let plugins = PluginDir::default();
    let app = TestApp::start_with(|c| {
        c.plugins.dir = plugins.path().to_path_buf();
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
    })
    .await;
    // The test's own, empty compile cache: the 12 MB JavaScript component takes seconds to compile.
    std::fs::copy(&javascript, plugins.path().join("alerts.wasm")).expect("copied");
    let compiling = app
        .wait_for_json("/v1/plugins", |list| {
            list["compiling"].as_array().is_some_and(|c| !c.is_empty())
        })
        .await;
    assert_eq!(compiling["compiling"][0]["name"], "alerts", "{compiling}");
    assert_eq!(
        compiling["compiling"][0]["state"], "compiling",
        "{compiling}"
    );

    // Meanwhile a Rust plugin loads, and events flow through it.
    std::fs::copy(
        component("test-chaos-enricher"),
        plugins.path().join("tagger.wasm"),
    )
    .expect("copied");
    std::fs::write(
        plugins.path().join("tagger.toml"),
        "[config]\nmode = \"label\"\n",
    )
    .expect("written");
    let list = app
        .wait_for_json("/v1/plugins", |list| {
            list["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|p| p["name"] == "tagger"))
        })
        .await;
    assert_eq!(
        list["compiling"][0]["name"], "alerts",
        "still compiling: {list}"
    );
    let created = app.create(&plant_monitor_tests::plant("Over")).await;
    let delivered = receiver.wait_for(1, WAIT).await;
    assert_eq!(delivered[0].body["data"]["plant_id"], created["id"]);
    assert_eq!(delivered[0].body["data"]["labels"]["chaos"], "seen");
    let still = app.get_json("/v1/plugins").await;
    assert_eq!(
        still["compiling"][0]["name"], "alerts",
        "the event did not wait for the compile: {still}"
    );

    // Compiling 12 MB takes tens of seconds on two cores busy with the other tests.
    let done = eventually(Duration::from_secs(300), || async {
        let list = app.get_json("/v1/plugins").await;
        match list["items"].as_array() {
            Some(items) if items.iter().any(|p| p["name"] == "alerts") => Ok(list),
            _ => Err(format!("alerts never loaded: {list}")),
        }
    })
    .await;
    assert_eq!(done["compiling"], json!([]), "{done}");
    app.stop().await;
}
