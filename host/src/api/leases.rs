//! `/v1/leases`: who leads each region. Each lease shows its holder, epoch and expiry by the database
//! clock, with `held` saying whether it is still in force; `instance_id` names the answering process,
//! so an operator can tell which replica leads what. `capture` says how the journal is captured and,
//! in `wal` capture, how much of the server's log the replication slot keeps and how far it lags.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{AppState, Problem};
use crate::lease::region_of;
use crate::store::{CaptureStatus, Lease};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeaseList {
    instance_id: String,
    items: Vec<LeaseView>,
    capture: CaptureStatus,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct LeaseView {
    /// The region the lease leads, for the `feed:<region>` leases.
    region: Option<String>,
    #[serde(flatten)]
    lease: Lease,
}

/// Who leads each region (and capture), with the answering replica's own name, and the capture's
/// state.
#[utoipa::path(
    get, path = "/v1/leases", tag = "operations",
    responses((status = 200, description = "The leases.", body = LeaseList))
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<LeaseList>, Problem> {
    let items = state
        .store
        .leases()
        .await?
        .into_iter()
        .map(|lease| LeaseView {
            region: region_of(&lease.name).map(String::from),
            lease,
        })
        .collect();
    Ok(Json(LeaseList {
        instance_id: state.instance_id.to_string(),
        items,
        capture: state.store.capture_status().await?,
    }))
}
