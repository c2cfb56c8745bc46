//! Probes for orchestrators: `/healthz` says the process serves requests, `/readyz` that it can do its
//! work (the database answers and carries this build's schema).

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::problem::Problem;

/// The answer of both probes when all is well.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` from `/healthz`, `ready` from `/readyz`.
    status: &'static str,
}

/// Whether the process serves requests.
#[utoipa::path(
    get, path = "/healthz", tag = "probes",
    responses((status = 200, description = "It does.", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Whether the process can do its work: the database answers and has this build's schema.
#[utoipa::path(
    get, path = "/readyz", tag = "probes",
    responses(
        (status = 200, description = "Ready.", body = Health),
        (status = 503, description = "The database is not reachable or not migrated."),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Problem> {
    match state.store.check_ready().await {
        Ok(()) => Ok(Json(Health { status: "ready" })),
        Err(error) => {
            tracing::warn!(%error, "Readiness check failed.");
            Err(Problem::unavailable(
                "the database is not reachable or not migrated",
            ))
        }
    }
}
