//! `GET /metrics`: the Prometheus text exposition. The gauges that describe the database (journal lag,
//! pending and dead deliveries, leases, the capture's slot, connections) and the sinks' health gates are read at each
//! scrape, so they are as fresh as the scrape; everything else was recorded as it happened. A region or
//! sink that no longer has lag or deliveries reads 0 rather than its last value.
//!
//! Every API request also passes [`count_request`], which records it by method, route template (never
//! the raw path, so ids cannot blow up the series) and status.

use std::collections::BTreeSet;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};
use tokio::sync::Mutex;

use super::{AppState, Problem};
use crate::lease::region_of;
use crate::telemetry::metrics::{
    CAPTURE_SLOT_LAG_BYTES, CAPTURE_SLOT_RETAINED_BYTES, DB_CONNECTIONS, DB_CONNECTIONS_IN_USE,
    HTTP_REQUEST_SECONDS, HTTP_REQUESTS, JOURNAL_LAG_ENTRIES, JOURNAL_LAG_SECONDS, LEASE_EPOCH,
    LEASE_HELD, SINK_DEAD, SINK_PENDING, SINK_WAITING, handle,
};

/// The exposition format's media type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Regions that had journal lag at an earlier scrape, to be set to 0 once they have none. Held for the
/// whole of a scrape: the gauges are the process's, so two scrapes at once (two scrapers, or two
/// services in one process, as the tests run them) would each render values the other was setting.
static LAGGING: Mutex<BTreeSet<String>> = Mutex::const_new(BTreeSet::new());

/// The Prometheus text exposition (the README lists every series).
#[utoipa::path(
    get, path = "/metrics", tag = "probes",
    responses(
        (status = 200, description = "The metrics.", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 503, description = "Another metrics recorder is installed in this process."),
    )
)]
pub async fn scrape(State(state): State<AppState>) -> Result<Response, Problem> {
    let Some(handle) = handle() else {
        return Err(Problem::unavailable(
            "another metrics recorder is installed in this process",
        ));
    };
    let mut lagging = LAGGING.lock().await;
    journal_lag(&state, &mut lagging).await?;
    sinks(&state).await?;
    leases(&state).await?;
    let capture = state.store.capture_status().await?;
    gauge!(CAPTURE_SLOT_RETAINED_BYTES).set(capture.retained_bytes.unwrap_or(0) as f64);
    gauge!(CAPTURE_SLOT_LAG_BYTES).set(capture.lag_bytes.unwrap_or(0) as f64);
    let connections = state.store.connections();
    gauge!(DB_CONNECTIONS).set(connections.open);
    gauge!(DB_CONNECTIONS_IN_USE).set(connections.open.saturating_sub(connections.idle));
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        handle.render(),
    )
        .into_response())
}

async fn journal_lag(state: &AppState, lagging: &mut BTreeSet<String>) -> Result<(), Problem> {
    let lags = state.store.journal_lag().await?;
    let now: BTreeSet<String> = lags.iter().map(|lag| lag.region.clone()).collect();
    for caught_up in lagging.difference(&now) {
        gauge!(JOURNAL_LAG_ENTRIES, "region" => caught_up.clone()).set(0.0);
        gauge!(JOURNAL_LAG_SECONDS, "region" => caught_up.clone()).set(0.0);
    }
    for lag in lags {
        gauge!(JOURNAL_LAG_ENTRIES, "region" => lag.region.clone()).set(lag.entries as f64);
        gauge!(JOURNAL_LAG_SECONDS, "region" => lag.region).set(lag.oldest_seconds);
    }
    *lagging = now;
    Ok(())
}

async fn sinks(state: &AppState) -> Result<(), Problem> {
    let mut stats: std::collections::BTreeMap<_, _> =
        state.store.sink_stats().await?.into_iter().collect();
    for sink in state.sinks.iter() {
        let figures = stats.remove(&sink.name).unwrap_or_default();
        gauge!(SINK_PENDING, "sink" => sink.name.clone()).set(figures.pending as f64);
        gauge!(SINK_DEAD, "sink" => sink.name.clone()).set(figures.dead as f64);
        let waiting = if sink.waiting().is_some() { 1.0 } else { 0.0 };
        gauge!(SINK_WAITING, "sink" => sink.name.clone()).set(waiting);
    }
    Ok(())
}

async fn leases(state: &AppState) -> Result<(), Problem> {
    for lease in state.store.leases().await? {
        let Some(region) = region_of(&lease.name) else {
            continue;
        };
        let ours = lease.held && lease.holder == *state.instance_id;
        gauge!(LEASE_HELD, "region" => region.to_owned()).set(if ours { 1.0 } else { 0.0 });
        gauge!(LEASE_EPOCH, "region" => region.to_owned()).set(lease.epoch as f64);
    }
    Ok(())
}

/// Records a request by method (an unknown one as `other`), route template and status, with its
/// duration: the time to its answer's head, which for the event stream is not how long its client
/// listened (that answer goes on after this has recorded it).
pub async fn count_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    histogram!(HTTP_REQUEST_SECONDS, "method" => method, "route" => route).record(elapsed);
    response
}

/// A standard method's name; any other is `other`, so a client cannot invent series.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}
