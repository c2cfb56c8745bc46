//! The web console in headless Chromium (Debian's `chromium`, driven by npm's `playwright-core`; both
//! installed by `scripts/browser`), on each backend: `tests/console/console.test.mjs` loads the page and
//! checks it shows no console errors, follows the live stream within a second, creates plants through
//! its form, shows a 422 by its fields and a stale edit's 412, retries a dead letter by a click until it
//! arrives and another by a bulk retry after its dry-run count, and runs a backfill to 100 %. Screenshots of each state are written under the test's target
//! folder and their paths printed.

use std::path::PathBuf;
use std::process::Command;

use plant_monitor_tests::{Backend, Receiver, TestApp, sink, sink_with};
use serde_json::json;

plant_monitor_tests::on_every_backend! {
    the_console_works_in_a_real_browser,
}

fn toolchains() -> PathBuf {
    std::env::var_os("PLANT_MONITOR_TOOLCHAINS").map_or_else(
        || {
            PathBuf::from(std::env::var("HOME").expect("HOME"))
                .join(".cache/plant-monitor/toolchains")
        },
        PathBuf::from,
    )
}

async fn the_console_works_in_a_real_browser(backend: Backend) {
    let receiver = Receiver::start().await;
    let flaky = Receiver::start().await;
    // Its first two requests fail, and with one attempt allowed those deliveries are dead letters at
    // once: one for the retry button, one for the bulk retry.
    flaky.answer_next(&[500, 500]);
    let app = TestApp::start_on(backend, |c| {
        c.sinks.insert("out".into(), sink(&receiver.url("/out")));
        c.sinks.insert(
            "flaky".into(),
            sink_with(&flaky.url("/flaky"), json!({"max_attempts": 1})),
        );
    })
    .await;
    let playwright = toolchains().join("browser");
    assert!(
        playwright.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run scripts/browser"
    );
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("console-{backend:?}"));
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("console/console.test.mjs");
    let mut node = Command::new("node");
    node.arg(script)
        .env("BASE_URL", app.url(""))
        .env("SCREENSHOTS", &shots)
        .env("PLAYWRIGHT_DIR", &playwright)
        .env("FLAKY_SINK", "flaky");
    if let Some(chromium) = std::env::var_os("PLANT_MONITOR_CHROMIUM") {
        node.env("CHROMIUM", chromium);
    }
    // Blocking, off the runtime that serves the page.
    let output = tokio::task::spawn_blocking(move || node.output())
        .await
        .expect("joined")
        .expect("node runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{log}screenshots: {}", shots.display());
    assert!(output.status.success(), "the browser test failed:\n{log}");
    assert!(
        flaky.accepted().len() >= 3,
        "the retried dead letters and the backfill arrived"
    );
}
