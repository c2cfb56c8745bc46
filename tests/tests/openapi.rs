//! `GET /openapi.json` against the service's real answers: a session of the integration suite's own
//! requests reaches every operation and most of its documented answers, and each answer must be
//! documented for its operation and status, with a body that validates against the document's schema
//! for its media type (JSON Schema 2020-12, the dialect of OpenAPI 3.1). The schemathesis run in
//! `scripts/schemathesis` then throws generated requests at the same document.

use std::collections::BTreeSet;

use plant_monitor_tests::{
    Backend, PluginDir, Receiver, TestApp, WAIT, eventually, plant, sink, sink_with,
};
use reqwest::Method;
use serde_json::{Value, json};

plant_monitor_tests::on_every_backend! {
    every_answer_of_a_real_session_is_documented_and_matches_its_schema,
}

const TOKEN: &str = "s3cret";

/// The document a running service serves, and what it has been checked against so far.
struct Contract {
    document: Value,
    answered: BTreeSet<(String, String, u16)>,
}

impl Contract {
    async fn of(app: &TestApp) -> Contract {
        let response = app.call(Method::GET, "/openapi.json").await;
        assert_eq!(response.status(), 200);
        Contract {
            document: response.json().await.expect("the document is JSON"),
            answered: BTreeSet::new(),
        }
    }

    /// Sends `request` (for the operation `method template`) and checks that it is answered with
    /// `expected`, which the document lists for the operation, with a body that matches; returns the
    /// JSON body, if any.
    async fn expect(
        &mut self,
        expected: u16,
        method: &Method,
        template: &str,
        request: reqwest::RequestBuilder,
    ) -> Value {
        let response = request.send().await.expect("the server answers");
        self.check(expected, method, template, response).await
    }

    /// [`Contract::expect`] for a response already received. An event stream does not end: its
    /// status and media type are checked, and its body is left unread.
    async fn check(
        &mut self,
        expected: u16,
        method: &Method,
        template: &str,
        response: reqwest::Response,
    ) -> Value {
        let status = response.status().as_u16();
        let media_type = response
            .headers()
            .get("content-type")
            .map(|value| value.to_str().unwrap().to_owned());
        let streamed = (media_type.as_deref()).is_some_and(|m| m.starts_with("text/event-stream"));
        let text = if streamed {
            String::new()
        } else {
            response.text().await.unwrap()
        };
        assert_eq!(status, expected, "{method} {template}: {text}");
        let operation = &self.document["paths"][template][method.as_str().to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {template} is not in the document"
        );
        let answer = &operation["responses"][status.to_string()];
        assert!(
            answer.is_object(),
            "{method} {template} answered {status}, which it does not document: {text}"
        );
        self.answered
            .insert((method.to_string(), template.to_owned(), status));
        let Some(media_type) = media_type.filter(|_| streamed || !text.is_empty()) else {
            assert!(
                answer["content"].is_null(),
                "{method} {template} {status} has no body"
            );
            return Value::Null;
        };
        let (documented, content) = answer["content"]
            .as_object()
            .and_then(|content| {
                content
                    .iter()
                    .find(|(documented, _)| media_type.starts_with(documented.as_str()))
            })
            .unwrap_or_else(|| {
                panic!("{method} {template} {status} does not document {media_type}: {answer}")
            });
        if !documented.contains("json") {
            return Value::Null;
        }
        let body: Value = serde_json::from_str(&text).expect("a JSON body");
        self.validate(
            &content["schema"],
            &body,
            &format!("{method} {template} {status}"),
        );
        body
    }

    /// Validates `body` against `schema`, whose references point into the document.
    fn validate(&self, schema: &Value, body: &Value, what: &str) {
        let mut root = self.document.clone();
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        root["allOf"] = json!([schema]);
        let validator = jsonschema::validator_for(&root)
            .unwrap_or_else(|error| panic!("the schema of {what} compiles: {error}"));
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the body does not match its schema:\n{}\n{body:#}",
            errors.join("\n")
        );
    }

    /// Validates the events the live stream sends for `entries` against the stream's documented
    /// event schema, as an SSE client reads them: a `change` event with its id, then an `outcome`
    /// event, which has no id of its own and so carries the change's over (WHATWG HTML §9.2.6).
    fn validate_events(&self, entries: &[Value]) {
        let operation = &self.document["paths"]["/v1/events/stream"]["get"];
        let schema = &operation["responses"]["200"]["content"]["text/event-stream"]["schema"];
        assert!(schema.is_object(), "the stream documents its events");
        for entry in entries {
            let id = entry["seq"].to_string();
            let data = entry.to_string();
            for event in ["change", "outcome"] {
                let read = json!({"event": event, "id": id, "data": data});
                self.validate(schema, &read, &format!("a stream's {event} event"));
            }
        }
    }

    /// Every operation the document describes.
    fn operations(&self) -> BTreeSet<(String, String)> {
        let paths = self.document["paths"].as_object().unwrap();
        paths
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| (method.to_uppercase(), path.clone()))
            })
            .collect()
    }
}

async fn every_answer_of_a_real_session_is_documented_and_matches_its_schema(backend: Backend) {
    let receiver = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.answer_all(Some(500));
    let health = Receiver::start().await;
    health.answer_all(Some(503));
    let plugins = PluginDir::default()
        .add(
            "gate",
            "test-chaos-filter",
            Some("[config]\nmode = \"keep\"\n"),
        )
        .add(
            "gate.shadow",
            "test-chaos-filter",
            Some("[config]\nmode = \"drop\"\nmatch_name = \"bad\"\n"),
        );
    let app = TestApp::start_on(backend, |c| {
        c.server.api_token = Some(TOKEN.into());
        c.server.max_stream_clients = 1.try_into().unwrap();
        c.plugins.dir = plugins.path().to_path_buf();
        c.sinks.insert("out".into(), sink(&receiver.url("/out")));
        c.sinks.insert(
            "doomed".into(),
            sink_with(&failing.url("/doomed"), json!({"max_attempts": 1})),
        );
        c.sinks.insert(
            "gated".into(),
            sink_with(
                &receiver.url("/gated"),
                json!({"health_url": health.url("/health"), "probe_interval": "100ms"}),
            ),
        );
    })
    .await;
    let mut contract = Contract::of(&app).await;
    assert_eq!(contract.document["openapi"], "3.1.0");
    let send = |method: &Method, path: &str| {
        app.request(method.clone(), path).bearer_auth(TOKEN).header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
    };
    let (get, post, put, patch, delete) = (
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    );

    // Plants, and each way a write can be refused.
    let plants = "/v1/plants";
    let created = contract
        .expect(
            201,
            &post,
            plants,
            send(&post, plants).json(&plant("Ivanpah")),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let one = format!("/v1/plants/{id}");
    let by_id = "/v1/plants/{id}";
    let mut second = plant("Hoover");
    second["attributes"] = json!({"owner": "USBR"});
    second["latitude"] = json!(36.0);
    contract
        .expect(201, &post, plants, send(&post, plants).json(&second))
        .await;
    let refusals = [
        (app.request(post.clone(), plants).json(&plant("x")), 401),
        (send(&post, plants).json(&json!({"name": ""})), 422),
        (
            send(&post, plants)
                .header("content-type", "application/json")
                .body("{"),
            400,
        ),
        (send(&post, plants).body("name=x"), 415),
        (
            send(&post, plants).json(&json!({"name": "x".repeat(2 << 20)})),
            413,
        ),
    ];
    for (request, expected) in refusals {
        contract.expect(expected, &post, plants, request).await;
    }
    contract.expect(200, &get, by_id, send(&get, &one)).await;
    contract
        .expect(404, &get, by_id, send(&get, "/v1/plants/no-such-plant"))
        .await;
    let page = contract
        .expect(200, &get, plants, send(&get, "/v1/plants?limit=1"))
        .await;
    assert!(page["next"].is_string());
    contract
        .expect(400, &get, plants, send(&get, "/v1/plants?fuel=plutonium"))
        .await;
    let mut replaced = plant("Ivanpah Solar");
    replaced["status"] = json!("operational");
    contract
        .expect(
            200,
            &put,
            by_id,
            send(&put, &one).header("if-match", "\"1\"").json(&replaced),
        )
        .await;
    contract
        .expect(
            412,
            &put,
            by_id,
            send(&put, &one).header("if-match", "\"1\"").json(&replaced),
        )
        .await;
    let merge = |body: &str| {
        send(&patch, &one)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_owned())
    };
    contract
        .expect(
            200,
            &patch,
            by_id,
            merge(r#"{"output_mw": 120.5, "longitude": null}"#),
        )
        .await;
    contract
        .expect(422, &patch, by_id, merge(r#"{"name": null}"#))
        .await;
    contract
        .expect(
            400,
            &delete,
            by_id,
            send(&delete, &one).header("if-match", "three"),
        )
        .await;

    // The journal.
    app.captured().await;
    let history = "/v1/plants/{id}/changes";
    let changes = contract
        .expect(200, &get, history, send(&get, &format!("{one}/changes")))
        .await;
    assert_eq!(changes["items"].as_array().unwrap().len(), 3);
    contract
        .expect(404, &get, history, send(&get, "/v1/plants/never/changes"))
        .await;
    contract
        .expect(204, &delete, by_id, send(&delete, &one))
        .await;
    let journal = "/v1/changes";
    contract
        .expect(200, &get, journal, send(&get, "/v1/changes?limit=2"))
        .await;
    contract
        .expect(
            400,
            &get,
            journal,
            send(&get, "/v1/changes?after=18446744073709551615"),
        )
        .await;

    // The live stream: one client, as many as allowed; a second is refused.
    let stream = "/v1/events/stream";
    let listening = send(&get, "/v1/events/stream?region=us-west&kind=created")
        .send()
        .await
        .unwrap();
    contract
        .expect(503, &get, stream, send(&get, "/v1/events/stream"))
        .await;
    contract.check(200, &get, stream, listening).await;
    contract.validate_events(changes["items"].as_array().unwrap());
    contract
        .expect(
            400,
            &get,
            stream,
            send(&get, "/v1/events/stream?colour=red"),
        )
        .await;

    // Operations: a dead letter retried, the sinks (one held by its health probe), leases, stats,
    // plugins.
    receiver.wait_for(3, WAIT).await;
    let dead: Value = eventually(WAIT, || async {
        let page: Value = send(&get, "/v1/deliveries?sink=doomed")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match page["items"].as_array() {
            Some(items) if !items.is_empty() => Ok(page),
            _ => Err(format!("no dead letter yet: {page}")),
        }
    })
    .await;
    failing.answer_all(None);
    let deliveries = "/v1/deliveries";
    contract
        .expect(
            200,
            &get,
            deliveries,
            send(&get, "/v1/deliveries?status=dead"),
        )
        .await;
    contract
        .expect(
            400,
            &get,
            deliveries,
            send(&get, "/v1/deliveries?status=lost"),
        )
        .await;
    let retry = format!("/v1/deliveries/{}/retry", dead["items"][0]["id"]);
    let retry_one = "/v1/deliveries/{id}/retry";
    contract
        .expect(202, &post, retry_one, send(&post, &retry))
        .await;
    contract
        .expect(409, &post, retry_one, send(&post, &retry))
        .await;
    contract
        .expect(
            404,
            &post,
            retry_one,
            send(&post, "/v1/deliveries/999999/retry"),
        )
        .await;
    let bulk = "/v1/deliveries/retry";
    contract
        .expect(
            200,
            &post,
            bulk,
            send(&post, bulk).json(&json!({"sink": "doomed", "dry_run": true})),
        )
        .await;
    contract
        .expect(
            202,
            &post,
            bulk,
            send(&post, bulk).json(&json!({"from": "2026-01-01T00:00:00Z", "error": "500"})),
        )
        .await;
    for refused in [json!({"to": "today"}), json!({"sink": "nowhere"})] {
        contract
            .expect(422, &post, bulk, send(&post, bulk).json(&refused))
            .await;
    }
    contract
        .expect(
            400,
            &post,
            bulk,
            send(&post, bulk)
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;

    // Backfills: one started, followed and listed; the ways a start is refused.
    let backfills = "/v1/backfills";
    let started = contract
        .expect(
            201,
            &post,
            backfills,
            send(&post, backfills).json(&json!({"filter": {"fuel": "hydro"}, "sinks": ["out"]})),
        )
        .await;
    let one_backfill = "/v1/backfills/{id}";
    let followed = format!("/v1/backfills/{}", started["id"]);
    eventually(WAIT, || async {
        let backfill: Value = (send(&get, &followed).send().await.unwrap().json().await).unwrap();
        if backfill["state"] == "done" && backfill["done"] == backfill["total"] {
            Ok(())
        } else {
            Err(format!("the backfill is not done: {backfill}"))
        }
    })
    .await;
    contract
        .expect(200, &get, one_backfill, send(&get, &followed))
        .await;
    contract
        .expect(404, &get, one_backfill, send(&get, "/v1/backfills/999999"))
        .await;
    contract
        .expect(400, &get, one_backfill, send(&get, "/v1/backfills/first"))
        .await;
    let listed = contract
        .expect(200, &get, backfills, send(&get, "/v1/backfills?limit=10"))
        .await;
    assert_eq!(listed["items"][0]["id"], started["id"]);
    contract
        .expect(400, &get, backfills, send(&get, "/v1/backfills?limit=0"))
        .await;
    for refused in [
        json!({"filter": {}, "sinks": ["nowhere"]}),
        json!({"filter": {"status": "lost"}, "sinks": ["out"]}),
    ] {
        contract
            .expect(422, &post, backfills, send(&post, backfills).json(&refused))
            .await;
    }
    contract
        .expect(
            415,
            &post,
            backfills,
            send(&post, backfills).body("sinks=out"),
        )
        .await;
    contract
        .expect(401, &get, backfills, app.request(get.clone(), backfills))
        .await;

    let sinks = contract
        .expect(200, &get, "/v1/sinks", send(&get, "/v1/sinks"))
        .await;
    let states: BTreeSet<&str> = (sinks["items"].as_array().unwrap().iter())
        .map(|sink| sink["state"].as_str().unwrap())
        .collect();
    assert!(states.contains("waiting"), "{sinks:#}");
    for (action, expected) in [("enable", 200), ("retry", 202)] {
        let template = format!("/v1/sinks/{{name}}/{action}");
        let path = format!("/v1/sinks/doomed/{action}");
        contract
            .expect(expected, &post, &template, send(&post, &path))
            .await;
        let unknown = format!("/v1/sinks/nowhere/{action}");
        contract
            .expect(404, &post, &template, send(&post, &unknown))
            .await;
    }
    contract
        .expect(200, &get, "/v1/leases", send(&get, "/v1/leases"))
        .await;
    let stats = contract
        .expect(
            200,
            &get,
            "/v1/stats",
            send(&get, "/v1/stats?window=2h&step=5m"),
        )
        .await;
    assert_eq!(stats["buckets"].as_array().unwrap().len(), 24);
    assert!(
        !stats["latency"].as_array().unwrap().is_empty(),
        "{stats:#}"
    );
    contract
        .expect(400, &get, "/v1/stats", send(&get, "/v1/stats?step=30s"))
        .await;
    contract
        .expect(
            401,
            &get,
            "/v1/leases",
            app.request(get.clone(), "/v1/leases"),
        )
        .await;
    let listed = contract
        .expect(200, &get, "/v1/plugins", send(&get, "/v1/plugins"))
        .await;
    assert_eq!(listed["items"][0]["name"], "gate");
    let shadow = "/v1/plugins/{name}/shadow";
    contract
        .expect(200, &get, shadow, send(&get, "/v1/plugins/gate/shadow"))
        .await;
    contract
        .expect(404, &get, shadow, send(&get, "/v1/plugins/none/shadow"))
        .await;
    let promote = "/v1/plugins/{name}/promote";
    contract
        .expect(404, &post, promote, send(&post, "/v1/plugins/none/promote"))
        .await;
    contract
        .expect(202, &post, promote, send(&post, "/v1/plugins/gate/promote"))
        .await;

    // Probes and metrics, open without the token.
    for path in ["/healthz", "/readyz", "/metrics"] {
        contract
            .expect(200, &get, path, app.request(get.clone(), path))
            .await;
    }

    let reached: BTreeSet<(String, String)> = (contract.answered.iter())
        .map(|(method, template, _)| (method.clone(), template.clone()))
        .collect();
    assert_eq!(
        reached,
        contract.operations(),
        "the session reaches every documented operation"
    );
}
