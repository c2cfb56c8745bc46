//! `plant-monitor sink-echo`: a webhook receiver for development. It prints one readable line per
//! CloudEvent to stdout (the path shows which sink sent it) and answers 204, so a newcomer can watch
//! routed, labelled events arrive. With a secret it verifies each Standard Webhooks signature and says
//! so on the line; its failure modes (a share of failures, a fixed status with `Retry-After`, a delay)
//! let people watch retries, backoff and dead letters happen.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::net::TcpListener;

use super::signing::Signer;

/// How the receiver behaves.
#[derive(Debug, Clone, Default)]
pub struct EchoOptions {
    /// Verify signatures with these keys; none: do not check.
    pub signer: Option<Signer>,
    /// The share of requests, 0 to 1, answered 500 at random.
    pub fail_rate: f64,
    /// Answer every request with this status instead of 204 (with `retry_after` as `Retry-After`).
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    /// Wait this long before answering.
    pub delay: Duration,
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    options: EchoOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .fallback(receive)
        .with_state(Arc::new(options));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn receive(
    State(options): State<Arc<EchoOptions>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !options.delay.is_zero() {
        tokio::time::sleep(options.delay).await;
    }
    if let Some(status) = options.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        print_line(&format!("{} answered {status}", uri.path()));
        return match options.retry_after {
            Some(seconds) => (status, [(header::RETRY_AFTER, seconds.to_string())]).into_response(),
            None => status.into_response(),
        };
    }
    if fastrand::f64() < options.fail_rate {
        print_line(&format!("{} answered 500 (--fail-rate)", uri.path()));
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let batch = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/cloudevents-batch+json"));
    let events = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(events)) if batch => events,
        Ok(event) => vec![event],
        Err(error) => {
            print_line(&format!(
                "{} not JSON ({error}): {} bytes",
                uri.path(),
                body.len()
            ));
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    let signature = options
        .signer
        .as_ref()
        .map(|signer| signature_status(signer, &headers, &body));
    for event in &events {
        let mut line = line(uri.path(), event);
        if let Some(status) = signature {
            line.push_str(&format!(" signature={status}"));
        }
        print_line(&line);
    }
    if signature == Some("invalid") || signature == Some("missing") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `valid`, `invalid` or `missing`, for the request's Standard Webhooks headers.
fn signature_status(signer: &Signer, headers: &HeaderMap, body: &[u8]) -> &'static str {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signature)) = (
        text("webhook-id"),
        text("webhook-timestamp").and_then(|t| t.parse::<i64>().ok()),
        text("webhook-signature"),
    ) else {
        return "missing";
    };
    if signer.verify(id, timestamp, body, signature) {
        "valid"
    } else {
        "invalid"
    }
}

/// `PATH #ID TYPE REGION SUBJECT "NAME" changed=… label=value…`
pub fn line(path: &str, event: &Value) -> String {
    let data = &event["data"];
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let plant = if data["after"].is_object() {
        &data["after"]
    } else {
        &data["before"]
    };
    let mut line = format!(
        "{path} #{} {} {} {} {:?}",
        text(&event["id"]),
        text(&event["type"]),
        text(&data["region"]),
        text(&event["subject"]),
        plant["name"].as_str().unwrap_or("?"),
    );
    if let Some(fields) = data["changed_fields"].as_array().filter(|f| !f.is_empty()) {
        let fields: Vec<String> = fields.iter().map(text).collect();
        line.push_str(&format!(" changed={}", fields.join(",")));
    }
    if let Some(labels) = data["labels"].as_object() {
        for (key, value) in labels {
            line.push_str(&format!(" {key}={}", text(value)));
        }
    }
    line
}

fn print_line(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::line;

    #[test]
    fn a_line_shows_id_type_region_subject_name_changes_and_labels() {
        let event = json!({"id": "7", "type": "powerplant.updated", "subject": "p1",
            "data": {"region": "us-west", "after": {"name": "Grand Coulee"},
                     "changed_fields": ["output_mw"], "labels": {"alert": "over-capacity"}}});
        assert_eq!(
            line("/alerts", &event),
            "/alerts #7 powerplant.updated us-west p1 \"Grand Coulee\" changed=output_mw alert=over-capacity"
        );
    }
}
