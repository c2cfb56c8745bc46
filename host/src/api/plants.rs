//! `/v1/plants`: create, read, list, replace, merge-patch and delete plants, with `ETag`/`If-Match`
//! concurrency control.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::body::JsonBody;
use super::extract::{Path, Query};
use super::openapi::{PlantInput, PlantPatch};
use super::paging::{Page, limit};
use super::preconditions::{IfMatch, etag, if_match};
use super::problem::Problem;
use super::{AppState, cursor, merge_patch, trace, validate};
use crate::domain::{Fuel, Plant, Status};
use crate::store::{PlantFilter, StoreError};

/// How often a PATCH without `If-Match` re-reads and retries when another writer got in between.
const PATCH_ATTEMPTS: usize = 5;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only plants in this region.
    #[param(pattern = "^[^\\u0000]*$")]
    region: Option<String>,
    /// Only plants of this fuel.
    #[param(value_type = Option<Fuel>)]
    fuel: Option<String>,
    /// Only plants in this status.
    #[param(value_type = Option<Status>)]
    status: Option<String>,
    /// How many plants a page holds (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next` of the page before.
    #[param(pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?$")]
    after: Option<String>,
}

/// Creates a plant; its id, version and timestamps are the server's.
#[utoipa::path(
    post, path = "/v1/plants", tag = "plants",
    params(
        ("traceparent" = Option<String>, Header, nullable = false, description = "A W3C trace context; the change and its deliveries join this trace."),
    ),
    request_body(content = PlantInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = Plant, headers(
            ("Location" = String, description = "The new plant's URL."),
            ("ETag" = String, description = "The plant's version, for `If-Match`."),
        )),
        (status = 400, description = "The body is not JSON."),
        (status = 413, description = "The body is larger than 1 MiB."),
        (status = 415, description = "The body is not sent as JSON."),
        (status = 422, description = "The body is not a valid plant; `errors` names each field."),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, Problem> {
    let draft = validate::draft(&body).map_err(Problem::validation)?;
    let trace = trace::of_write(&headers);
    let plant = state.store.create_plant(&draft, Some(&trace)).await?;
    let location = HeaderValue::from_str(&format!("/v1/plants/{}", plant.id))
        .map_err(|error| Problem::internal(&error))?;
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            (header::ETAG, etag(plant.version)),
        ],
        Json(plant),
    )
        .into_response())
}

/// One plant.
#[utoipa::path(
    get, path = "/v1/plants/{id}", tag = "plants",
    params(("id" = String, Path, pattern = "^[^\\u0000]*$", description = "The plant's id.")),
    responses(
        (status = 200, description = "The plant.", body = Plant, headers(
            ("ETag" = String, description = "The plant's version, for `If-Match`."),
        )),
        (status = 404, description = "No plant has this id."),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let plant = state
        .store
        .get_plant(&id)
        .await?
        .ok_or(StoreError::NotFound { id })?;
    Ok(with_etag(plant))
}

/// Plants in id order, a page at a time, optionally filtered.
#[utoipa::path(
    get, path = "/v1/plants", tag = "plants",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of plants.", body = Page<Plant, String>),
        (status = 400, description = "A query parameter is not valid."),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<Plant, String>>, Problem> {
    let limit = limit(query.limit)?;
    let filter = PlantFilter {
        region: query.region,
        fuel: query
            .fuel
            .as_deref()
            .map(|f| filter_word("fuel", f, Fuel::parse, Fuel::ALL))
            .transpose()?,
        status: query
            .status
            .as_deref()
            .map(|s| filter_word("status", s, Status::parse, Status::ALL))
            .transpose()?,
    };
    let after = query.after.as_deref().map(cursor::decode).transpose()?;
    let plants = state
        .store
        .list_plants(&filter, after.as_deref(), limit + 1)
        .await?;
    Ok(Json(Page::of(plants, limit, |plant| {
        cursor::encode(&plant.id)
    })))
}

/// Replaces a plant's writable fields.
#[utoipa::path(
    put, path = "/v1/plants/{id}", tag = "plants",
    params(
        ("id" = String, Path, pattern = "^[^\\u0000]*$", description = "The plant's id."),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^[ \t]*(\*|(W/)?"[0-9]{1,19}"([ \t]*,[ \t]*(W/)?"[0-9]{1,19}")*)[ \t]*$"#,
            description = "Write only if the plant is at one of these versions (its `ETag`s), or exists (`*`)."),
        ("traceparent" = Option<String>, Header, nullable = false, description = "A W3C trace context; the change and its deliveries join this trace."),
    ),
    request_body(content = PlantInput, content_type = "application/json"),
    responses(
        (status = 200, description = "The plant as stored.", body = Plant, headers(
            ("ETag" = String, description = "The plant's new version."),
        )),
        (status = 400, description = "The body is not JSON, or `If-Match` cannot be read."),
        (status = 404, description = "No plant has this id."),
        (status = 412, description = "The plant is not at a version `If-Match` names."),
        (status = 413, description = "The body is larger than 1 MiB."),
        (status = 415, description = "The body is not sent as JSON."),
        (status = 422, description = "The body is not a valid plant; `errors` names each field."),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, Problem> {
    let condition = if_match(&headers)?;
    let draft = validate::draft(&body).map_err(Problem::validation)?;
    let expected = match condition {
        None => None,
        Some(condition) => Some(resolve(&state, &id, &condition).await?),
    };
    let trace = trace::of_write(&headers);
    let plant = state
        .store
        .replace_plant(&id, &draft, expected, Some(&trace))
        .await?;
    Ok(with_etag(plant))
}

/// Applies a JSON merge patch (RFC 7396) to a plant.
#[utoipa::path(
    patch, path = "/v1/plants/{id}", tag = "plants",
    params(
        ("id" = String, Path, pattern = "^[^\\u0000]*$", description = "The plant's id."),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^[ \t]*(\*|(W/)?"[0-9]{1,19}"([ \t]*,[ \t]*(W/)?"[0-9]{1,19}")*)[ \t]*$"#,
            description = "Write only if the plant is at one of these versions (its `ETag`s), or exists (`*`)."),
        ("traceparent" = Option<String>, Header, nullable = false, description = "A W3C trace context; the change and its deliveries join this trace."),
    ),
    request_body(content(
        (PlantPatch = "application/merge-patch+json"),
        (PlantPatch = "application/json"),
    )),
    responses(
        (status = 200, description = "The plant as stored.", body = Plant, headers(
            ("ETag" = String, description = "The plant's new version."),
        )),
        (status = 400, description = "The body is not JSON, or `If-Match` cannot be read."),
        (status = 404, description = "No plant has this id."),
        (status = 412, description = "The plant is not at a version `If-Match` names."),
        (status = 413, description = "The body is larger than 1 MiB."),
        (status = 415, description = "The body is not sent as JSON."),
        (status = 422, description = "The patched plant would not be valid; `errors` names each field."),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody,
) -> Result<Response, Problem> {
    let condition = if_match(&headers)?;
    validate::patch(&patch).map_err(Problem::validation)?;
    let trace = trace::of_write(&headers);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let current = match (state.store.get_plant(&id).await?, &condition) {
            (Some(plant), _) => plant,
            (None, Some(_)) => {
                return Err(Problem::precondition_failed("the plant does not exist"));
            }
            (None, None) => return Err(StoreError::NotFound { id }.into()),
        };
        if let Some(condition) = &condition
            && !condition.matches(current.version)
        {
            return Err(stale(current.version));
        }
        let mut merged =
            serde_json::to_value(current.draft()).map_err(|error| Problem::internal(&error))?;
        merge_patch::apply(&mut merged, &patch);
        let draft = validate::draft(&merged).map_err(Problem::validation)?;
        match state
            .store
            .replace_plant(&id, &draft, Some(current.version), Some(&trace))
            .await
        {
            Ok(plant) => return Ok(with_etag(plant)),
            // Someone wrote in between: without If-Match the client asked for "patch the latest",
            // so apply the patch again to what is there now.
            Err(StoreError::VersionMismatch { .. })
                if condition.is_none() && attempts < PATCH_ATTEMPTS => {}
            Err(error) => return Err(error.into()),
        }
    }
}

/// Deletes a plant; its history stays in the journal.
#[utoipa::path(
    delete, path = "/v1/plants/{id}", tag = "plants",
    params(
        ("id" = String, Path, pattern = "^[^\\u0000]*$", description = "The plant's id."),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^[ \t]*(\*|(W/)?"[0-9]{1,19}"([ \t]*,[ \t]*(W/)?"[0-9]{1,19}")*)[ \t]*$"#,
            description = "Write only if the plant is at one of these versions (its `ETag`s), or exists (`*`)."),
        ("traceparent" = Option<String>, Header, nullable = false, description = "A W3C trace context; the change and its deliveries join this trace."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "`If-Match` cannot be read."),
        (status = 404, description = "No plant has this id."),
        (status = 412, description = "The plant is not at a version `If-Match` names."),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let expected = match if_match(&headers)? {
        None => None,
        Some(condition) => Some(resolve(&state, &id, &condition).await?),
    };
    let trace = trace::of_write(&headers);
    state
        .store
        .delete_plant(&id, expected, Some(&trace))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The one version a conditional write may apply to, or 412.
async fn resolve(state: &AppState, id: &str, condition: &IfMatch) -> Result<u64, Problem> {
    if let IfMatch::Versions(versions) = condition
        && let [version] = versions.as_slice()
    {
        return Ok(*version);
    }
    match state.store.get_plant(id).await? {
        Some(plant) if condition.matches(plant.version) => Ok(plant.version),
        Some(plant) => Err(stale(plant.version)),
        None => Err(Problem::precondition_failed("the plant does not exist")),
    }
}

fn stale(current: u64) -> Problem {
    Problem::precondition_failed(format!(
        "the plant is at version {current}, which If-Match does not name; fetch it again and retry"
    ))
}

fn with_etag(plant: Plant) -> Response {
    ([(header::ETAG, etag(plant.version))], Json(plant)).into_response()
}

/// A query parameter that must be one of `all`.
pub(super) fn filter_word<T>(
    name: &str,
    value: &str,
    parse: fn(&str) -> Option<T>,
    all: &[&str],
) -> Result<T, Problem> {
    parse(value)
        .ok_or_else(|| Problem::bad_request(format!("`{name}` must be one of {}", all.join(", "))))
}
