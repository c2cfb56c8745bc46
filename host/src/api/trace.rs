//! The trace a write joins: a request's W3C `traceparent` makes the write a child span of the caller's,
//! recorded with the change it causes and sent on every sink request for it; without a valid one the
//! write starts a new trace.

use axum::http::HeaderMap;

use crate::domain::TraceParent;

/// The request header, as the recommendation names it.
const TRACEPARENT: &str = "traceparent";

/// The span of the write a request makes.
pub fn of_write(headers: &HeaderMap) -> TraceParent {
    headers
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceParent::parse)
        .map_or_else(TraceParent::root, |parent| parent.child())
}
