//! The optional bearer token. When `server.api_token` is set, every request under `/v1` that may change
//! something (any method but GET and HEAD) must carry it, and so must every read of operational data
//! (sinks, deliveries, leases, plugins, stats, backfills: receiver URLs, errors, topology and traffic
//! are an attacker's map). Plants and the journal, its live stream (`/v1/events/stream`) included,
//! stay readable for dashboards unless `server.protect_reads` is set; the probes `/healthz` and
//! `/readyz` always are.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::problem::Problem;

/// The resources whose reads need the token whenever there is one.
const OPERATIONAL: &[&str] = &[
    "/v1/sinks",
    "/v1/deliveries",
    "/v1/leases",
    "/v1/plugins",
    "/v1/stats",
    "/v1/backfills",
];

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = state.api_token.as_deref() else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    let operational = OPERATIONAL.iter().any(|resource| {
        path.strip_prefix(resource)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    let guarded = path.starts_with("/v1") && (!reading || operational || state.protect_reads);
    if !guarded {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer);
    match presented {
        Some(presented) if constant_time_eq(presented.as_bytes(), token.as_bytes()) => {
            next.run(request).await
        }
        _ => Problem::unauthorized().into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive (RFC 9110
/// §11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// Compares without stopping at the first difference, so response timing does not reveal the prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
