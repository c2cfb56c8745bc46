//! `/v1/deliveries`: the outbox by status, dead letters first of all. A sink's dead letter is a
//! delivery that failed `max_attempts` times; a plugin's is an event a plugin failed on under
//! `on_error = "dead-letter"` (no sink; `plugin` and `last_error` say who and why). Retrying the
//! first puts it back in its sink's queue; retrying the second runs the event through the current
//! pipeline again.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::extract::{Path, Query};
use super::paging::{Page, limit};
use super::{AppState, Problem};
use crate::store::{DeliveryRecord, DeliveryStatus, Replay};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `dead` (the default), `pending` or `delivered`.
    status: Option<String>,
    sink: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

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
#[derive(Debug, Serialize)]
pub struct Replayed {
    id: i64,
    /// `requeued` (a sink's dead letter) or `reprocessed` (a plugin's).
    replay: &'static str,
}

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
