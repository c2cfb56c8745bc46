//! The `/v1/plants` resource over real HTTP, on each backend: every route, status code and validation rule
//! of the contract.

use plant_monitor_tests::{Backend, TestApp, plant};
use reqwest::header::{CONTENT_TYPE, ETAG, IF_MATCH, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

plant_monitor_tests::on_every_backend! {
    creating_a_plant_returns_201_with_location_etag_and_the_server_fields,
    a_minimal_plant_gets_status_planned_and_null_optionals,
    a_create_is_answered_with_exactly_the_plant_a_read_returns,
    each_validation_rule_is_enforced_at_its_boundaries,
    required_fields_missing_are_each_named,
    nan_and_infinity_are_refused_without_a_server_error,
    every_double_reads_back_exactly_from_the_plant_and_its_journal,
    malformed_json_wrong_media_type_and_unknown_fields_are_client_errors,
    a_body_over_one_mebibyte_gets_413,
    unknown_plants_and_paths_get_404_and_wrong_methods_405,
    put_replaces_the_whole_plant_and_bumps_the_version,
    if_match_with_a_stale_version_gets_412_and_a_current_one_succeeds,
    two_concurrent_puts_with_the_same_if_match_have_exactly_one_winner,
    patch_merges_sets_and_removes_fields,
    a_patch_that_changes_nothing_keeps_the_version,
    delete_removes_the_plant_and_a_second_delete_gets_404,
    list_filters_by_region_fuel_and_status,
    walking_next_over_250_plants_returns_each_exactly_once_even_while_plants_are_inserted,
    the_last_page_has_a_null_next_and_limit_defaults_to_100,
    with_an_api_token_writes_need_the_bearer_and_reads_stay_open,
    with_an_api_token_operational_reads_need_it_and_protect_reads_guards_the_rest,
    health_and_readiness_answer,
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/problem+json",
        "errors are problem+json"
    );
    let body: Value = response.json().await.expect("JSON problem");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}

fn fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect()
}

async fn creating_a_plant_returns_201_with_location_etag_and_the_server_fields(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let response = app
        .request(Method::POST, "/v1/plants")
        .json(&plant("Grand Coulee"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(response.headers()[ETAG], "\"1\"");
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/plants/{}", created["id"].as_str().unwrap())
    );
    assert_eq!(created["version"], 1);
    assert_eq!(created["name"], "Grand Coulee");
    assert_eq!(created["capacity_mw"], 6809.0);
    assert_eq!(created["attributes"], json!({"operator": "USBR"}));
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(created["created_at"], created["updated_at"]);

    let fetched = app.call(Method::GET, &location).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.headers()[ETAG], "\"1\"");
    assert_eq!(fetched.json::<Value>().await.unwrap(), created);
}

async fn a_minimal_plant_gets_status_planned_and_null_optionals(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let created = app
        .create(&json!({"name": "N", "region": "r1", "fuel": "wind", "capacity_mw": 0}))
        .await;
    assert_eq!(created["status"], "planned");
    assert_eq!(created["output_mw"], Value::Null);
    assert_eq!(created["latitude"], Value::Null);
    assert_eq!(created["attributes"], json!({}));
}

/// SQLite answers a create from the inserted row (`RETURNING`) and a read from the plant's JSON
/// image: both must say the same of awkward values, a negative zero and escaped attributes included.
async fn a_create_is_answered_with_exactly_the_plant_a_read_returns(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    for body in [
        json!({"name": "N", "region": "r1", "fuel": "wind", "capacity_mw": 0}),
        json!({
            "name": "Ünïcode \"quoted\" \\ name", "region": "r-2", "fuel": "storage",
            "capacity_mw": 1e-300, "output_mw": -0.0, "status": "offline", "latitude": -0.0,
            "longitude": 179.99999999999997,
            "attributes": {"e": "", "emoji 🌞": "line\nbreak", "zero": "0", "tab\t": "\u{1f}"}
        }),
    ] {
        let created = app.create(&body).await;
        let id = created["id"].as_str().unwrap();
        let read = app.get_json(&format!("/v1/plants/{id}")).await;
        assert_eq!(created.to_string(), read.to_string());
    }
}

async fn each_validation_rule_is_enforced_at_its_boundaries(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let long = |n: usize| "x".repeat(n);
    let accepted = [
        ("name", json!(long(200))),
        ("name", json!("é".repeat(200))),
        ("name", json!("a")),
        ("region", json!("a")),
        ("region", json!(format!("a{}", "-".repeat(62)))),
        ("capacity_mw", json!(0)),
        ("output_mw", json!(-5.5)),
        ("output_mw", Value::Null),
        ("latitude", json!(90)),
        ("latitude", json!(-90)),
        ("longitude", json!(180)),
        ("longitude", json!(-180)),
        ("status", json!("decommissioned")),
        ("fuel", json!("geothermal")),
        (
            "attributes",
            Value::from_iter((0..64).map(|n| (format!("k{n}"), json!("v")))),
        ),
        ("attributes", json!({ long(64): long(1024) })),
    ];
    for (field, value) in accepted {
        let mut body = plant("p");
        body[field] = value.clone();
        let response = app
            .request(Method::POST, "/v1/plants")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{field} = {value}");
    }
    let refused = [
        ("name", json!("")),
        ("name", json!(long(201))),
        ("name", json!(7)),
        ("name", json!("nul\u{0}byte")),
        ("region", json!("")),
        ("region", json!("US-West")),
        ("region", json!("-west")),
        ("region", json!(long(64))),
        ("region", json!("us_west")),
        ("fuel", json!("peat")),
        ("fuel", Value::Null),
        ("capacity_mw", json!(-0.001)),
        ("capacity_mw", json!("100")),
        ("output_mw", json!("5")),
        ("status", json!("retired")),
        ("latitude", json!(90.0001)),
        ("latitude", json!(-90.0001)),
        ("longitude", json!(180.5)),
        ("longitude", json!(-181)),
        ("attributes", json!({"a": 1})),
        ("attributes", json!(["a"])),
        (
            "attributes",
            Value::from_iter((0..65).map(|n| (format!("k{n}"), json!("v")))),
        ),
        ("attributes", json!({ long(65): "v" })),
        ("attributes", json!({ "": "v" })),
        ("attributes", json!({ "k": long(1025) })),
        ("attributes", json!({ "k\u{0}": "v" })),
        ("attributes", json!({ "k": "\u{0}" })),
    ];
    for (field, value) in refused {
        let mut body = plant("p");
        body[field] = value.clone();
        let response = app
            .request(Method::POST, "/v1/plants")
            .json(&body)
            .send()
            .await
            .unwrap();
        let body = problem(response, 422).await;
        assert_eq!(fields(&body), [field], "{field} = {value}");
    }
}

async fn required_fields_missing_are_each_named(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let response = app
        .request(Method::POST, "/v1/plants")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let body = problem(response, 422).await;
    assert_eq!(fields(&body), ["name", "region", "fuel", "capacity_mw"]);
}

async fn nan_and_infinity_are_refused_without_a_server_error(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    for number in ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"] {
        let body = format!(r#"{{"name":"n","region":"r","fuel":"gas","capacity_mw":{number}}}"#);
        let response = app
            .request(Method::POST, "/v1/plants")
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "{number}: {}",
            response.status()
        );
        problem(response, 400).await;
    }
}

/// The extremes of a double and values whose shortest form needs all 17 digits come back as sent,
/// from the plant and from both images of the journal.
async fn every_double_reads_back_exactly_from_the_plant_and_its_journal(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let numbers = |plant: &Value| {
        ["capacity_mw", "output_mw", "latitude", "longitude"].map(|field| plant[field].as_f64())
    };
    let mut body = plant("Exact");
    let sent = [f64::MAX, -f64::MAX, 5e-324, -179.99999999999997];
    for (field, number) in ["capacity_mw", "output_mw", "latitude", "longitude"]
        .into_iter()
        .zip(sent)
    {
        body[field] = json!(number);
    }
    let sent = sent.map(Some);
    let created = app.create(&body).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(numbers(&created), sent);
    assert_eq!(
        numbers(&app.get_json(&format!("/v1/plants/{id}")).await),
        sent
    );
    let patched = app.patch(id, r#"{"output_mw": 0.30000000000000004}"#).await;
    let mut now = sent;
    now[1] = Some(0.1 + 0.2);
    assert_eq!(numbers(&patched), now);
    let journal = app.journal().await;
    let [created, updated] = journal.as_slice() else {
        panic!("two entries: {journal:#?}")
    };
    assert_eq!(numbers(&created["after"]), sent);
    assert_eq!(numbers(&updated["before"]), sent);
    assert_eq!(numbers(&updated["after"]), now);
}

async fn malformed_json_wrong_media_type_and_unknown_fields_are_client_errors(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let send = |body: &'static str, content_type: &'static str| {
        app.request(Method::POST, "/v1/plants")
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    problem(send("{\"name\":", "application/json").await.unwrap(), 400).await;
    problem(send("", "application/json").await.unwrap(), 400).await;
    problem(
        send("name=x", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        415,
    )
    .await;
    problem(send("[1,2]", "application/json").await.unwrap(), 422).await;

    let mut body = plant("p");
    body["colour"] = json!("red");
    let response = app
        .request(Method::POST, "/v1/plants")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(fields(&problem(response, 422).await), ["colour"]);
}

async fn a_body_over_one_mebibyte_gets_413(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let mut body = plant("p");
    body["attributes"] = json!({"blob": "x".repeat(1 << 20)});
    let response = app
        .request(Method::POST, "/v1/plants")
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(response, 413).await;
}

async fn unknown_plants_and_paths_get_404_and_wrong_methods_405(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    for path in [
        "/v1/plants/no-such-id",
        "/v1/plants/%E2%82%AC",
        "/v1/nothing",
        "/v1/plants/x/changes",
    ] {
        let response = app.call(Method::GET, path).await;
        problem(response, 404).await;
    }
    let response = app.call(Method::DELETE, "/v1/plants/no-such-id").await;
    problem(response, 404).await;
    let response = app
        .request(Method::PUT, "/v1/plants/no-such-id")
        .json(&plant("p"))
        .send()
        .await
        .unwrap();
    problem(response, 404).await;
    let response = app.call(Method::DELETE, "/v1/plants").await;
    problem(response, 405).await;
}

async fn put_replaces_the_whole_plant_and_bumps_the_version(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let created = app.create(&plant("Old")).await;
    let id = created["id"].as_str().unwrap();
    let replacement =
        json!({"name": "New", "region": "eu-north", "fuel": "wind", "capacity_mw": 12});
    let response = app
        .request(Method::PUT, &format!("/v1/plants/{id}"))
        .json(&replacement)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[ETAG], "\"2\"");
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(replaced["name"], "New");
    assert_eq!(
        replaced["output_mw"],
        Value::Null,
        "full replace clears what is not sent"
    );
    assert_eq!(replaced["attributes"], json!({}));
    assert_eq!(replaced["version"], 2);
    assert_eq!(replaced["created_at"], created["created_at"]);

    // Sending a fetched plant back unchanged (read-only fields included) changes nothing.
    let again = app
        .request(Method::PUT, &format!("/v1/plants/{id}"))
        .json(&replaced)
        .send()
        .await
        .unwrap();
    assert_eq!(again.json::<Value>().await.unwrap()["version"], 2);
}

async fn if_match_with_a_stale_version_gets_412_and_a_current_one_succeeds(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let id = app.create(&plant("p")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = app.url(&format!("/v1/plants/{id}"));
    let put = |tag: &'static str, name: &'static str| {
        app.client
            .put(&path)
            .header(IF_MATCH, tag)
            .json(&plant(name))
            .send()
    };
    assert_eq!(
        put("\"1\"", "second").await.unwrap().status(),
        StatusCode::OK
    );
    problem(put("\"1\"", "stale").await.unwrap(), 412).await;
    assert_eq!(
        put("\"7\", \"2\"", "third").await.unwrap().status(),
        StatusCode::OK
    );
    problem(put("W/\"3\"", "weak").await.unwrap(), 412).await;
    problem(put("banana", "bad").await.unwrap(), 400).await;
    assert_eq!(
        app.get_json(&format!("/v1/plants/{id}")).await["version"],
        3
    );

    let patch = app
        .client
        .patch(&path)
        .header(IF_MATCH, "\"2\"")
        .header(CONTENT_TYPE, "application/merge-patch+json")
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .unwrap();
    problem(patch, 412).await;

    let delete = app
        .client
        .delete(&path)
        .header(IF_MATCH, "\"1\"")
        .send()
        .await
        .unwrap();
    problem(delete, 412).await;
    let delete = app
        .client
        .delete(&path)
        .header(IF_MATCH, "*")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    let put_missing = app
        .client
        .put(&path)
        .header(IF_MATCH, "*")
        .json(&plant("p"))
        .send()
        .await;
    problem(put_missing.unwrap(), 412).await;
    let bad_patch_of_missing = app
        .client
        .patch(&path)
        .header(IF_MATCH, "\"3\"")
        .header(CONTENT_TYPE, "application/merge-patch+json")
        .body(r#"{"output_mw": {}}"#)
        .send()
        .await;
    let body = problem(bad_patch_of_missing.unwrap(), 422).await;
    assert_eq!(
        fields(&body),
        ["output_mw"],
        "a patch that could never apply is refused before its precondition is judged"
    );
}

async fn two_concurrent_puts_with_the_same_if_match_have_exactly_one_winner(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    for round in 0..10 {
        let id = app.create(&plant("contested")).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = app.url(&format!("/v1/plants/{id}"));
        let put = |name: String| {
            app.client
                .put(&path)
                .header(IF_MATCH, "\"1\"")
                .json(&plant(&name))
                .send()
        };
        let (a, b) = tokio::join!(put(format!("a{round}")), put(format!("b{round}")));
        let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 412], "round {round}");
        let current = app.get_json(&format!("/v1/plants/{id}")).await;
        assert_eq!(current["version"], 2);
    }
}

async fn patch_merges_sets_and_removes_fields(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let id = app.create(&plant("p")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .request(Method::PATCH, &format!("/v1/plants/{id}"))
        .header(CONTENT_TYPE, "application/merge-patch+json")
        .header(IF_MATCH, "\"1\"")
        .body(r#"{"output_mw": null, "attributes": {"owner": "grid co"}, "status": "maintenance"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[ETAG], "\"2\"");
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["output_mw"], Value::Null);
    assert_eq!(patched["status"], "maintenance");
    assert_eq!(
        patched["attributes"],
        json!({"operator": "USBR", "owner": "grid co"})
    );
    assert_eq!(patched["name"], "p");

    let response = app
        .request(Method::PATCH, &format!("/v1/plants/{id}"))
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"name": null, "latitude": 100}"#)
        .send()
        .await
        .unwrap();
    let body = problem(response, 422).await;
    assert_eq!(fields(&body), ["name", "latitude"]);

    let response = app
        .request(Method::PATCH, "/v1/plants/missing")
        .header(CONTENT_TYPE, "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(response, 404).await;
}

async fn a_patch_that_changes_nothing_keeps_the_version(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let created = app.create(&plant("Grand Coulee")).await;
    let id = created["id"].as_str().unwrap();
    let patched = app
        .patch(
            id,
            r#"{"output_mw": 6000.25, "attributes": {"operator": "BPA"}}"#,
        )
        .await;
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["created_at"], created["created_at"]);
    let again = app.patch(id, r#"{"output_mw": 6000.25}"#).await;
    assert_eq!(
        again["version"], 2,
        "writing the same values is not a change"
    );
}

async fn delete_removes_the_plant_and_a_second_delete_gets_404(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let id = app.create(&plant("p")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = app.url(&format!("/v1/plants/{id}"));
    assert_eq!(
        app.client.delete(&path).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    problem(app.client.get(&path).send().await.unwrap(), 404).await;
    problem(app.client.delete(&path).send().await.unwrap(), 404).await;
}

async fn list_filters_by_region_fuel_and_status(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    for (region, fuel, status) in [
        ("north", "wind", "operational"),
        ("north", "solar", "planned"),
        ("south", "wind", "operational"),
        ("south", "wind", "offline"),
    ] {
        let mut body = plant(&format!("{region}-{fuel}-{status}"));
        body["region"] = json!(region);
        body["fuel"] = json!(fuel);
        body["status"] = json!(status);
        app.create(&body).await;
    }
    let app = &app;
    let count = |query: &'static str| async move {
        let page = app.get_json(&format!("/v1/plants?{query}")).await;
        page["items"].as_array().unwrap().len()
    };
    assert_eq!(count("").await, 4);
    assert_eq!(count("region=north").await, 2);
    assert_eq!(count("fuel=wind").await, 3);
    assert_eq!(count("region=south&fuel=wind&status=offline").await, 1);
    assert_eq!(count("region=east").await, 0);

    for bad in [
        "fuel=peat",
        "status=gone",
        "limit=0",
        "limit=1001",
        "limit=ten",
        "after=%%%",
        "colour=red",
    ] {
        let response = app.call(Method::GET, &format!("/v1/plants?{bad}")).await;
        problem(response, 400).await;
    }
}

async fn walking_next_over_250_plants_returns_each_exactly_once_even_while_plants_are_inserted(
    backend: Backend,
) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let mut existing = std::collections::BTreeSet::new();
    for i in 0..250 {
        existing.insert(
            app.create(&plant(&format!("p{i}"))).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let writer = async {
        for i in 0..60 {
            app.create(&plant(&format!("late{i}"))).await;
        }
    };
    let reader = async {
        let mut seen = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let query = match &next {
                Some(cursor) => format!("/v1/plants?limit=7&after={cursor}"),
                None => "/v1/plants?limit=7".to_owned(),
            };
            let page = app.get_json(&query).await;
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 7);
            seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
            match page["next"].as_str() {
                Some(cursor) => next = Some(cursor.to_owned()),
                None => break seen,
            }
        }
    };
    let ((), seen) = tokio::join!(writer, reader);
    let unique: std::collections::BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no plant appears twice");
    assert!(
        existing.is_subset(&unique),
        "every plant present at the start appears"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "pages are ordered by id");
}

async fn the_last_page_has_a_null_next_and_limit_defaults_to_100(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    for i in 0..101 {
        app.create(&plant(&format!("p{i}"))).await;
    }
    let first = app.get_json("/v1/plants").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 100);
    let cursor = first["next"].as_str().unwrap();
    let second = app.get_json(&format!("/v1/plants?after={cursor}")).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["next"], Value::Null);
}

async fn with_an_api_token_writes_need_the_bearer_and_reads_stay_open(backend: Backend) {
    let app = TestApp::start_on(backend, |config| {
        config.server.api_token = Some("s3cret".into())
    })
    .await;
    let post = |auth: Option<&'static str>| {
        let request = app.request(Method::POST, "/v1/plants").json(&plant("p"));
        match auth {
            Some(value) => request.header("authorization", value),
            None => request,
        }
        .send()
    };
    let response = post(None).await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    problem(response, 401).await;
    problem(post(Some("Bearer wrong")).await.unwrap(), 401).await;
    problem(post(Some("s3cret")).await.unwrap(), 401).await;
    let created = post(Some("Bearer s3cret")).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(app.call(Method::GET, "/v1/plants").await.status(), 200);
    assert_eq!(
        app.call(Method::GET, &format!("/v1/plants/{id}"))
            .await
            .status(),
        200
    );
    let delete = app.call(Method::DELETE, &format!("/v1/plants/{id}")).await;
    problem(delete, 401).await;
}

/// Receiver URLs, errors, leases and plugins are an attacker's map of the system: with a token set they
/// are read with it. Plants and the journal follow `server.protect_reads`; the probes stay open.
async fn with_an_api_token_operational_reads_need_it_and_protect_reads_guards_the_rest(
    backend: Backend,
) {
    let get = |app: &TestApp, path: &str, auth: Option<&'static str>| {
        let request = app.request(Method::GET, path);
        match auth {
            Some(value) => request.header("authorization", value),
            None => request,
        }
        .send()
    };
    let app = TestApp::start_on(backend, |config| {
        config.server.api_token = Some("s3cret".into())
    })
    .await;
    for path in [
        "/v1/sinks",
        "/v1/deliveries",
        "/v1/leases",
        "/v1/plugins",
        "/v1/deliveries?status=pending",
    ] {
        problem(get(&app, path, None).await.unwrap(), 401).await;
        let answer = get(&app, path, Some("bearer s3cret")).await.unwrap();
        assert_eq!(
            answer.status(),
            200,
            "{path}: the scheme is case-insensitive"
        );
    }
    let created = app
        .request(Method::POST, "/v1/plants")
        .header("authorization", "BEARER s3cret")
        .json(&plant("p"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    for path in ["/v1/plants", "/v1/changes", "/healthz", "/readyz"] {
        assert_eq!(get(&app, path, None).await.unwrap().status(), 200, "{path}");
    }

    let guarded = TestApp::start_on(backend, |config| {
        config.server.api_token = Some("s3cret".into());
        config.server.protect_reads = true;
    })
    .await;
    for path in ["/v1/plants", "/v1/changes"] {
        problem(get(&guarded, path, None).await.unwrap(), 401).await;
        let answer = get(&guarded, path, Some("Bearer s3cret")).await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            get(&guarded, path, None).await.unwrap().status(),
            200,
            "{path}"
        );
    }
}

async fn health_and_readiness_answer(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
    assert_eq!(app.get_json("/readyz").await["status"], "ready");
    let db = app.sql().await;
    sqlx::query("DROP TABLE _sqlx_migrations")
        .execute(&db)
        .await
        .unwrap();
    let response = app.call(Method::GET, "/readyz").await;
    problem(response, 503).await;
}

/// A thousand clients that open a connection and trickle a request line a byte at a time are cut off
/// at `header_read_timeout`, hold no more than `max_connections` at once, and meanwhile a normal
/// request is answered and the feed goes on delivering.
#[tokio::test]
async fn slow_clients_are_cut_off_and_cannot_crowd_out_the_others() {
    use tokio::io::AsyncWriteExt;
    let receiver = plant_monitor_tests::Receiver::start().await;
    let app = TestApp::start_on(Backend::Sqlite, |c| {
        c.server.header_read_timeout = std::time::Duration::from_secs(1);
        c.server.max_connections = 512.try_into().unwrap();
        c.sinks.insert(
            "out".into(),
            plant_monitor_tests::sink(&receiver.url("/out")),
        );
    })
    .await;
    let addr = app.addr().to_owned();
    let mut tricklers = Vec::new();
    for _ in 0..1000 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tricklers.push(tokio::spawn(async move {
            let started = std::time::Instant::now();
            for byte in b"GET /v1/plants HTTP/1.1\r\n".iter().cycle() {
                if stream.write_all(&[*byte]).await.is_err() {
                    return Some(started.elapsed());
                }
                if started.elapsed() > std::time::Duration::from_secs(20) {
                    return None;
                }
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            None
        }));
    }
    let asked = std::time::Instant::now();
    app.create(&plant("during the storm")).await;
    assert_eq!(app.call(Method::GET, "/v1/plants").await.status(), 200);
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(5),
        "answered after {:?}",
        asked.elapsed()
    );
    receiver.wait_for(1, plant_monitor_tests::WAIT).await;
    for trickler in tricklers {
        let cut = trickler.await.unwrap();
        assert!(
            cut.is_some_and(|after| after < std::time::Duration::from_secs(10)),
            "a trickling client was served on: {cut:?}"
        );
    }
}

/// A connection that has sent a POST's headers and the first byte of its 100-byte body, and then
/// nothing: a request that holds its place for as long as the server lets it.
async fn trickling_post(app: &TestApp) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    stream
        .write_all(
            b"POST /v1/plants HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    stream
}

/// A request whose body trickles in is answered 503 at `request_timeout`, as a problem.
#[tokio::test]
async fn a_request_that_takes_too_long_is_answered_503() {
    use tokio::io::AsyncReadExt;
    let app = TestApp::start_on(Backend::Sqlite, |c| {
        c.server.request_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let mut stream = trickling_post(&app).await;
    let started = std::time::Instant::now();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer before the body is complete")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("server.request_timeout"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// With one turn for `/v1` requests, a request that holds it (its body trickles in) makes the next
/// wait until it ends, while the probes are answered at once.
#[tokio::test]
async fn requests_beyond_max_requests_wait_their_turn_and_the_probes_do_not() {
    let app = TestApp::start_on(Backend::Sqlite, |c| {
        c.server.max_requests = 1.try_into().unwrap();
        c.server.request_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let _holder = trickling_post(&app).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let asked = std::time::Instant::now();
    assert_eq!(app.call(Method::GET, "/healthz").await.status(), 200);
    assert!(asked.elapsed() < std::time::Duration::from_millis(500));
    let status = app.call(Method::GET, "/v1/plants").await.status();
    assert_eq!(status, 200);
    assert!(
        asked.elapsed() > std::time::Duration::from_millis(1200),
        "answered after {:?}, before the turn was free",
        asked.elapsed()
    );
}
