//! `plant-monitor sink-echo`: a webhook receiver for development. It prints one readable line per
//! CloudEvent to stdout (the path shows which sink sent it) and answers 204, so a newcomer can watch
//! routed, labelled events arrive. With a secret it verifies each Standard Webhooks signature and says
//! so on the line; its failure modes (a share of failures, a fixed status with `Retry-After`, a delay)
//! let people watch retries, backoff and dead letters happen. Though a development tool, it is often
//! left listening, so it holds hostile senders to limits: a body of at most 8 MiB read within 10 s,
//! nothing printed that could drive the terminal, signatures only within 5 minutes of their timestamp
//! and at most 8 of them checked per request.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::net::TcpListener;

use super::signing::Signer;

/// The largest request body read; a larger one is answered 413.
const MAX_BODY: usize = 8 << 20;

/// How long reading a body may take; a sender that trickles is answered 408.
const READ_TIME: Duration = Duration::from_secs(10);

/// How far a signature's timestamp may be from now, either way (the Standard Webhooks tolerance).
const TIMESTAMP_TOLERANCE: u64 = 5 * 60;

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

async fn receive(State(options): State<Arc<EchoOptions>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (uri, headers) = (parts.uri, parts.headers);
    let body = match tokio::time::timeout(READ_TIME, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            print_line(&format!(
                "{} answered 413: the body is over {MAX_BODY} bytes",
                clean(uri.path())
            ));
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        }
        Err(_) => {
            print_line(&format!(
                "{} answered 408: the body took over {READ_TIME:?}",
                clean(uri.path())
            ));
            return StatusCode::REQUEST_TIMEOUT.into_response();
        }
    };
    if !options.delay.is_zero() {
        tokio::time::sleep(options.delay).await;
    }
    if let Some(status) = options.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        print_line(&format!("{} answered {status}", clean(uri.path())));
        return match options.retry_after {
            Some(seconds) => (status, [(header::RETRY_AFTER, seconds.to_string())]).into_response(),
            None => status.into_response(),
        };
    }
    if fastrand::f64() < options.fail_rate {
        print_line(&format!("{} answered 500 (--fail-rate)", clean(uri.path())));
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
                "{} not JSON ({}): {} bytes",
                clean(uri.path()),
                clean(&error.to_string()),
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
    if signature.is_some_and(|status| status != "valid") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `valid`, `invalid`, `stale` (the timestamp is over 5 minutes from now, a replay) or `missing`, for
/// the request's Standard Webhooks headers.
fn signature_status(signer: &Signer, headers: &HeaderMap, body: &[u8]) -> &'static str {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signature)) = (
        text("webhook-id"),
        text("webhook-timestamp").and_then(|t| t.parse::<i64>().ok()),
        text("webhook-signature"),
    ) else {
        return "missing";
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64);
    if now.abs_diff(timestamp) > TIMESTAMP_TOLERANCE {
        return "stale";
    }
    if signer.verify(id, timestamp, body, signature) {
        "valid"
    } else {
        "invalid"
    }
}

/// `PATH #ID TYPE REGION SUBJECT "NAME" changed=… label=value…`, every part as printable text.
pub fn line(path: &str, event: &Value) -> String {
    let data = &event["data"];
    let text = |v: &Value| clean(v.as_str().unwrap_or("?"));
    let plant = if data["after"].is_object() {
        &data["after"]
    } else {
        &data["before"]
    };
    let mut line = format!(
        "{} #{} {} {} {} {:?}",
        clean(path),
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
            line.push_str(&format!(" {}={}", clean(key), text(value)));
        }
    }
    line
}

/// `text` with its control characters escaped (`\u{1b}` rather than an escape sequence), so that
/// what a sender writes cannot move the cursor, recolour or retitle the terminal.
fn clean(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
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
    fn nothing_a_sender_writes_reaches_the_terminal_as_a_control_character() {
        let event = json!({"id": "7\u{1b}[2J", "type": "t", "subject": "s",
            "data": {"region": "r\u{7}", "after": {"name": "n\u{1b}]0;pwned\u{7}"},
                     "labels": {"k\u{1b}": "v\u{1b}[31m"}}});
        let printed = line("/p\u{1b}", &event);
        assert!(!printed.chars().any(char::is_control), "{printed:?}");
        assert!(printed.contains("\\u{1b}[2J"), "{printed}");
    }

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
