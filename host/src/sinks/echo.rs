//! `plant-monitor sink-echo`: a webhook receiver for development. It accepts every POST, prints one
//! readable line per CloudEvent to stdout (the path shows which sink sent it), and answers 204, so a
//! newcomer can watch routed, labelled events arrive.

use std::io::Write;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use serde_json::Value;
use tokio::net::TcpListener;

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().fallback(receive);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn receive(uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
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
            return StatusCode::BAD_REQUEST;
        }
    };
    for event in &events {
        print_line(&line(uri.path(), event));
    }
    StatusCode::NO_CONTENT
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
