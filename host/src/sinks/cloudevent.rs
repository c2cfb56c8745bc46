//! The body a sink receives: a CloudEvents 1.0 envelope (structured mode) around the event's `data`
//! object. `id` is the journal seq, so it is the same on every retry, restart and failover; the
//! extension attribute `pipeline` names the plugin versions that produced the event, and `traceparent`
//! (the CloudEvents distributed tracing extension) the trace of the write that caused it, so each event
//! of a batch keeps its own.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `Content-Type` of a single structured CloudEvent.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// `Content-Type` of a JSON array of structured CloudEvents (`batch_max` above 1).
pub const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

/// The fields of `data` the envelope repeats.
#[derive(Deserialize)]
struct Head<'a> {
    seq: u64,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    plant_id: Cow<'a, str>,
    #[serde(borrow)]
    region: Cow<'a, str>,
    #[serde(borrow, default)]
    committed_at: Cow<'a, str>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    specversion: &'static str,
    id: String,
    source: String,
    #[serde(rename = "type")]
    kind: String,
    subject: &'a str,
    time: &'a str,
    datacontenttype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pipeline: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
    data: &'a RawValue,
}

/// Wraps the event JSON (as stored in the outbox) in its envelope, with the id of the pipeline
/// snapshot that produced it and the trace of the write that caused it.
pub fn encode(
    data: &str,
    pipeline: Option<&str>,
    traceparent: Option<&str>,
) -> Result<String, serde_json::Error> {
    let head: Head<'_> = serde_json::from_str(data)?;
    let raw: &RawValue = serde_json::from_str(data)?;
    serde_json::to_string(&Envelope {
        specversion: "1.0",
        id: head.seq.to_string(),
        source: format!("/plant-monitor/regions/{}", head.region),
        kind: format!("powerplant.{}", head.kind),
        subject: &head.plant_id,
        time: &head.committed_at,
        datacontenttype: "application/json",
        pipeline,
        traceparent,
        data: raw,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::encode;

    const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_envelope_carries_the_seq_as_id_and_the_data_unchanged() {
        let data = json!({"seq": 1042, "kind": "updated", "plant_id": "7b0c", "region": "us-west",
                          "before": null, "after": null, "changed_fields": ["output_mw"],
                          "committed_at": "2026-11-22T10:00:01.123Z", "labels": {"alert": "over-capacity"}});
        let body: Value = serde_json::from_str(
            &encode(&data.to_string(), Some("3fa2c1d9e0b4"), Some(TRACE)).unwrap(),
        )
        .unwrap();
        assert_eq!(body["specversion"], "1.0");
        assert_eq!(body["id"], "1042");
        assert_eq!(body["source"], "/plant-monitor/regions/us-west");
        assert_eq!(body["type"], "powerplant.updated");
        assert_eq!(body["subject"], "7b0c");
        assert_eq!(body["time"], "2026-11-22T10:00:01.123Z");
        assert_eq!(body["datacontenttype"], "application/json");
        assert_eq!(body["pipeline"], "3fa2c1d9e0b4");
        assert_eq!(body["traceparent"], TRACE);
        assert_eq!(body["data"], data);
    }
}
