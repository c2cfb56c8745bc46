//! The plugin author's tools and the development receiver, run as the real binary.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use plant_monitor_tests::{component, plant_monitor};
use serde_json::{Value, json};

fn event() -> Value {
    let plant = json!({"id": "p1", "name": "Four Corners", "region": "us-west", "fuel": "coal",
        "capacity_mw": 1540.0, "output_mw": 1610.0, "status": "operational", "latitude": null,
        "longitude": null, "attributes": {}, "version": 2, "created_at": "2026-11-22T10:00:00.000Z",
        "updated_at": "2026-11-22T10:00:01.000Z"});
    json!({"seq": 7, "kind": "updated", "plant_id": "p1", "region": "us-west", "before": plant,
           "after": plant, "changed_fields": ["output_mw"], "committed_at": "2026-11-22T10:00:01.000Z",
           "labels": {}})
}

#[test]
fn plugin_check_names_the_roles_of_a_component_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    for (name, role) in [
        ("fuel-router", "route"),
        ("min-capacity-filter", "filter"),
        ("output-alert-enricher", "enrich"),
    ] {
        let output = plant_monitor(dir.path())
            .args(["plugin", "check"])
            .arg(component(name))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(&format!("roles: {role};")), "{stdout}");
    }
}

#[test]
fn plugin_check_refuses_what_does_not_fit_with_exit_1_and_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.wasm"), b"junk").unwrap();
    let output = plant_monitor(dir.path())
        .args(["plugin", "check", "junk.wasm"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("not a valid WebAssembly component"),
        "{stderr}"
    );
    let output = plant_monitor(dir.path())
        .args(["plugin", "check", "absent.wasm"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn plugin_run_prints_what_the_plugin_returned_as_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("event.json"), event().to_string()).unwrap();
    let run = |name: &str, extra: &[&str]| {
        plant_monitor(dir.path())
            .args(["plugin", "run"])
            .arg(component(name))
            .args(["--event", "event.json"])
            .args(extra)
            .output()
            .unwrap()
    };
    let output = run("output-alert-enricher", &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        answer["enrich"]["event"]["labels"],
        json!({"alert": "over-capacity"})
    );
    assert_eq!(answer["enrich"]["event"]["seq"], 7);

    let answer: Value = serde_json::from_slice(&run("fuel-router", &[]).stdout).unwrap();
    assert_eq!(answer, json!({"route": {"sinks": ["grid"]}}));

    let answer: Value = serde_json::from_slice(
        &run("min-capacity-filter", &["--config", "min_capacity_mw=2000"]).stdout,
    )
    .unwrap();
    assert_eq!(answer, json!({"filter": {"keep": false}}));

    let failed = run("min-capacity-filter", &["--config", "min_capacity_mw=lots"]);
    assert_eq!(failed.status.code(), Some(1));
    let answer: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert!(
        answer["filter"]["error"]
            .as_str()
            .unwrap()
            .contains("min_capacity_mw"),
        "{answer}"
    );

    std::fs::write(dir.path().join("event.json"), "{\"seq\": 1}").unwrap();
    assert_eq!(run("fuel-router", &[]).status.code(), Some(1));
}

#[test]
fn sink_echo_prints_one_readable_line_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = plant_monitor(dir.path())
        .args(["sink-echo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let addr = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split("local_addr=")
                .nth(1)
                .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        })
        .expect("sink-echo logs its address");
    let body = json!({"specversion": "1.0", "id": "7", "type": "powerplant.updated", "subject": "p1",
                      "source": "/plant-monitor/regions/us-west", "data": event()});
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{addr}/grid"))
        .header("content-type", "application/cloudevents+json")
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), 204);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        line.trim_end(),
        "/grid #7 powerplant.updated us-west p1 \"Four Corners\" changed=output_mw"
    );
}
