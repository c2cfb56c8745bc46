//! The README's curl walk-through, run exactly as written (only the address differs) against the real
//! binary, so the documentation cannot drift from the product.

use std::process::Command;

use plant_monitor_tests::Server;

const README: &str = include_str!("../../README.md");

fn walkthrough() -> &'static str {
    let start = README
        .find("<!-- walkthrough:start -->")
        .expect("start marker");
    let end = README.find("<!-- walkthrough:end -->").expect("end marker");
    let block = &README[start..end];
    let code = block.split("```sh\n").nth(1).expect("a sh block");
    code.split("```").next().expect("closed block")
}

#[test]
fn the_readme_walkthrough_works_as_written() {
    let script = walkthrough();
    assert!(
        script.starts_with("API=http://127.0.0.1:8080\n"),
        "the walk-through sets API first"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["serve"]);
    let script = script.replacen("127.0.0.1:8080", &server.addr, 1);
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let id = lines[0].strip_prefix("created ").expect("created line");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert!(
        lines[1].contains("\"version\":2") && lines[1].contains("5120.5"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "412");
    assert!(
        lines[3].contains(id),
        "the list shows the plant: {}",
        lines[3]
    );
    assert!(lines[4].contains("\"kind\":\"created\"") && lines[4].contains("\"kind\":\"updated\""));
    assert_eq!(lines[5], "204");
    assert!(lines[6].contains("\"kind\":\"deleted\""), "{}", lines[6]);
}
