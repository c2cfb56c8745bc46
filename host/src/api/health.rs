//! Probes for orchestrators: `/healthz` says the process serves requests, `/readyz` that it can do its
//! work (the database answers and carries this build's schema).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::problem::Problem;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, Problem> {
    match state.store.check_ready().await {
        Ok(()) => Ok(Json(json!({"status": "ready"}))),
        Err(error) => {
            tracing::warn!(%error, "Readiness check failed.");
            Err(Problem::unavailable(
                "the database is not reachable or not migrated",
            ))
        }
    }
}
