//! Generated input: random JSON values, near-valid plants and random bytes sent to every write route.
//! Whatever arrives, the answer is never a 5xx (and the server never stops answering).

use std::sync::OnceLock;

use plant_monitor_tests::{TestApp, plant};
use proptest::prelude::*;
use reqwest::header::{CONTENT_TYPE, IF_MATCH};
use serde_json::{Map, Value};
use tokio::runtime::Runtime;

struct Fixture {
    runtime: Runtime,
    app: TestApp,
    id: String,
}

/// One service for all cases: starting one per case would test start-up, not input handling.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = Runtime::new().expect("runtime");
        let (app, id) = runtime.block_on(async {
            let app = TestApp::start().await;
            let id = app.create(&plant("target")).await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            (app, id)
        });
        Fixture { runtime, app, id }
    })
}

/// Sends `body` to every write route and returns the statuses.
fn statuses(body: Vec<u8>, content_type: &str, if_match: Option<&str>) -> Vec<(String, u16)> {
    let Fixture { runtime, app, id } = fixture();
    runtime.block_on(async {
        let item = app.url(&format!("/v1/plants/{id}"));
        let requests = [
            ("POST", app.client.post(app.url("/v1/plants"))),
            ("PUT", app.client.put(&item)),
            ("PATCH", app.client.patch(&item)),
        ];
        let mut statuses = Vec::new();
        for (method, request) in requests {
            let mut request = request
                .header(CONTENT_TYPE, content_type)
                .body(body.clone());
            if let Some(tag) = if_match {
                request = request.header(IF_MATCH, tag);
            }
            let response = request.send().await.expect("the server answers");
            statuses.push((method.to_owned(), response.status().as_u16()));
        }
        statuses
    })
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|n| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A valid plant with some fields replaced by arbitrary values or removed: reaches deep validation.
fn near_plant() -> impl Strategy<Value = Value> {
    let fields = prop::sample::select(vec![
        "name",
        "region",
        "fuel",
        "capacity_mw",
        "output_mw",
        "status",
        "latitude",
        "longitude",
        "attributes",
        "id",
        "version",
        "created_at",
        "updated_at",
        "extra",
    ]);
    prop::collection::vec((fields, prop::option::of(any_json())), 0..6).prop_map(|edits| {
        let mut body = plant("near");
        let object = body.as_object_mut().expect("object");
        for (field, value) in edits {
            match value {
                Some(value) => object.insert(field.to_owned(), value),
                None => object.remove(field),
            };
        }
        body
    })
}

fn assert_no_server_error(statuses: &[(String, u16)], input: &str) {
    for (method, status) in statuses {
        assert!(*status < 500, "{method} answered {status} to {input}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_json_values_never_get_a_server_error(value in any_json()) {
        let statuses = statuses(value.to_string().into_bytes(), "application/json", None);
        assert_no_server_error(&statuses, &value.to_string());
    }

    #[test]
    fn near_valid_plants_never_get_a_server_error(value in near_plant(), tag in prop::option::of("[\"*W/0-9a-z ,]{0,12}")) {
        let statuses = statuses(value.to_string().into_bytes(), "application/merge-patch+json", tag.as_deref());
        assert_no_server_error(&statuses, &value.to_string());
    }

    #[test]
    fn random_bytes_never_get_a_server_error(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let statuses = statuses(bytes.clone(), "application/json", None);
        assert_no_server_error(&statuses, &format!("{bytes:?}"));
    }
}
