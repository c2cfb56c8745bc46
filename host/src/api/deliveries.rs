//! `/v1/deliveries`: the outbox by status, dead letters first of all. A sink's dead letter is a
//! delivery that failed `max_attempts` times; a plugin's is an event a plugin failed on under
//! `on_error = "dead-letter"` (no sink; `plugin` and `last_error` say who and why). Retrying the
//! first puts it back in its sink's queue; retrying the second runs the event through the current
//! pipeline again. A bulk retry puts back every sink's dead letter matching a filter, after a dry run
//! has counted them if asked; plugins' dead letters are left to the retry of each, since rerunning
//! the pipeline is another thing than sending again.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::body::TypedBody;
use super::extract::{Path, Query};
use super::paging::{Page, limit};
use super::problem::FieldError;
use super::{AppState, Problem, rfc3339};
use crate::store::{DeadLetters, DeliveryRecord, DeliveryStatus, Replay};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Which deliveries: `dead` (the default), `pending` or `delivered`.
    #[param(value_type = Option<DeliveryStatus>)]
    status: Option<String>,
    /// Only this sink's deliveries.
    #[param(pattern = "^[^\\u0000]*$")]
    sink: Option<String>,
    /// Only deliveries after this id (the `next` of the page before).
    after: Option<i64>,
    /// How many deliveries a page holds (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The outbox by status, oldest first: dead letters unless `status` says otherwise.
#[utoipa::path(
    get, path = "/v1/deliveries", tag = "operations",
    params(DeliveriesQuery),
    responses(
        (status = 200, description = "A page of deliveries.", body = Page<DeliveryRecord, i64>),
        (status = 400, description = "A query parameter is not valid."),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<DeliveriesQuery>,
) -> Result<Json<Page<DeliveryRecord, i64>>, Problem> {
    let status = match query.status.as_deref() {
        None => DeliveryStatus::Dead,
        Some(word) => DeliveryStatus::parse(word).ok_or_else(|| {
            Problem::bad_request(format!(
                "`status` is one of {}",
                DeliveryStatus::ALL.join(", ")
            ))
        })?,
    };
    let limit = limit(query.limit)?;
    let deliveries = state
        .store
        .list_deliveries(
            status,
            query.sink.as_deref(),
            query.after.unwrap_or(0),
            limit + 1,
        )
        .await?;
    Ok(Json(Page::of(deliveries, limit, |delivery| delivery.id)))
}

/// What `POST /v1/deliveries/{id}/retry` did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Replayed {
    id: i64,
    /// `requeued` (a sink's dead letter) or `reprocessed` (a plugin's).
    #[schema(value_type = String, pattern = "^(requeued|reprocessed)$")]
    replay: &'static str,
}

/// Retries one dead letter: a sink's goes back to its queue, a plugin's through the current pipeline.
#[utoipa::path(
    post, path = "/v1/deliveries/{id}/retry", tag = "operations",
    params(("id" = i64, Path, description = "The delivery's id.")),
    responses(
        (status = 202, description = "Requeued or reprocessed.", body = Replayed),
        (status = 400, description = "The id is not an integer."),
        (status = 404, description = "No delivery has this id."),
        (status = 409, description = "The delivery is not a dead letter."),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<Replayed>), Problem> {
    let replay = state.store.retry_delivery(id).await?;
    let done = match replay {
        Replay::Requeued => "requeued",
        Replay::Reprocessed => "reprocessed",
        Replay::NotDead => {
            return Err(Problem::conflict(format!(
                "delivery {id} is not a dead letter"
            )));
        }
        Replay::NotFound => return Err(Problem::not_found(format!("no delivery has id {id}"))),
    };
    state.deliveries_due.send_replace(());
    Ok((StatusCode::ACCEPTED, Json(Replayed { id, replay: done })))
}

/// Which dead letters to put back: those of the sinks matching every field given.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterFilter {
    /// Only this configured sink's.
    #[schema(pattern = "^[^\\u0000]*$")]
    sink: Option<String>,
    /// Only this plant's.
    #[schema(pattern = "^[^\\u0000]*$")]
    plant_id: Option<String>,
    /// Only those created (when the feed wrote the delivery) at or after this time, RFC 3339.
    #[schema(format = DateTime)]
    from: Option<String>,
    /// Only those created before this time, RFC 3339.
    #[schema(format = DateTime)]
    to: Option<String>,
    /// Only those whose last error contains this text (case and all).
    #[schema(pattern = "^[^\\u0000]*$")]
    error: Option<String>,
    /// Only count them; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// What a dry run of `POST /v1/deliveries/retry` found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Matched {
    /// How many dead letters a retry would put back now.
    matched: u64,
}

/// What `POST /v1/deliveries/retry` did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkRetried {
    /// How many dead letters went back to pending.
    retried: u64,
}

/// Puts the sinks' dead letters matching a filter back in their queues, attempts reset; each plant's
/// go out in `seq` order. With `dry_run`, only counts them.
#[utoipa::path(
    post, path = "/v1/deliveries/retry", tag = "operations",
    request_body(content = DeadLetterFilter, content_type = "application/json"),
    responses(
        (status = 200, description = "A dry run: how many would be retried.", body = Matched),
        (status = 202, description = "Queued again.", body = BulkRetried),
        (status = 400, description = "The body is not JSON."),
        (status = 413, description = "The body is larger than 1 MiB."),
        (status = 415, description = "The body is not sent as JSON."),
        (status = 422, description = "The body is not a valid filter (a sink that is not configured, a time that is not RFC 3339); `errors` names each field."),
    )
)]
pub async fn retry_matching(
    State(state): State<AppState>,
    TypedBody(body): TypedBody<DeadLetterFilter>,
) -> Result<Response, Problem> {
    let mut errors = Vec::new();
    if let Some(sink) = &body.sink
        && !state.sinks.contains(sink)
    {
        errors.push(FieldError::new(
            "sink",
            format!("no sink is named {sink:?}"),
        ));
    }
    let mut time = |field: &str, text: Option<String>| {
        let read = text.as_deref().map(rfc3339::store_time);
        if read.as_ref().is_some_and(Option::is_none) {
            errors.push(FieldError::new(
                field,
                "must be an RFC 3339 date-time, such as 2026-11-22T10:00:00Z",
            ));
        }
        read.flatten()
    };
    let (from, to) = (time("from", body.from), time("to", body.to));
    // PostgreSQL text cannot hold U+0000, so nothing stored does.
    for (field, text) in [("plant_id", &body.plant_id), ("error", &body.error)] {
        if text.as_deref().is_some_and(|text| text.contains('\0')) {
            errors.push(FieldError::new(
                field,
                "holds U+0000, which nothing stored does",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let filter = DeadLetters {
        sink: body.sink,
        plant_id: body.plant_id,
        from,
        to,
        error: body.error,
    };
    if body.dry_run {
        let matched = state.store.count_dead(&filter).await?;
        return Ok(Json(Matched { matched }).into_response());
    }
    let retried = state.store.retry_dead(&filter).await?;
    state.deliveries_due.send_replace(());
    Ok((StatusCode::ACCEPTED, Json(BulkRetried { retried })).into_response())
}
