//! The change journal over HTTP: `/v1/changes` (everything, in `seq` order) and
//! `/v1/plants/{id}/changes` (one plant's history, kept after the plant is deleted).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use super::extract::{Path, Query};
use super::paging::{Page, limit};
use super::problem::Problem;
use crate::domain::Change;
use crate::store::StoreError;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Only changes after this `seq` (the `next` of the page before).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    after: Option<u64>,
    /// How many changes a page holds (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

impl ChangesQuery {
    /// The `seq` to start after; a `seq` is a signed 64-bit integer in both databases.
    fn after(&self) -> Result<u64, Problem> {
        match self.after {
            Some(after) if i64::try_from(after).is_err() => Err(Problem::bad_request(format!(
                "`after` must be at most {}",
                i64::MAX
            ))),
            after => Ok(after.unwrap_or(0)),
        }
    }
}

/// Every change, in commit (`seq`) order.
#[utoipa::path(
    get, path = "/v1/changes", tag = "journal",
    params(ChangesQuery),
    responses(
        (status = 200, description = "A page of changes.", body = Page<Change, u64>),
        (status = 400, description = "A query parameter is not valid."),
    )
)]
pub async fn journal(
    State(state): State<AppState>,
    Query(query): Query<ChangesQuery>,
) -> Result<Json<Page<Change, u64>>, Problem> {
    let limit = limit(query.limit)?;
    let changes = state
        .store
        .list_changes(None, query.after()?, limit + 1)
        .await?;
    Ok(Json(Page::of(changes, limit, |change| change.seq)))
}

/// One plant's changes, oldest first; kept after the plant is deleted.
#[utoipa::path(
    get, path = "/v1/plants/{id}/changes", tag = "journal",
    params(("id" = String, Path, pattern = "^[^\\u0000]*$", description = "The plant's id."), ChangesQuery),
    responses(
        (status = 200, description = "A page of the plant's changes.", body = Page<Change, u64>),
        (status = 400, description = "A query parameter is not valid."),
        (status = 404, description = "No plant ever had this id."),
    )
)]
pub async fn of_plant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ChangesQuery>,
) -> Result<Json<Page<Change, u64>>, Problem> {
    let limit = limit(query.limit)?;
    let after = query.after()?;
    let changes = state
        .store
        .list_changes(Some(&id), after, limit + 1)
        .await?;
    // A deleted plant keeps its history; a plant that never existed has none to show.
    if changes.is_empty() && after == 0 && state.store.get_plant(&id).await?.is_none() {
        return Err(StoreError::NotFound { id }.into());
    }
    Ok(Json(Page::of(changes, limit, |change| change.seq)))
}
