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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

pub async fn journal(
    State(state): State<AppState>,
    Query(query): Query<ChangesQuery>,
) -> Result<Json<Page<Change, u64>>, Problem> {
    let limit = limit(query.limit)?;
    let changes = state
        .store
        .list_changes(None, query.after.unwrap_or(0), limit + 1)
        .await?;
    Ok(Json(Page::of(changes, limit, |change| change.seq)))
}

pub async fn of_plant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ChangesQuery>,
) -> Result<Json<Page<Change, u64>>, Problem> {
    let limit = limit(query.limit)?;
    let after = query.after.unwrap_or(0);
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
