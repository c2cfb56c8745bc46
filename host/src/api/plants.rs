//! `/v1/plants`: create, read, list, replace, merge-patch and delete plants, with `ETag`/`If-Match`
//! concurrency control.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::body::JsonBody;
use super::extract::{Path, Query};
use super::paging::{Page, limit};
use super::preconditions::{IfMatch, etag, if_match};
use super::problem::Problem;
use super::{AppState, cursor, merge_patch, validate};
use crate::domain::{Fuel, Plant, Status};
use crate::store::{PlantFilter, StoreError};

/// How often a PATCH without `If-Match` re-reads and retries when another writer got in between.
const PATCH_ATTEMPTS: usize = 5;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    region: Option<String>,
    fuel: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
    after: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, Problem> {
    let draft = validate::draft(&body).map_err(Problem::validation)?;
    let plant = state.store.create_plant(&draft).await?;
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
    let plant = state.store.replace_plant(&id, &draft, expected).await?;
    Ok(with_etag(plant))
}

pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody,
) -> Result<Response, Problem> {
    let condition = if_match(&headers)?;
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
            .replace_plant(&id, &draft, Some(current.version))
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

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let expected = match if_match(&headers)? {
        None => None,
        Some(condition) => Some(resolve(&state, &id, &condition).await?),
    };
    state.store.delete_plant(&id, expected).await?;
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

fn filter_word<T>(
    name: &str,
    value: &str,
    parse: fn(&str) -> Option<T>,
    all: &[&str],
) -> Result<T, Problem> {
    parse(value)
        .ok_or_else(|| Problem::bad_request(format!("`{name}` must be one of {}", all.join(", "))))
}
