//! The HTTP API: routes, shared state and the layers every request passes (body limit, bearer token,
//! request log). Handlers live in one file per resource; every error is a [`problem::Problem`].

mod auth;
mod body;
mod changes;
mod cursor;
mod deliveries;
mod extract;
mod health;
mod leases;
mod merge_patch;
mod paging;
mod plants;
mod plugins;
mod preconditions;
mod problem;
mod serve;
mod sinks;
#[cfg(test)]
mod tests;
mod validate;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::sync::watch;

use crate::pipeline::LivePipeline;
use crate::sinks::Sinks;
use crate::store::Store;

pub use body::MAX_BODY_BYTES;
pub use problem::{FieldError, Problem};
pub use serve::{ServeLimits, serve};

/// What every handler may use.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// `None` when `server.api_token` is not set: no token is required.
    pub api_token: Option<Arc<str>>,
    /// Whether reading plants and the journal needs the token too (`server.protect_reads`).
    pub protect_reads: bool,
    /// The pipeline in force, for `/v1/plugins`.
    pub pipeline: Arc<LivePipeline>,
    /// The plugin folder, where a promotion renames a shadow version's files.
    pub plugins_dir: Arc<std::path::Path>,
    /// This process's name as a lease holder, for `/v1/leases`.
    pub instance_id: Arc<str>,
    /// The configured sinks, for `/v1/sinks`.
    pub sinks: Arc<Sinks>,
    /// Told when a replay or an enabled sink makes deliveries due, so the sink workers look at once.
    pub deliveries_due: Arc<watch::Sender<()>>,
}

/// The whole API as one router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/plants", get(plants::list).post(plants::create))
        .route(
            "/v1/plants/{id}",
            get(plants::get)
                .put(plants::replace)
                .patch(plants::patch)
                .delete(plants::delete),
        )
        .route("/v1/plants/{id}/changes", get(changes::of_plant))
        .route("/v1/changes", get(changes::journal))
        .route("/v1/plugins", get(plugins::list))
        .route("/v1/plugins/{name}/shadow", get(plugins::shadow))
        .route("/v1/plugins/{name}/promote", post(plugins::promote))
        .route("/v1/leases", get(leases::list))
        .route("/v1/sinks", get(sinks::list))
        .route("/v1/sinks/{name}/enable", post(sinks::enable))
        .route("/v1/sinks/{name}/retry", post(sinks::retry))
        .route("/v1/deliveries", get(deliveries::list))
        .route("/v1/deliveries/{id}/retry", post(deliveries::retry))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async { Problem::not_found("no such resource") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "Served a request."
    );
    response
}
