//! The PostgreSQL backend against the machine's real server, a fresh database per test: the same API and
//! journal semantics as SQLite, gap-safe feeding under out-of-order commits, and LISTEN/NOTIFY wake-ups.

use std::time::Duration;

use plant_monitor_tests::{Receiver, TestApp, plant, sink};
use reqwest::header::IF_MATCH;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

const WAIT: Duration = Duration::from_secs(20);

async fn journal_kinds(app: &TestApp) -> Vec<String> {
    app.journal()
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_api_and_journal_behave_on_postgres_as_on_sqlite() {
    let app = TestApp::start_on_postgres(|_| {}).await;
    let created = app.create(&plant("Grand Coulee")).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["version"], 1);
    assert_eq!(created["capacity_mw"], 6809.0);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(app.get_json(&format!("/v1/plants/{id}")).await, created);

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

    let stale = app
        .request(Method::PUT, &format!("/v1/plants/{id}"))
        .header(IF_MATCH, "\"1\"")
        .json(&plant("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);

    let page = app.get_json("/v1/plants?region=us-west&fuel=hydro").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.call(Method::DELETE, &format!("/v1/plants/{id}"))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.call(Method::GET, &format!("/v1/plants/{id}"))
            .await
            .status(),
        404
    );

    let journal = app.journal().await;
    assert_eq!(journal_kinds(&app).await, ["created", "updated", "deleted"]);
    assert_eq!(journal[0]["after"], created);
    assert_eq!(journal[1]["before"], created);
    assert_eq!(journal[1]["after"], patched);
    assert_eq!(
        journal[1]["changed_fields"],
        json!(["output_mw", "attributes"])
    );
    assert_eq!(journal[2]["before"], patched);
    assert_eq!(app.get_json("/readyz").await["status"], "ready");
}

#[tokio::test]
async fn raw_sql_writes_are_journaled_and_bad_ones_refused_on_postgres() {
    let app = TestApp::start_on_postgres(|_| {}).await;
    let db = PgPool::connect(app.database_url()).await.unwrap();
    sqlx::query("INSERT INTO power_plants (id, name, region, fuel, capacity_mw, version) VALUES ('raw-1', 'Raw', 'eu-north', 'wind', 300, 9)")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE power_plants SET output_mw = 120.5, status = 'operational', version = 99 WHERE id = 'raw-1'")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM power_plants WHERE id = 'raw-1'")
        .execute(&db)
        .await
        .unwrap();
    let journal = app.journal().await;
    assert_eq!(journal_kinds(&app).await, ["created", "updated", "deleted"]);
    assert_eq!(journal[0]["after"]["version"], 1);
    assert_eq!(
        journal[1]["after"]["version"], 2,
        "the version is the server's"
    );
    assert_eq!(journal[1]["changed_fields"], json!(["output_mw", "status"]));
    for statement in [
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('', 'r', 'gas', 1)",
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('n', 'R', 'gas', 1)",
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('n', 'r', 'gas', 'NaN')",
        "INSERT INTO power_plants (name, region, fuel, capacity_mw, attributes) VALUES ('n', 'r', 'gas', 1, '{\"a\": 1}')",
    ] {
        assert!(
            sqlx::query(statement).execute(&db).await.is_err(),
            "{statement}"
        );
    }
}

#[tokio::test]
async fn two_concurrent_puts_with_the_same_if_match_have_one_winner_on_postgres() {
    let app = TestApp::start_on_postgres(|_| {}).await;
    for round in 0..5 {
        let id = app.create(&plant("contested")).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let put = |name: String| {
            app.request(Method::PUT, &format!("/v1/plants/{id}"))
                .header(IF_MATCH, "\"1\"")
                .json(&plant(&name))
                .send()
        };
        let (a, b) = tokio::join!(put(format!("a{round}")), put(format!("b{round}")));
        let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 412]);
    }
}

/// Transaction A writes a change and stays open; a later transaction B commits; the feed runs; then A
/// commits. A feed that read "everything after the last seq it saw" would skip A's change forever.
#[tokio::test]
async fn a_change_committed_after_a_later_one_is_still_delivered() {
    let receiver = Receiver::start().await;
    let app = TestApp::start_on_postgres(|c| {
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
    })
    .await;
    let db = PgPool::connect(app.database_url()).await.unwrap();
    let existing = app.create(&plant("held")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    receiver.wait_for(1, WAIT).await;

    let mut a = db.begin().await.unwrap();
    sqlx::query("UPDATE power_plants SET output_mw = 1 WHERE id = $1")
        .bind(&existing)
        .execute(&mut *a)
        .await
        .unwrap();
    let a_seq: i64 = sqlx::query_scalar("SELECT max(seq) FROM plant_changes")
        .fetch_one(&mut *a)
        .await
        .unwrap();

    app.create(&plant("later")).await;
    let received = receiver.wait_for(2, WAIT).await;
    assert_eq!(received[1].data()["after"]["name"], "later");
    assert!(
        received[1].seq() > a_seq as u64,
        "B's seq is larger than A's"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    a.commit().await.unwrap();
    let received = receiver.wait_for(3, WAIT).await;
    assert_eq!(
        received[2].seq(),
        a_seq as u64,
        "A's change arrives after all"
    );
    assert_eq!(received[2].data()["after"]["output_mw"], 1.0);
    let per_plant: Vec<u64> = received
        .iter()
        .filter(|r| r.body["subject"] == existing.as_str())
        .map(|r| r.seq())
        .collect();
    assert!(
        per_plant.windows(2).all(|w| w[0] < w[1]),
        "per-plant order: {per_plant:?}"
    );
}

#[tokio::test]
async fn a_commit_by_another_sql_client_wakes_the_feed_through_notify() {
    let receiver = Receiver::start().await;
    let app = TestApp::start_on_postgres(|c| {
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
        // Far longer than the wait below: only a notification can explain a prompt delivery.
        c.feed.poll_interval = Duration::from_secs(60);
    })
    .await;
    let db = PgPool::connect(app.database_url()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    sqlx::query("INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ('Raw', 'eu', 'wind', 5)")
        .execute(&db)
        .await
        .unwrap();
    let received = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(received[0].data()["after"]["name"], "Raw");
    let outcome: Value = app.journal().await[0]["outcome"].clone();
    assert_eq!(outcome["result"], "routed");
}
