//! The web console at `/`: one page and its assets, embedded in the binary so it works offline and
//! always matches the API it talks to. Everything it shows comes from the public API (see
//! `host/console/app.js`); the charts are drawn with uPlot 1.6.32 (MIT), vendored in
//! `host/console/vendor/`. The page is open like the probes; the data it asks for is guarded as the
//! API guards it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::extract::Path;
use super::problem::Problem;

/// Only this origin's own scripts, styles and API: no CDN, no inline script, no framing.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// (name, media type, bytes) of each asset under `/console/`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/app.css"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/vendor/uPlot.min.css"),
    ),
];

const PAGE: &[u8] = include_bytes!("../../console/index.html");

pub async fn page() -> Response {
    serve("text/html; charset=utf-8", PAGE)
}

pub async fn asset(Path(name): Path<String>) -> Result<Response, Problem> {
    ASSETS
        .iter()
        .find(|(asset, _, _)| *asset == name)
        .map(|(_, media_type, bytes)| serve(media_type, bytes))
        .ok_or_else(|| Problem::not_found(format!("the console has no asset {name:?}")))
}

fn serve(media_type: &'static str, bytes: &'static [u8]) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            // The binary's own assets change only with the binary: revalidate, never serve stale.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        bytes,
    )
        .into_response()
}
