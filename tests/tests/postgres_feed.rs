//! What only PostgreSQL can do to the feed, against the machine's real server: transactions that commit
//! out of `seq` order (SQLite has one writer at a time, so its commits are in order) must not make the
//! feed skip a change, and a commit by any SQL client wakes the feed through LISTEN/NOTIFY. The service
//! also speaks TLS to the server when the URL asks for it.

use std::time::Duration;

use plant_monitor_tests::{Backend, Receiver, TestApp, WAIT, plant, sink};
use serde_json::Value;

/// Transaction A writes a change and stays open; a later transaction B commits; the feed runs; then A
/// commits. A feed that read "everything after the last seq it saw" would skip A's change forever.
#[tokio::test]
async fn a_change_committed_after_a_later_one_is_still_delivered() {
    let receiver = Receiver::start().await;
    let app = TestApp::start_on(Backend::Postgres, |c| {
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
    })
    .await;
    let db = app.sql().await;
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
    let app = TestApp::start_on(Backend::Postgres, |c| {
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
        // Far longer than the wait below: only a notification can explain a prompt delivery.
        c.feed.poll_interval = Duration::from_secs(60);
    })
    .await;
    let db = app.sql().await;
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

/// `sslmode=require` must give an encrypted connection (the machine's server has a self-signed
/// certificate), not an error, and `prefer`, the default, must not settle for plaintext when TLS is
/// to be had.
#[tokio::test]
async fn the_service_speaks_tls_to_postgres_when_the_url_asks_for_it() {
    let database = plant_monitor_tests::TestDatabase::create().await;
    for mode in ["require", "prefer"] {
        let app = TestApp::start_on(Backend::Sqlite, |c| {
            c.database.url = format!("{}?sslmode={mode}", database.url).parse().unwrap();
        })
        .await;
        app.create(&plant("over tls")).await;
        let encrypted: bool = sqlx::query_scalar(
            "SELECT bool_and(ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
             WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()",
        )
        .fetch_one(&sqlx::PgPool::connect(&database.url).await.unwrap())
        .await
        .unwrap();
        assert!(
            encrypted,
            "sslmode={mode}: the service's connections are encrypted"
        );
        app.stop().await;
    }
}
