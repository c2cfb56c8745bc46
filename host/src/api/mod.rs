//! The HTTP API: routes, shared state and the layers every request passes (body limit, bearer token,
//! metrics, request log). Handlers live in one file per resource; every error is a [`problem::Problem`].
//! One list of routes builds both the router and the OpenAPI document served at `/openapi.json`.

mod auth;
mod backfills;
mod body;
mod changes;
mod console;
mod cursor;
mod deliveries;
mod events;
mod extract;
mod health;
mod leases;
mod merge_patch;
mod metrics;
mod openapi;
mod paging;
mod plants;
mod plugins;
mod preconditions;
mod problem;
mod rfc3339;
mod serve;
mod sinks;
mod stats;
#[cfg(test)]
mod tests;
mod trace;
mod validate;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tokio::sync::watch;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::pipeline::LivePipeline;
use crate::sinks::Sinks;
use crate::store::Store;
use crate::tail::Tail;

pub use body::MAX_BODY_BYTES;
pub use events::KEEP_ALIVE;
pub use problem::{FieldError, Problem};
pub use serve::{HangUp, ServeLimits, serve};

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
    /// The journal follower the event streams read from.
    pub tail: Arc<Tail>,
    /// How long an idle event stream goes before a keep-alive comment ([`KEEP_ALIVE`]).
    pub keep_alive: std::time::Duration,
    /// Told when a backfill is started, so the backfill worker begins at once.
    pub backfills_due: Arc<watch::Sender<()>>,
}

/// Every documented operation: the router and the OpenAPI document are both made from this list.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::Document::openapi())
        .routes(routes!(plants::list, plants::create))
        .routes(routes!(
            plants::get,
            plants::replace,
            plants::patch,
            plants::delete
        ))
        .routes(routes!(changes::of_plant))
        .routes(routes!(changes::journal))
        .routes(routes!(events::stream))
        .routes(routes!(plugins::list))
        .routes(routes!(plugins::shadow))
        .routes(routes!(plugins::promote))
        .routes(routes!(leases::list))
        .routes(routes!(sinks::list))
        .routes(routes!(sinks::enable))
        .routes(routes!(sinks::retry))
        .routes(routes!(deliveries::list))
        .routes(routes!(deliveries::retry))
        .routes(routes!(stats::stats))
        .routes(routes!(deliveries::retry_matching))
        .routes(routes!(backfills::list, backfills::create))
        .routes(routes!(backfills::get))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::scrape))
}

/// The whole API as one router.
pub fn router(state: AppState) -> Router {
    let (routes, mut document) = routes().split_for_parts();
    openapi::add_conventions(&mut document);
    let document = Arc::new(document);
    routes
        .route(
            "/openapi.json",
            get(move || async move { axum::Json(document.clone()) }),
        )
        .route("/", get(console::page))
        .route("/console/{name}", get(console::asset))
        .fallback(|| async { Problem::not_found("no such resource") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(metrics::count_request))
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
