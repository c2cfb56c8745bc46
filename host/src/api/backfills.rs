//! `/v1/backfills`: start a backfill (a `snapshot` event again for every plant matching a filter,
//! delivered to chosen sinks only) and follow its progress. The backfill worker journals the entries a
//! batch at a time, and the feed runs them through the filters and enrichers like any other; `done`
//! counts those the feed has processed, so it reaches `total` when the last one is through.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::body::TypedBody;
use super::extract::{Path, Query};
use super::paging::{Page, limit};
use super::problem::FieldError;
use super::validate::REGION_PATTERN;
use super::{AppState, Problem};
use crate::domain::is_region;
use crate::store::{Backfill, BackfillFilter};

/// The most plant ids one backfill may name.
const MAX_IDS: usize = 1000;

/// A backfill to start.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBackfill {
    /// Which plants; `{}` is every plant.
    filter: BackfillFilter,
    /// The configured sinks to deliver to, by name, instead of where the routers would send the
    /// events.
    #[schema(min_items = 1)]
    sinks: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BackfillsQuery {
    /// Only backfills older than this id (the `next` of the page before).
    after: Option<i64>,
    /// How many backfills a page holds (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Starts a backfill: a `snapshot` event for every plant the filter matches, to the chosen sinks.
#[utoipa::path(
    post, path = "/v1/backfills", tag = "operations",
    request_body(content = NewBackfill, content_type = "application/json"),
    responses(
        (status = 201, description = "Started.", body = Backfill, headers(
            ("Location" = String, description = "The backfill's URL, to follow its progress."),
        )),
        (status = 400, description = "The body is not JSON."),
        (status = 413, description = "The body is larger than 1 MiB."),
        (status = 415, description = "The body is not sent as JSON."),
        (status = 422, description = "The body is not a valid backfill (no sink, a sink that is not configured, a word that is not a fuel or status, too many ids); `errors` names each field."),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    TypedBody(body): TypedBody<NewBackfill>,
) -> Result<Response, Problem> {
    let NewBackfill { filter, mut sinks } = body;
    let mut errors = Vec::new();
    if sinks.is_empty() {
        errors.push(FieldError::new("sinks", "name at least one sink"));
    }
    for (at, name) in sinks.iter().enumerate() {
        if !state.sinks.contains(name) {
            errors.push(FieldError::new(
                format!("sinks[{at}]"),
                format!("no sink is named {name:?}"),
            ));
        }
    }
    if let Some(region) = &filter.region
        && !is_region(region)
    {
        errors.push(FieldError::new(
            "filter.region",
            format!("must match {REGION_PATTERN}"),
        ));
    }
    if let Some(ids) = &filter.ids {
        if ids.len() > MAX_IDS {
            errors.push(FieldError::new(
                "filter.ids",
                format!("at most {MAX_IDS} ids"),
            ));
        }
        // No id holds U+0000, and PostgreSQL cannot store it.
        if let Some(at) = ids.iter().position(|id| id.contains('\0')) {
            errors.push(FieldError::new(
                format!("filter.ids[{at}]"),
                "holds U+0000, which no id does",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    sinks.sort();
    sinks.dedup();
    let backfill = state.store.create_backfill(&filter, &sinks).await?;
    state.backfills_due.send_replace(());
    let location = HeaderValue::from_str(&format!("/v1/backfills/{}", backfill.id))
        .map_err(|error| Problem::internal(&error))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(backfill),
    )
        .into_response())
}

/// One backfill and its progress.
#[utoipa::path(
    get, path = "/v1/backfills/{id}", tag = "operations",
    params(("id" = i64, Path, description = "The backfill's id.")),
    responses(
        (status = 200, description = "The backfill.", body = Backfill),
        (status = 400, description = "The id is not an integer."),
        (status = 404, description = "No backfill has this id."),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Backfill>, Problem> {
    state
        .store
        .get_backfill(id)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no backfill has id {id}")))
}

/// The backfills, newest first.
#[utoipa::path(
    get, path = "/v1/backfills", tag = "operations",
    params(BackfillsQuery),
    responses(
        (status = 200, description = "A page of backfills.", body = Page<Backfill, i64>),
        (status = 400, description = "A query parameter is not valid."),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<BackfillsQuery>,
) -> Result<Json<Page<Backfill, i64>>, Problem> {
    let limit = limit(query.limit)?;
    let backfills = state.store.list_backfills(query.after, limit + 1).await?;
    Ok(Json(Page::of(backfills, limit, |backfill| backfill.id)))
}
