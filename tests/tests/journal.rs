//! The change journal, on each backend: written by triggers for every writer, API or raw SQL, served in
//! `seq` order, and fed region by region by the leader `/v1/leases` shows.

use plant_monitor_tests::{Backend, Receiver, TestApp, plant, sink};
use reqwest::Method;
use serde_json::{Value, json};

plant_monitor_tests::on_every_backend! {
    api_writes_are_journaled_in_order_with_images_and_changed_fields,
    writes_made_directly_through_sql_are_journaled_like_api_writes,
    a_raw_sql_insert_without_an_id_gets_a_uuid_and_is_served_by_the_api,
    the_database_refuses_raw_writes_that_break_the_rules,
    a_plants_changes_are_listed_oldest_first_and_outlive_the_plant,
    the_journal_pages_by_seq_with_after_and_limit,
    a_raw_write_cannot_set_the_version_it_is_the_servers,
    get_v1_leases_shows_this_instance_leading_each_region_in_the_data,
    a_page_of_large_changes_ends_early_at_its_byte_budget,
    heavy_reads_do_not_cost_the_leader_its_lease,
}

fn kinds(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

async fn api_writes_are_journaled_in_order_with_images_and_changed_fields(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let created = app.create(&plant("Grand Coulee")).await;
    let id = created["id"].as_str().unwrap();
    let patched = app
        .patch(
            id,
            r#"{"output_mw": 6000.25, "attributes": {"operator": "BPA"}}"#,
        )
        .await;
    app.call(Method::DELETE, &format!("/v1/plants/{id}")).await;

    let entries = app.journal().await;
    assert_eq!(kinds(&entries), ["created", "updated", "deleted"]);
    let seqs: Vec<_> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq increases: {seqs:?}"
    );
    for entry in &entries {
        assert_eq!(entry["plant_id"], id);
        assert_eq!(entry["region"], "us-west");
        assert!(entry["committed_at"].as_str().unwrap().ends_with('Z'));
    }

    let (create, update, delete) = (&entries[0], &entries[1], &entries[2]);
    assert_eq!(create["before"], Value::Null);
    assert_eq!(create["after"], created);
    assert_eq!(
        create["changed_fields"],
        json!([
            "name",
            "region",
            "fuel",
            "capacity_mw",
            "output_mw",
            "status",
            "latitude",
            "longitude",
            "attributes"
        ])
    );
    assert_eq!(update["before"], created);
    assert_eq!(update["after"], patched);
    assert_eq!(update["changed_fields"], json!(["output_mw", "attributes"]));
    assert_eq!(delete["before"], patched);
    assert_eq!(delete["after"], Value::Null);
    assert_eq!(delete["changed_fields"], json!([]));
}

async fn writes_made_directly_through_sql_are_journaled_like_api_writes(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let db = app.sql().await;
    sqlx::query(
        "INSERT INTO power_plants (id, name, region, fuel, capacity_mw, attributes) \
         VALUES ('raw-1', 'Raw', 'eu-north', 'wind', 300, '{\"source\":\"sql\"}')",
    )
    .execute(&db)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE power_plants SET output_mw = 120.5, status = 'operational' WHERE id = 'raw-1'",
    )
    .execute(&db)
    .await
    .unwrap();
    // Writing the same values again is not a change: no entry, no version bump.
    sqlx::query("UPDATE power_plants SET output_mw = 120.5 WHERE id = 'raw-1'")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM power_plants WHERE id = 'raw-1'")
        .execute(&db)
        .await
        .unwrap();

    let entries = app.journal().await;
    assert_eq!(kinds(&entries), ["created", "updated", "deleted"]);
    let (create, update, delete) = (&entries[0], &entries[1], &entries[2]);
    assert_eq!(create["plant_id"], "raw-1");
    assert_eq!(create["region"], "eu-north");
    assert_eq!(create["after"]["capacity_mw"], 300.0);
    assert_eq!(create["after"]["status"], "planned");
    assert_eq!(create["after"]["version"], 1);
    assert_eq!(create["after"]["attributes"], json!({"source": "sql"}));
    assert_eq!(update["before"]["output_mw"], Value::Null);
    assert_eq!(update["after"]["output_mw"], 120.5);
    assert_eq!(
        update["after"]["version"], 2,
        "the version rises whoever writes"
    );
    assert_eq!(update["changed_fields"], json!(["output_mw", "status"]));
    assert_eq!(delete["before"]["version"], 2);
    assert_eq!(delete["after"], Value::Null);
}

async fn a_raw_sql_insert_without_an_id_gets_a_uuid_and_is_served_by_the_api(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let db = app.sql().await;
    let id: String = sqlx::query_scalar(
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('n', 'r', 'gas', 1) RETURNING id",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4", "a version 4 UUID: {id}");
    let fetched = app.get_json(&format!("/v1/plants/{id}")).await;
    assert_eq!(fetched["name"], "n");
}

async fn the_database_refuses_raw_writes_that_break_the_rules(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let db = app.sql().await;
    let refused = [
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('', 'r', 'gas', 1)",
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('n', 'R', 'gas', 1)",
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('n', 'r', 'peat', 1)",
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('n', 'r', 'gas', -1)",
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('n', 'r', 'gas', 'x')",
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('n', 'r', 'gas', 'NaN')",
        "INSERT INTO power_plants (name, region, fuel, capacity_mw, latitude) VALUES ('n', 'r', 'gas', 1, 91)",
        "INSERT INTO power_plants (name, region, fuel, capacity_mw, attributes) VALUES ('n', 'r', 'gas', 1, '{\"a\":1}')",
        "INSERT INTO power_plants (name, region, fuel, capacity_mw, attributes) VALUES ('n', 'r', 'gas', 1, '[]')",
    ];
    for statement in refused {
        assert!(
            sqlx::query(statement).execute(&db).await.is_err(),
            "{statement}"
        );
    }
    let id = app.create(&plant("p")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rename = sqlx::query("UPDATE power_plants SET id = 'other' WHERE id = $1")
        .bind(&id)
        .execute(&db)
        .await;
    assert!(rename.is_err(), "the id is immutable");
    assert_eq!(
        app.journal().await.len(),
        1,
        "only the API create was journaled"
    );
}

async fn a_plants_changes_are_listed_oldest_first_and_outlive_the_plant(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let id = app.create(&plant("p")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.create(&plant("other")).await;
    for name in ["a", "b"] {
        app.request(Method::PUT, &format!("/v1/plants/{id}"))
            .json(&plant(name))
            .send()
            .await
            .unwrap();
    }
    app.call(Method::DELETE, &format!("/v1/plants/{id}")).await;
    app.captured().await;
    let history = app.get_json(&format!("/v1/plants/{id}/changes")).await;
    let items = history["items"].as_array().unwrap();
    assert_eq!(kinds(items), ["created", "updated", "updated", "deleted"]);
    assert!(items.iter().all(|e| e["plant_id"] != other["id"]));
    assert_eq!(items[2]["after"]["name"], "b");
    assert_eq!(history["next"], Value::Null);
}

async fn the_journal_pages_by_seq_with_after_and_limit(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    for i in 0..5 {
        app.create(&plant(&format!("p{i}"))).await;
    }
    app.captured().await;
    let first = app.get_json("/v1/changes?limit=2").await;
    let seqs = |page: &Value| -> Vec<u64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&first).len(), 2);
    let next = first["next"].as_u64().unwrap();
    assert_eq!(next, seqs(&first)[1]);
    let rest = app
        .get_json(&format!("/v1/changes?after={next}&limit=10"))
        .await;
    assert_eq!(seqs(&rest).len(), 3);
    assert!(seqs(&rest)[0] > next);
    assert_eq!(rest["next"], Value::Null);
    let beyond = app.get_json("/v1/changes?after=999999").await;
    assert_eq!(beyond["items"], json!([]));
    for bad in ["after=-1", "after=x", "limit=0", "limit=5000"] {
        let response = app.call(Method::GET, &format!("/v1/changes?{bad}")).await;
        assert_eq!(response.status(), 400, "{bad}");
    }
}

async fn a_raw_write_cannot_set_the_version_it_is_the_servers(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let db = app.sql().await;
    sqlx::query("INSERT INTO power_plants (id, name, region, fuel, capacity_mw, version) VALUES ('raw-1', 'Raw', 'eu-north', 'wind', 300, 9)")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE power_plants SET output_mw = 120.5, status = 'operational', version = 99 WHERE id = 'raw-1'")
        .execute(&db)
        .await
        .unwrap();
    let journal = app.journal().await;
    assert_eq!(journal[0]["after"]["version"], 1);
    assert_eq!(
        journal[1]["after"]["version"], 2,
        "the version is the server's"
    );
    assert_eq!(journal[1]["changed_fields"], json!(["output_mw", "status"]));
}

async fn get_v1_leases_shows_this_instance_leading_each_region_in_the_data(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    app.create(&plant("Grand Coulee")).await;
    let region_lease = |leases: &Value| {
        leases["items"]
            .as_array()
            .and_then(|items| items.iter().find(|item| item["region"] == "us-west"))
            .cloned()
    };
    let leases = app
        .wait_for_json("/v1/leases", |leases| region_lease(leases).is_some())
        .await;
    let item = &region_lease(&leases).unwrap();
    assert_eq!(item["region"], "us-west");
    assert_eq!(item["name"], "feed:us-west");
    assert_eq!(item["holder"], leases["instance_id"]);
    assert_eq!(item["epoch"], 1);
    assert_eq!(item["held"], true);
    assert!(
        item["expires_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z'))
    );
}

/// Changes of plants with large attributes carry two images each: a page of a thousand would be many
/// megabytes, so a page ends, with its `next` cursor, at 4 MiB, and the pages still cover everything.
async fn a_page_of_large_changes_ends_early_at_its_byte_budget(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let mut body = plant("large");
    body["attributes"] =
        Value::from_iter((0..64).map(|n| (format!("key-{n}"), json!("v".repeat(1024)))));
    for n in 0..40 {
        let id = app.create(&body).await["id"].as_str().unwrap().to_owned();
        app.patch(&id, &format!(r#"{{"output_mw": {n}}}"#)).await;
    }
    let mut seen = 0;
    let mut after = 0;
    let mut pages = 0;
    loop {
        let response = app
            .call(
                Method::GET,
                &format!("/v1/changes?limit=1000&after={after}"),
            )
            .await;
        let text = response.text().await.unwrap();
        assert!(
            text.len() <= (4 << 20) + (200 << 10),
            "{} bytes",
            text.len()
        );
        let page: Value = serde_json::from_str(&text).unwrap();
        seen += page["items"].as_array().unwrap().len();
        pages += 1;
        match page["next"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(seen, 80, "every change on some page");
    assert!(pages >= 2, "the 8 MB journal came in one page");
}

/// Fifty clients reading `/v1/sinks` while the outbox holds 100,000 delivered rows: the figures are
/// counters, so each answer is quick and right (no reader waits past `request_timeout`), and the lease
/// keeper renews on a connection of its own, so the leader keeps its lease (same epoch).
async fn heavy_reads_do_not_cost_the_leader_its_lease(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = TestApp::start_on(backend, |c| {
        c.feed.lease_ttl = std::time::Duration::from_secs(2);
        c.database.max_connections = 2.try_into().unwrap();
        c.server.request_timeout = std::time::Duration::from_secs(2);
        c.sinks
            .insert("archive".into(), sink(&receiver.url("/archive")));
    })
    .await;
    // A processed journal of 100,000 old entries, each delivered once to the sink.
    let (numbers, at) = match backend {
        Backend::Sqlite => (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
             SELECT i FROM n",
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        ),
        Backend::Postgres | Backend::PostgresWal => {
            ("SELECT generate_series(1, 100000) AS i", "now()")
        }
    };
    let sql = app.sql().await;
    sqlx::query(&format!(
        "INSERT INTO plant_changes (plant_id, region, kind, after, processed_at, outcome, event) \
         SELECT 'p', 'us-west', 'created', '{{}}', {at}, 'routed', '{{}}' FROM ({numbers}) n"
    ))
    .execute(&sql)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO deliveries (seq, sink, plant_id, region, status, attempts, delivered_at) \
         SELECT seq, 'archive', 'p', 'us-west', 'delivered', 1, {at} FROM plant_changes \
         WHERE plant_id = 'p'"
    ))
    .execute(&sql)
    .await
    .unwrap();
    app.create(&plant("led")).await;
    app.wait_for_json("/v1/sinks", |s| s["items"][0]["delivered"] == 100_001)
        .await;
    let led = app
        .wait_for_json("/v1/leases", |l| l["items"][0]["held"] == true)
        .await;
    let epoch = led["items"][0]["epoch"].clone();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(6);
    let readers = (0..50).map(|_| async {
        while std::time::Instant::now() < until {
            let sinks = app.get_json("/v1/sinks").await;
            assert_eq!(sinks["items"][0]["delivered"], 100_001, "{sinks}");
        }
    });
    futures_util::future::join_all(readers).await;
    let after = app.get_json("/v1/leases").await;
    let lease = &after["items"][0];
    assert_eq!(lease["held"], true, "{after}");
    assert_eq!(lease["epoch"], epoch, "the lease was never lost: {after}");
    assert_eq!(lease["holder"], after["instance_id"]);
}

/// On SQLite the store makes a journal entry's images and changed fields from the columns the triggers
/// wrote, as the view `plant_change_images` makes them in SQL for SQL readers: both must say the same
/// of every kind of write, from the API and from raw SQL.
#[tokio::test]
async fn on_sqlite_the_store_reads_every_entry_as_the_journal_view_shows_it() {
    let app = TestApp::start_on(Backend::Sqlite, |_| {}).await;
    let created = app.create(&plant("Grand Coulee")).await;
    let id = created["id"].as_str().unwrap();
    app.patch(
        id,
        r#"{"output_mw": null, "attributes": {"b": "2", "a": "ü\n"}}"#,
    )
    .await;
    app.patch(id, r#"{"region": "eu-south", "latitude": -0.0}"#)
        .await;
    let db = app.sql().await;
    for sql in [
        "INSERT INTO power_plants (id, name, region, fuel, capacity_mw, output_mw, latitude, \
         longitude, attributes) VALUES ('raw-1', 'Raw', 'eu-north', 'storage', 1e-300, -5.5, \
         89.99999999999999, -180, '{\"z\": \"1\", \"y\": \"\"}')",
        "UPDATE power_plants SET capacity_mw = 2.5, attributes = '{}' WHERE id = 'raw-1'",
        "UPDATE power_plants SET name = 'Renamed', status = 'offline', longitude = NULL \
         WHERE id = 'raw-1'",
        "DELETE FROM power_plants",
    ] {
        sqlx::query(sql).execute(&db).await.unwrap();
    }

    let rows: Vec<(Option<String>, Option<String>, String)> = sqlx::query_as(
        "SELECT before, after, changed_fields FROM plant_change_images ORDER BY seq",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let parse = |text: Option<String>| {
        text.map_or(Value::Null, |text| serde_json::from_str(&text).unwrap())
    };
    let viewed: Vec<Value> = rows
        .into_iter()
        .map(|(before, after, fields)| json!([parse(before), parse(after), parse(Some(fields))]))
        .collect();
    let read: Vec<Value> = app
        .journal()
        .await
        .iter()
        .map(|entry| json!([entry["before"], entry["after"], entry["changed_fields"]]))
        .collect();
    assert_eq!(read.len(), 8, "{read:#?}");
    assert_eq!(read, viewed);
}
