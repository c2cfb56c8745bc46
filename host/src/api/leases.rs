//! `/v1/leases`: who leads each region. Each lease shows its holder, epoch and expiry by the database
//! clock, with `held` saying whether it is still in force; `instance_id` names the answering process,
//! so an operator can tell which replica leads what.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{AppState, Problem};
use crate::lease::region_of;
use crate::store::Lease;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeaseList {
    instance_id: String,
    items: Vec<LeaseView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct LeaseView {
    /// The region the lease leads, for the `feed:<region>` leases.
    region: Option<String>,
    #[serde(flatten)]
    lease: Lease,
}

/// Who leads each region, with the answering replica's own name.
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
    }))
}
