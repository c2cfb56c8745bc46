//! `GET /v1/events/stream`: the journal as it happens, as Server-Sent Events, read from the database
//! through the process's one journal follower ([`crate::tail`]), so every replica serves it alike.
//!
//! Each entry is sent as a `change` event whose `id` is its `seq`, in `seq` order, and, if it was not
//! yet processed then, an `outcome` event follows once the feed has processed it. An outcome event
//! carries no `id`: a client's last event id (which `EventSource` sends back as `Last-Event-ID` when it
//! reconnects) is thus always the `seq` of the last entry it got, and resuming after it sends every
//! later entry once, as it is by then: with its outcome if it has one. What resuming cannot repeat
//! is an outcome event for an entry the client already got unprocessed; a client that must know
//! reads that entry again from `/v1/changes`.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;

use super::AppState;
use super::extract::Query;
use super::openapi::StreamEvent;
use super::plants::filter_word;
use super::problem::Problem;
use super::serve::HangUp;
use crate::domain::ChangeKind;
use crate::tail::{Filter, Item, TailError};

/// How long an idle stream goes before a `: keep-alive` comment, so that proxies and load balancers
/// do not take it for dead (their idle timeouts are commonly 30 to 60 s).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The header a reconnecting `EventSource` sends.
const LAST_EVENT_ID: &str = "last-event-id";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Only entries of this region.
    #[param(pattern = "^[^\\u0000]*$")]
    region: Option<String>,
    /// Only entries of this kind.
    #[param(value_type = Option<ChangeKind>)]
    kind: Option<String>,
    /// Only entries of this plant.
    #[param(pattern = "^[^\\u0000]*$")]
    plant_id: Option<String>,
    /// Start after this `seq`, for clients that cannot send `Last-Event-ID`; the header wins when
    /// both are sent (a reconnecting `EventSource` sends it with the URL it started with).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    after: Option<u64>,
}

/// Journal entries as they are written, and then their outcomes, as Server-Sent Events.
#[utoipa::path(
    get, path = "/v1/events/stream", tag = "journal",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<u64>, Header, nullable = false, minimum = 0, maximum = 9_223_372_036_854_775_807_u64, description = "Start after this `seq`: the `id` of the last event received, which a reconnecting `EventSource` sends."),
    ),
    responses(
        (status = 200, description = "An endless stream of `change` events (`id`: the entry's `seq`; \
            `data`: the entry as `/v1/changes` shows it) and `outcome` events (no `id`; `data`: an entry \
            sent before without an outcome, now with it), and a `: keep-alive` comment every 15 s of \
            quiet. Without `Last-Event-ID` or `after`, it starts with the next entry written. A client \
            that falls 512 events behind is disconnected, and resumes with `Last-Event-ID`.",
            body = StreamEvent, content_type = "text/event-stream"),
        (status = 400, description = "A query parameter or `Last-Event-ID` is not valid."),
        (status = 503, description = "As many clients as `server.max_stream_clients` are listening already, or the service is stopping."),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    hang_up: Option<Extension<HangUp>>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<Response, Problem> {
    let filter = Filter {
        region: query.region,
        kind: (query.kind.as_deref())
            .map(|kind| filter_word("kind", kind, ChangeKind::parse, ChangeKind::ALL))
            .transpose()?,
        plant_id: query.plant_id,
    };
    let after = query.after.map(|after| seq("`after`", after)).transpose()?;
    let after = match headers.get(LAST_EVENT_ID) {
        Some(value) => Some(last_event_id(value.as_bytes())?),
        None => after,
    };
    let hang_up = hang_up.map(|Extension(hang_up)| hang_up);
    // Subscribed before the answer's head: what is written once the client has it is streamed.
    let reader = (state.tail)
        .open(filter, after, move || {
            if let Some(hang_up) = &hang_up {
                hang_up.now();
            }
        })
        .await
        .map_err(|error| match error {
            TailError::Store(error) => Problem::from(error),
            refused => Problem::unavailable(refused.to_string()),
        })?;
    // What may take long, catching up on the journal and then following it, happens in the body,
    // which is neither timed nor holding a request's turn.
    let events = reader.into_stream().map(event);
    Ok(Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(state.keep_alive)
                .text("keep-alive"),
        )
        .into_response())
}

/// A `Last-Event-ID` as this stream writes ids: a `seq`, in decimal digits. (An `EventSource` sends
/// none rather than an empty one.)
fn last_event_id(value: &[u8]) -> Result<u64, Problem> {
    let id = std::str::from_utf8(value)
        .ok()
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| {
            Problem::bad_request("`Last-Event-ID` must be the id of an event of this stream: a seq")
        })?;
    seq("`Last-Event-ID`", id)
}

/// A position to start after: a `seq`, which is a signed 64-bit integer in both databases.
fn seq(name: &str, value: u64) -> Result<u64, Problem> {
    i64::try_from(value)
        .map(|_| value)
        .map_err(|_| Problem::bad_request(format!("{name} must be at most {}", i64::MAX)))
}

fn event(item: Item) -> Result<Event, axum::Error> {
    match item {
        Item::Change(change) => Event::default()
            .event("change")
            .id(change.seq.to_string())
            .json_data(&*change),
        Item::Outcome(change) => Event::default().event("outcome").json_data(&*change),
    }
}
