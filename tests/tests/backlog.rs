//! A large backlog drains with bounded memory. Alone in its test binary, so the process's peak
//! resident memory is this test's: the service holds one round of deliveries per sink at a time,
//! however many wait in the outbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use plant_monitor_tests::{TestApp, sink};
use reqwest::Method;

const BACKLOG: usize = 20_000;

/// A receiver that only counts what it accepts (the recording one would hold every event in memory),
/// answering 410 to the first request.
async fn counting_receiver() -> (String, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/out", listener.local_addr().unwrap());
    let counter = accepted.clone();
    let app = axum::Router::new().fallback(move || {
        let (accepted, requests) = (counter.clone(), requests.clone());
        async move {
            if requests.fetch_add(1, Ordering::Relaxed) == 0 {
                return StatusCode::GONE;
            }
            accepted.fetch_add(1, Ordering::Relaxed);
            StatusCode::NO_CONTENT
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, accepted)
}

/// The process's peak resident set size so far, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_pending_deliveries_drains_with_bounded_memory() {
    let (url, accepted) = counting_receiver().await;
    // A receiver that is gone queues everything (nothing is dropped) until the sink is enabled.
    let app = TestApp::start_with(|c| {
        c.sinks.insert("out".into(), sink(&url));
    })
    .await;
    let pool = app.sql().await;
    sqlx::query(
        "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) VALUES ('first', 'first', 'north', 'wind', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.get_json("/v1/sinks").await["items"][0]["state"] != "disabled" {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut tx = pool.begin().await.unwrap();
    for n in 1..BACKLOG {
        sqlx::query(
            "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) VALUES (?1, ?1, 'north', 'wind', 1)",
        )
        .bind(format!("plant-{n}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while app.get_json("/v1/sinks").await["items"][0]["pending"] != BACKLOG {
        assert!(
            Instant::now() < deadline,
            "the feed did not queue the backlog"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let queued = peak_rss_kib();

    let enabled = app.call(Method::POST, "/v1/sinks/out/enable").await;
    assert_eq!(enabled.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(120);
    while accepted.load(Ordering::Relaxed) < BACKLOG {
        assert!(Instant::now() < deadline, "the backlog did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = peak_rss_kib();
    eprintln!(
        "{BACKLOG} pending deliveries: peak RSS {} MiB queued, {} MiB after draining",
        queued / 1024,
        drained / 1024
    );
    assert!(
        drained < queued + 64 * 1024,
        "draining grew the peak from {queued} KiB to {drained} KiB"
    );
}
