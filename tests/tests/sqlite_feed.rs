//! What only SQLite needs of the feed: the file has no notifications, so a commit by another SQL
//! client (another connection, in this process or any other) must still wake a feed that waits,
//! through the watcher of the wal-index, rather than at the feed's next poll.

use std::time::Duration;

use plant_monitor_tests::{Backend, Receiver, TestApp, WAIT, plant, sink};

#[tokio::test]
async fn a_commit_by_another_sql_client_wakes_an_idle_feed_without_waiting_for_its_poll() {
    let receiver = Receiver::start().await;
    let app = TestApp::start_on(Backend::Sqlite, |c| {
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
        // Far longer than the waits below: only the watcher can explain a prompt delivery.
        c.feed.poll_interval = Duration::from_secs(60);
    })
    .await;
    app.create(&plant("first")).await;
    receiver.wait_for(1, WAIT).await;
    let db = app.sql().await;
    // Long enough for the watcher to slow down to its quiet pace; each insert comes after a quiet
    // spell, so each has to be seen anew.
    for (n, name) in ["Raw", "Raw again"].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        sqlx::query(
            "INSERT INTO power_plants (name, region, fuel, capacity_mw) VALUES ($1, 'eu', 'wind', 5)",
        )
        .bind(name)
        .execute(&db)
        .await
        .unwrap();
        let received = receiver.wait_for(n + 2, Duration::from_secs(5)).await;
        assert_eq!(received[n + 1].data()["after"]["name"], name);
    }
}
