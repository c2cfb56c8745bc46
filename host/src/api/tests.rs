//! The router's mapping of failures to problems, tried with `oneshot` requests against a real SQLite
//! store: what reaches no handler, what a handler cannot read, and what fails on the server side.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tokio::sync::watch;
use tower::ServiceExt;

use super::{AppState, router};
use crate::config::{DatabaseConfig, PluginsConfig, RoutingConfig};
use crate::pipeline::{LivePipeline, Pipeline};
use crate::sinks::Sinks;
use crate::store::{self, Store};
use crate::tail::Tail;

struct Api {
    state: AppState,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn api() -> Api {
    let dir = tempfile::tempdir().expect("temporary folder");
    let config = DatabaseConfig {
        url: format!("sqlite://{}", dir.path().join("api.db").display())
            .parse()
            .expect("an SQLite URL"),
        ..DatabaseConfig::default()
    };
    let store = store::connect(&config).await.expect("opened");
    store.migrate().await.expect("migrated");
    let pipeline = Pipeline::new(
        Default::default(),
        &PluginsConfig::default(),
        &RoutingConfig::default(),
        Vec::new(),
    );
    let state = AppState {
        store: store.clone(),
        api_token: None,
        protect_reads: false,
        pipeline: Arc::new(LivePipeline::from_pointee(pipeline)),
        plugins_dir: Arc::from(dir.path()),
        instance_id: Arc::from("test"),
        sinks: Arc::new(Sinks::build(&BTreeMap::new()).expect("no sinks")),
        deliveries_due: Arc::new(watch::channel(()).0),
        tail: Arc::new(Tail::new(store.clone(), Duration::from_millis(20), 4)),
        keep_alive: super::KEEP_ALIVE,
        backfills_due: Arc::new(watch::channel(()).0),
    };
    Api {
        state,
        store,
        _dir: dir,
    }
}

/// Sends one request through the whole router; the status and the body as JSON, after checking that
/// the body is a problem document.
async fn problem(api: &Api, method: Method, uri: &str) -> (StatusCode, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("a request");
    let response = router(api.state.clone())
        .oneshot(request)
        .await
        .expect("an answer");
    let status = response.status();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json",
        "{uri}"
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body["status"], status.as_u16(), "{uri}");
    (status, body)
}

#[tokio::test]
async fn an_unknown_route_is_404_and_a_wrong_method_405() {
    let api = api().await;
    let (status, body) = problem(&api, Method::GET, "/v2/plants").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["type"], "urn:plant-monitor:problem:not-found");
    let (status, _) = problem(&api, Method::DELETE, "/v1/plants").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_path_or_query_the_handler_cannot_read_is_a_400_problem() {
    let api = api().await;
    for (method, uri, named) in [
        (Method::POST, "/v1/deliveries/abc/retry", "abc"),
        (Method::GET, "/v1/changes?after=x", "after"),
        (Method::GET, "/v1/plants?colour=red", "colour"),
        (Method::GET, "/v1/deliveries?limit=-1", "limit"),
    ] {
        let (status, body) = problem(&api, method, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["type"], "urn:plant-monitor:problem:bad-request");
        let detail = body["detail"].as_str().expect("a detail");
        assert!(detail.contains(named), "{uri}: {detail}");
    }
}

#[tokio::test]
async fn a_failure_on_the_server_side_is_a_500_that_says_nothing_of_the_database() {
    let api = api().await;
    api.store.close().await;
    let (status, body) = problem(&api, Method::GET, "/v1/plants").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let text = body.to_string().to_lowercase();
    for internal in ["pool", "sqlite", "sql", "closed"] {
        assert!(!text.contains(internal), "{text}");
    }
    let (status, _) = problem(&api, Method::GET, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn an_idle_event_stream_sends_a_keep_alive_comment_at_each_interval() {
    use futures_util::StreamExt;
    let mut api = api().await;
    api.state.keep_alive = Duration::from_millis(50);
    let request = Request::builder()
        .uri("/v1/events/stream")
        .body(Body::empty())
        .expect("a request");
    let response = router(api.state.clone())
        .oneshot(request)
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body().into_data_stream();
    for _ in 0..2 {
        let data = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("a keep-alive within the interval")
            .expect("the stream goes on")
            .expect("readable");
        assert_eq!(&data[..], b": keep-alive\n\n");
    }
}
