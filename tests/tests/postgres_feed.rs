//! What only PostgreSQL can do to the feed, against the machine's real server: transactions that commit
//! out of `seq` order (SQLite has one writer at a time, so its commits are in order) must not make the
//! feed skip a change, and a commit by any SQL client (a COPY included, whatever its isolation level,
//! whenever it looked whether a reader waits) wakes the feed through LISTEN/NOTIFY. The service also
//! speaks TLS to the server when the URL asks for it.

use std::time::Duration;

use plant_monitor::domain::Plant;
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

/// A feed that polls once a minute, leads region us-west (its first plant delivered) and waits: only a
/// notification can explain a delivery within [`PROMPT`].
async fn idle_feed(receiver: &Receiver) -> (TestApp, sqlx::PgPool) {
    let app = TestApp::start_on(Backend::Postgres, |c| {
        c.sinks.insert("all".into(), sink(&receiver.url("/all")));
        c.feed.poll_interval = Duration::from_secs(60);
    })
    .await;
    let db = sqlx::PgPool::connect(app.config.database.url.expose())
        .await
        .unwrap();
    app.create(&plant("first")).await;
    receiver.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    (app, db)
}

const PROMPT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn rows_copied_in_by_another_sql_client_are_journaled_with_their_images_and_wake_the_feed() {
    let receiver = Receiver::start().await;
    let (app, db) = idle_feed(&receiver).await;
    let mut connection = db.acquire().await.unwrap();
    let mut copy = connection
        .copy_in_raw(
            "COPY power_plants (id, name, region, fuel, capacity_mw, output_mw) FROM STDIN",
        )
        .await
        .unwrap();
    copy.send(
        b"copy-1\tCopied\tus-west\tgas\t50\t\\N\ncopy-2\tAlso copied\tus-west\twind\t7.5\t2\n"
            .as_slice(),
    )
    .await
    .unwrap();
    assert_eq!(copy.finish().await.unwrap(), 2);

    let received = receiver.wait_for(3, PROMPT).await;
    assert_eq!(received[1].data()["after"]["name"], "Copied");
    assert_eq!(received[2].data()["after"]["output_mw"], 2.0);
    let entries = app.journal().await;
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[1]["kind"], "created");
    assert_eq!(entries[1]["before"], Value::Null);
    assert_eq!(entries[1]["after"]["version"], 1);
    assert_eq!(
        entries[1]["changed_fields"],
        serde_json::json!(["name", "region", "fuel", "capacity_mw", "status"])
    );
    assert_eq!(
        entries[2]["changed_fields"],
        serde_json::json!([
            "name",
            "region",
            "fuel",
            "capacity_mw",
            "output_mw",
            "status"
        ])
    );
}

/// The writer looks whether a reader waits while none does (the deadline is put back to the past in
/// the same statement), and commits only after the feed went back to waiting: the feed, arming
/// afresh, must wait for it to end and then look.
#[tokio::test]
async fn a_writer_that_saw_no_reader_waiting_still_wakes_the_feed_when_it_commits() {
    let receiver = Receiver::start().await;
    let (_app, db) = idle_feed(&receiver).await;
    let mut writer = db.begin().await.unwrap();
    sqlx::query(
        "WITH asleep AS (SELECT setval('plant_changes_awake', 0)) \
         INSERT INTO power_plants (name, region, fuel, capacity_mw) \
         SELECT 'Unseen', 'us-west', 'solar', 1 FROM asleep",
    )
    .execute(&mut *writer)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    writer.commit().await.unwrap();
    let received = receiver.wait_for(2, PROMPT).await;
    assert_eq!(received[1].data()["after"]["name"], "Unseen");
}

/// A REPEATABLE READ writer's snapshot is taken before the feed says it waits again: what the writer
/// reads of that must not come from its snapshot.
#[tokio::test]
async fn a_repeatable_read_writer_whose_snapshot_predates_the_wait_still_wakes_the_feed() {
    let receiver = Receiver::start().await;
    let (_app, db) = idle_feed(&receiver).await;
    let mut writer = db.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *writer)
        .await
        .unwrap();
    sqlx::query("SELECT setval('plant_changes_awake', 0)")
        .execute(&mut *writer)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    sqlx::query(
        "INSERT INTO power_plants (name, region, fuel, capacity_mw) \
         VALUES ('Snapshot', 'us-west', 'hydro', 3)",
    )
    .execute(&mut *writer)
    .await
    .unwrap();
    writer.commit().await.unwrap();
    let received = receiver.wait_for(2, PROMPT).await;
    assert_eq!(received[1].data()["after"]["name"], "Snapshot");
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

/// The journal keeps the rows its trigger saw, and the store makes their images and changed fields:
/// they must be what `plant_image` and `plant_changed_fields` make of the same rows on the server, at
/// every edge of a time (before the Common Era, year 0, leap days, the microsecond before a second,
/// five- and six-digit years) and of a field (escapes, extreme and negative-zero numbers, nulls).
#[tokio::test]
async fn journal_images_made_from_rows_are_the_images_the_server_makes() {
    let app = TestApp::start_on(Backend::Postgres, |_| {}).await;
    let db = sqlx::PgPool::connect(app.config.database.url.expose())
        .await
        .unwrap();
    sqlx::raw_sql(
        r#"INSERT INTO power_plants (id, name, region, fuel, capacity_mw, latitude, attributes)
             VALUES ('edge', E'Quote " backslash \\ tab \t newline \n ünï 😀', 'eu-north', 'wind',
                     1.7976931348623157e308, -90, '{"a\"b": "c\\d", "é": ""}');
           UPDATE power_plants SET output_mw = -0.0, capacity_mw = 5e-324, status = 'operational'
             WHERE id = 'edge';
           UPDATE power_plants SET attributes = '{}', latitude = NULL, longitude = 180,
             region = 'eu-south' WHERE id = 'edge';
           DELETE FROM power_plants WHERE id = 'edge';"#,
    )
    .execute(&db)
    .await
    .unwrap();
    let times = [
        "0044-03-15 12:34:56.789999+00 BC",
        "0001-12-31 23:59:59.999999+00 BC",
        "0001-01-01 00:00:00+00",
        "1969-12-31 23:59:59.999999+00",
        "1970-01-01 00:00:00+00",
        "2000-02-29 12:00:00.0005+00",
        "2024-02-29 23:59:59.9999+00",
        "9999-12-31 23:59:59.999+00",
        "10000-01-01 00:00:00+00",
        "294276-12-31 23:59:59.999999+00",
    ];
    for (n, time) in times.iter().enumerate() {
        sqlx::query(
            "INSERT INTO plant_changes (plant_id, region, kind, before_row, after_row) \
             SELECT 'timed', 'eu-north', 'updated', \
                    ROW('timed', 'Timed', 'eu-north', 'solar', 1, NULL, 'planned', NULL, NULL, \
                        '{}', $1, $2::timestamptz, $2::timestamptz)::power_plants, \
                    ROW('timed', 'Timed', 'eu-north', 'solar', 2, 1.5, 'offline', 0, 0, \
                        '{\"k\": \"v\"}', $1 + 1, $2::timestamptz, now())::power_plants",
        )
        .bind(n as i64 + 1)
        .bind(time)
        .execute(&db)
        .await
        .unwrap();
    }

    let servers: Vec<(i64, Option<String>, Option<String>, String)> = sqlx::query_as(
        "SELECT seq, CASE WHEN (before_row).id IS NOT NULL THEN plant_image(before_row)::text END, \
                CASE WHEN (after_row).id IS NOT NULL THEN plant_image(after_row)::text END, \
                plant_changed_fields(before_row, after_row)::text \
         FROM plant_changes ORDER BY seq",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let entries = app.journal().await;
    assert_eq!(entries.len(), 4 + times.len());
    // An image as the contract shows a plant: numbers as the API writes them (1.0, not jsonb's 1).
    let image = |text: Option<String>| {
        text.map_or(Value::Null, |text| {
            serde_json::to_value(serde_json::from_str::<Plant>(&text).unwrap()).unwrap()
        })
    };
    for (entry, (seq, before, after, changed)) in entries.iter().zip(servers) {
        assert_eq!(entry["seq"], seq);
        assert_eq!(entry["before"], image(before), "entry {seq}'s before");
        assert_eq!(entry["after"], image(after), "entry {seq}'s after");
        let changed: Value = serde_json::from_str(&changed).unwrap();
        assert_eq!(
            entry["changed_fields"], changed,
            "entry {seq}'s changed fields"
        );
    }
    assert_eq!(
        entries[4]["before"]["created_at"],
        "0044-03-15T12:34:56.789Z"
    );
    assert_eq!(
        entries[13]["before"]["updated_at"],
        "294276-12-31T23:59:59.999Z"
    );
}
