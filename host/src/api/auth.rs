//! The optional bearer token: when `server.api_token` is set, every request that may change something
//! (any method but GET and HEAD) under `/v1` must carry it. Reads stay open for dashboards and probes.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::problem::Problem;

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = state.api_token.as_deref() else {
        return next.run(request).await;
    };
    let guarded = request.uri().path().starts_with("/v1")
        && !matches!(*request.method(), Method::GET | Method::HEAD);
    if !guarded {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(presented) if constant_time_eq(presented.as_bytes(), token.as_bytes()) => {
            next.run(request).await
        }
        _ => Problem::unauthorized().into_response(),
    }
}

/// Compares without stopping at the first difference, so response timing does not reveal the prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
