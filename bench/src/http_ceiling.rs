//! The delivery ceiling: how fast the host's HTTP client, configured as a sink configures it (see
//! host/src/sinks/http.rs), POSTs one event after another to the minimal receiver the end-to-end
//! benchmark uses, on the same loopback. No database, no plugins, no outbox: only HTTP.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use plant_monitor::config::SinkConfig;

use crate::latency::Percentiles;

/// Requests per second and their round trips.
#[derive(Debug, Clone, Copy)]
pub struct Posts {
    pub in_flight: u32,
    pub per_second: f64,
    pub round_trip: Percentiles,
}

/// POSTs for `seconds` with `in_flight` requests outstanding at a time, as a sink with that
/// `max_in_flight` and `batch_max` 1 sends them.
pub async fn measure(in_flight: u32, seconds: Duration) -> anyhow::Result<Posts> {
    let receiver = crate::e2e::start_receiver(Arc::new(AtomicU64::new(0))).await?;
    let url = format!("http://{receiver}/ceiling");
    let sink: SinkConfig = serde_json::from_value(serde_json::json!({
        "url": url,
        "max_in_flight": in_flight,
    }))?;
    let client = reqwest::Client::builder()
        .default_headers(sink.headers.clone())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(sink.timeout)
        .pool_max_idle_per_host(sink.max_in_flight.get() as usize)
        .build()?;
    // What a sink sends for one event: the CloudEvent envelope around it (host/src/sinks/cloudevent.rs).
    let event = crate::plugin_calls::sample();
    let body = serde_json::to_vec(&serde_json::json!({
        "specversion": "1.0",
        "id": event.seq.to_string(),
        "source": format!("/plant-monitor/regions/{}", event.region),
        "type": "powerplant.updated",
        "subject": event.plant_id,
        "time": event.committed_at,
        "datacontenttype": "application/json",
        "data": event,
    }))?;
    let started = Instant::now();
    let deadline = started + seconds;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.spawn(async move {
            let mut round_trips = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                client
                    .post(&url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/cloudevents+json",
                    )
                    .body(body.clone())
                    .send()
                    .await?
                    .error_for_status()?;
                round_trips.push(sent.elapsed());
            }
            anyhow::Ok(round_trips)
        });
    }
    let mut round_trips = Vec::new();
    while let Some(done) = tasks.join_next().await {
        round_trips.extend(done??);
    }
    let elapsed = started.elapsed();
    Ok(Posts {
        in_flight,
        per_second: round_trips.len() as f64 / elapsed.as_secs_f64(),
        round_trip: Percentiles::of(round_trips)
            .ok_or_else(|| anyhow::anyhow!("no request was sent"))?,
    })
}
