//! The plugin author's tools and the development receiver, run as the real binary.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use plant_monitor_tests::{Server, component, plant_monitor};
use serde_json::{Value, json};

/// Fails the test with the command's stderr unless it exited 0.
fn succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

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
        succeeded(&output);
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
    succeeded(&output);
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

/// A `sink-echo` process with `args`, its address, and its stdout.
fn sink_echo(dir: &std::path::Path, args: &[&str]) -> (std::process::Child, String) {
    let mut child = plant_monitor(dir)
        .args(["sink-echo", "--listen", "127.0.0.1:0"])
        .args(args)
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
    (child, addr)
}

/// The CloudEvent every sink-echo test sends.
fn cloud_event() -> String {
    json!({"specversion": "1.0", "id": "7", "type": "powerplant.updated", "subject": "p1",
                      "source": "/plant-monitor/regions/us-west", "data": event()})
    .to_string()
}

/// A Standard Webhooks secret and the signer of it.
fn secret_and_signer() -> (&'static str, plant_monitor::sinks::signing::Signer) {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let signer =
        plant_monitor::sinks::signing::Signer::new(&[secret.to_owned()], |_| None).unwrap();
    (secret, signer)
}

fn post_event(addr: &str, headers: &[(&str, String)]) -> (reqwest::blocking::Response, String) {
    let body = cloud_event();
    let mut request = reqwest::blocking::Client::new()
        .post(format!("http://{addr}/grid"))
        .header("content-type", "application/cloudevents+json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    (request.body(body.clone()).send().unwrap(), body)
}

fn first_line(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    line.trim_end().to_owned()
}

#[test]
fn sink_echo_prints_one_readable_line_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = sink_echo(dir.path(), &[]);
    let (response, _) = post_event(&addr, &[]);
    assert_eq!(response.status(), 204);
    assert_eq!(
        first_line(&mut child),
        "/grid #7 powerplant.updated us-west p1 \"Four Corners\" changed=output_mw"
    );
}

#[test]
fn sink_echo_verifies_signatures_with_its_secret() {
    let (secret, signer) = secret_and_signer();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = sink_echo(dir.path(), &["--secret", secret]);
    let body = cloud_event();
    let now = unix_now();
    let signature = signer.sign("7", now, body.as_bytes());
    let signed = [
        ("webhook-id", "7".to_owned()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", signature),
    ];
    let (response, _) = post_event(&addr, &signed);
    assert_eq!(response.status(), 204);
    assert!(first_line(&mut child).ends_with(" signature=valid"));

    let (mut child, addr) = sink_echo(dir.path(), &["--secret", secret]);
    let mut forged = signed.clone();
    forged[1].1 = (now + 1).to_string();
    let (response, _) = post_event(&addr, &forged);
    assert_eq!(response.status(), 401);
    assert!(first_line(&mut child).ends_with(" signature=invalid"));
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A signed request replayed later, or one that asks for thousands of signature checks, is refused.
#[test]
fn sink_echo_refuses_stale_signatures_and_checks_at_most_eight() {
    let (secret, signer) = secret_and_signer();
    let dir = tempfile::tempdir().unwrap();
    let body = cloud_event();
    let signed = |timestamp: i64, signature: String| {
        [
            ("webhook-id", "7".to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ]
    };
    let (mut child, addr) = sink_echo(dir.path(), &["--secret", secret]);
    let stale = unix_now() - 600;
    let (response, _) = post_event(
        &addr,
        &signed(stale, signer.sign("7", stale, body.as_bytes())),
    );
    assert_eq!(response.status(), 401);
    assert!(first_line(&mut child).ends_with(" signature=stale"));

    let (mut child, addr) = sink_echo(dir.path(), &["--secret", secret]);
    let now = unix_now();
    let wrong = ["v1,AAAA"; 8].join(" ");
    let ninth = format!("{wrong} {}", signer.sign("7", now, body.as_bytes()));
    let (response, _) = post_event(&addr, &signed(now, ninth));
    assert_eq!(response.status(), 401, "the ninth signature is not checked");
    assert!(first_line(&mut child).ends_with(" signature=invalid"));
}

/// A body over 8 MiB is refused whole, and one that trickles in is given up after 10 s.
#[test]
fn sink_echo_bounds_what_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = sink_echo(dir.path(), &[]);
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{addr}/big"))
        .header("content-type", "application/cloudevents+json")
        .body(vec![b' '; 9 << 20])
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);

    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        .unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = [0u8; 64];
    let read = std::io::Read::read(&mut stream, &mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sink_echo_can_answer_with_a_status_and_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = sink_echo(
        dir.path(),
        &["--status", "503", "--retry-after", "2", "--delay", "100ms"],
    );
    let started = std::time::Instant::now();
    let (response, _) = post_event(&addr, &[]);
    assert!(started.elapsed() >= std::time::Duration::from_millis(100));
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(
        first_line(&mut child),
        "/grid answered 503 Service Unavailable"
    );

    let (mut child, addr) = sink_echo(dir.path(), &["--fail-rate", "1"]);
    assert_eq!(post_event(&addr, &[]).0.status(), 500);
    child.kill().unwrap();
    child.wait().unwrap();
    let bad = plant_monitor(dir.path())
        .args(["sink-echo", "--listen", "127.0.0.1:0", "--fail-rate", "2"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}

/// `plugin check` caches what it compiles in this user's own folder, made for this user alone, not in
/// the shared temporary folder where another user could plant code.
#[test]
fn the_plugin_tools_cache_in_a_folder_of_this_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let output = plant_monitor(dir.path())
        .args(["plugin", "check"])
        .arg(component("fuel-router"))
        .env("HOME", home.path())
        .env_remove("XDG_CACHE_HOME")
        .output()
        .unwrap();
    assert!(output.status.success());
    let cache = home.path().join(".cache/plant-monitor/plugin-cache");
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let key = std::fs::metadata(cache.join("cache.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        2,
        "the key and one component"
    );
}

/// A service on an SQLite file in `dir` with the output-alert-enricher in its plugin folder, where two
/// plants were written and processed: one over its capacity (labelled), one small. Returns the path
/// of its configuration file.
fn recorded_journal(dir: &std::path::Path) -> std::path::PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(
        component("output-alert-enricher"),
        plugins.join("output-alert-enricher.wasm"),
    )
    .unwrap();
    let config = dir.join("pm.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{dir}/pm.db\"\n[plugins]\ndir = \"{dir}/plugins\"\n\
             cache_dir = \"{dir}/cache\"\n",
            dir = dir.display()
        ),
    )
    .unwrap();
    let server = Server::start(dir, &["serve", "-c", "pm.toml"]);
    let client = reqwest::blocking::Client::new();
    for (name, capacity, output) in [("Over", 100.0, 150.0), ("Small", 10.0, 5.0)] {
        let created = client
            .post(format!("http://{}/v1/plants", server.addr))
            .json(&json!({"name": name, "region": "us-west", "fuel": "wind",
                          "capacity_mw": capacity, "output_mw": output}))
            .send()
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let journal: Value = server.get("/v1/changes").json().unwrap();
        let items = journal["items"].as_array().unwrap();
        if items.len() == 2 && items.iter().all(|e| !e["outcome"].is_null()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{journal}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    config
}

/// `plugin test` of the output-alert-enricher over `events`, with `extra` arguments.
fn plugin_test(
    dir: &std::path::Path,
    events: &std::path::Path,
    extra: &[&std::ffi::OsStr],
) -> std::process::Output {
    plant_monitor(dir)
        .args(["plugin", "test"])
        .arg(component("output-alert-enricher"))
        .arg(events)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn journal_export_gives_real_events_that_plugin_test_answers_and_checks_against_expected_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = recorded_journal(dir.path());
    let exported = plant_monitor(dir.path())
        .args(["journal", "export", "--last", "10", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    succeeded(&exported);
    let events = String::from_utf8(exported.stdout).unwrap();
    let names: Vec<Value> = (events.lines())
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["after"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("Over"), json!("Small")]);
    let events_file = dir.path().join("events.jsonl");
    std::fs::write(&events_file, &events).unwrap();

    let answered = plugin_test(dir.path(), &events_file, &[]);
    succeeded(&answered);
    let answers = String::from_utf8(answered.stdout).unwrap();
    let first: Value = serde_json::from_str(answers.lines().next().unwrap()).unwrap();
    assert_eq!(first["enrich"]["event"]["labels"]["alert"], "over-capacity");
    let expected = dir.path().join("expected.jsonl");
    std::fs::write(&expected, &answers).unwrap();
    let expect = ["--expect".as_ref(), expected.as_os_str()];
    let checked = plugin_test(dir.path(), &events_file, &expect);
    succeeded(&checked);

    std::fs::write(&expected, answers.replace("over-capacity", "fine")).unwrap();
    let wrong = plugin_test(dir.path(), &events_file, &expect);
    assert_eq!(wrong.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("line 1: seq 1: expected"), "{stderr}");
    assert!(stderr.contains("1 answers differ"), "{stderr}");
}

#[test]
fn a_dry_run_over_the_journal_prints_where_a_candidate_would_change_what_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let config = recorded_journal(dir.path());
    let dry = plant_monitor(dir.path())
        .args(["plugin", "run"])
        .arg(component("min-capacity-filter"))
        .args(["--journal", "10", "--config", "min_capacity_mw=50", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    succeeded(&dry);
    let lines: Vec<Value> = (String::from_utf8(dry.stdout).unwrap().lines())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "only the small plant changes: {lines:#?}");
    assert_eq!(lines[0]["seq"], 2);
    assert_eq!(lines[0]["recorded"]["result"], "unrouted");
    assert_eq!(lines[0]["with_candidate"]["result"], "filtered");
    assert_eq!(lines[0]["with_candidate"]["plugin"], "min-capacity-filter");
    let summary = String::from_utf8_lossy(&dry.stderr);
    assert!(
        summary.contains("2 events: 1 as recorded, 1 different"),
        "{summary}"
    );
}
