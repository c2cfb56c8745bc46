//! `GET /v1/events/stream`, on each backend, read as a browser's `EventSource` reads it: the bytes of
//! a real response, split into events. Entries appear as `change` events in `seq` order and then as
//! `outcome` events; filters select; a reconnection with `Last-Event-ID` resumes with no gap and no
//! duplicate; a client that stops reading is dropped while the others and the feed go on; the
//! number of clients is capped; the token guards it as it guards the journal; and every replica
//! streams alike, one that leads no region included.

use std::collections::BTreeSet;
use std::time::Duration;

use plant_monitor::service::Service;
use plant_monitor_tests::{Backend, TestApp, WAIT, eventually, plant};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

plant_monitor_tests::on_every_backend! {
    a_plant_created_through_the_api_appears_as_a_change_event_within_a_second_and_then_as_an_outcome,
    filters_by_region_kind_and_plant_id_select_only_the_matching_entries,
    reconnecting_with_last_event_id_resumes_with_exactly_the_entries_after_it,
    a_client_that_stops_reading_is_dropped_while_another_receives_everything_and_the_feed_goes_on,
    clients_beyond_max_stream_clients_are_answered_503_until_one_leaves,
    with_protect_reads_the_stream_needs_the_token,
    parameters_the_stream_does_not_know_or_cannot_read_are_answered_400,
    an_entry_committed_after_one_with_a_larger_seq_is_still_streamed_in_seq_order,
    a_replica_that_leads_no_region_streams_the_entries_and_the_outcomes_of_the_leader,
    a_stream_outlives_the_request_timeout_and_ends_when_the_service_stops,
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct Sse {
    event: String,
    id: Option<u64>,
    data: String,
}

impl Sse {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("JSON data")
    }

    /// The entry's `seq`, read without parsing the rest: a journal entry's JSON starts with it.
    fn seq(&self) -> u64 {
        let digits = self.data.strip_prefix("{\"seq\":").expect("an entry");
        let end = digits.find(',').expect("more fields");
        digits[..end].parse().expect("a seq")
    }
}

/// A client reading one stream's response.
struct Client {
    response: reqwest::Response,
    buffer: String,
}

impl Client {
    /// Opens `/v1/events/stream` with `query` (`""` or `"?…"`) and `headers`, expecting 200.
    async fn open(app: &TestApp, query: &str, headers: &[(&str, &str)]) -> Client {
        let mut request = app.request(Method::GET, &format!("/v1/events/stream{query}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the server answers");
        assert_eq!(response.status(), 200, "{query}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Client::reading(response)
    }

    fn reading(response: reqwest::Response) -> Client {
        Client {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, or `None` when the stream ended or `limit` passed first.
    async fn next(&mut self, limit: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                _ => return None,
            }
        }
    }

    /// The next `count` events, failing the test if they do not come within [`WAIT`].
    async fn take(&mut self, count: usize) -> Vec<Sse> {
        let mut events = Vec::new();
        while events.len() < count {
            let event = self.next(WAIT).await;
            events.push(
                event.unwrap_or_else(|| {
                    panic!("{} events of {count} came: {events:#?}", events.len())
                }),
            );
        }
        events
    }

    /// The next `count` `change` events, skipping the outcomes.
    async fn changes(&mut self, count: usize) -> Vec<Sse> {
        let mut changes = Vec::new();
        while changes.len() < count {
            let event = self.next(WAIT).await.expect("a change event");
            if event.event == "change" {
                changes.push(event);
            }
        }
        changes
    }

    /// Fails the test if a `change` event comes within `quiet`.
    async fn no_change_within(&mut self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        while let Some(event) = self.next(left()).await {
            assert_ne!(event.event, "change", "nothing was to come: {event:?}");
        }
    }
}

/// An event from its lines; `None` for a block of comments only (the keep-alive).
fn parse(block: &str) -> Option<Sse> {
    let (mut event, mut id, mut data) = (None, None, None);
    for line in block.lines().filter(|line| !line.is_empty()) {
        match line.split_once(": ") {
            Some(("event", value)) => event = Some(value.to_owned()),
            Some(("id", value)) => id = Some(value.parse().expect("a numeric id")),
            Some(("data", value)) => data = Some(value.to_owned()),
            Some(("", _comment)) => {}
            _ => panic!("an unexpected line {line:?}"),
        }
    }
    Some(Sse {
        event: event?,
        id,
        data: data.expect("every event has data"),
    })
}

/// A plant of `region` and `fuel` named `name`.
fn plant_in(name: &str, region: &str) -> Value {
    let mut body = plant(name);
    body["region"] = json!(region);
    body
}

fn seqs(events: &[Sse]) -> Vec<u64> {
    events.iter().map(Sse::seq).collect()
}

async fn a_plant_created_through_the_api_appears_as_a_change_event_within_a_second_and_then_as_an_outcome(
    backend: Backend,
) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let mut client = Client::open(&app, "", &[]).await;
    let started = std::time::Instant::now();
    let created = app.create(&plant("Grand Coulee")).await;
    let change = client.next(Duration::from_secs(1)).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let change = change.expect("a change event within a second");
    assert_eq!(change.event, "change");
    let journal = app.journal().await;
    assert_eq!(change.id, Some(journal[0]["seq"].as_u64().unwrap()));
    let data = change.json();
    assert_eq!(data["after"], created);
    let mut unprocessed = journal[0].clone();
    if data["outcome"].is_null() {
        // As `/v1/changes` showed it when it was sent.
        unprocessed["outcome"] = Value::Null;
        assert_eq!(data, unprocessed);
        let outcome = client.next(WAIT).await.expect("an outcome event");
        assert_eq!(outcome.event, "outcome");
        assert_eq!(
            outcome.id, None,
            "an outcome does not move the resume position"
        );
        let outcome = outcome.json();
        assert_eq!(outcome["seq"], data["seq"]);
        assert_eq!(outcome["outcome"]["result"], "unrouted");
        assert_eq!(outcome, app.journal().await[0]);
    } else {
        // Processed before it was sent: the change carries its outcome, and no outcome event comes.
        assert_eq!(data, journal[0]);
    }
    client.no_change_within(Duration::from_millis(300)).await;
}

async fn filters_by_region_kind_and_plant_id_select_only_the_matching_entries(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let mut north = Client::open(&app, "?region=eu-north", &[]).await;
    let mut deletions = Client::open(&app, "?kind=deleted", &[]).await;
    let watched = app.create(&plant_in("Watched", "us-west")).await;
    let id = watched["id"].as_str().unwrap().to_owned();
    let mut one = Client::open(&app, &format!("?plant_id={id}&kind=updated"), &[]).await;
    let other = app.create(&plant_in("Hornsea", "eu-north")).await;
    app.patch(&id, r#"{"output_mw": 1.5}"#).await;
    app.patch(other["id"].as_str().unwrap(), r#"{"output_mw": 2.5}"#)
        .await;
    app.call(Method::DELETE, &format!("/v1/plants/{id}")).await;

    let north = north.changes(2).await;
    let entries: Vec<Value> = north.iter().map(Sse::json).collect();
    assert!(entries.iter().all(|e| e["region"] == "eu-north"));
    assert_eq!(
        entries.iter().map(|e| &e["kind"]).collect::<Vec<_>>(),
        ["created", "updated"]
    );
    let deleted = deletions.changes(1).await[0].json();
    assert_eq!(deleted["plant_id"], id.as_str());
    let updated = one.changes(1).await[0].json();
    assert_eq!(updated["plant_id"], id.as_str());
    assert_eq!(updated["kind"], "updated");
    assert_eq!(updated["after"]["output_mw"], 1.5);
    // Nothing else matched: the next change each would get is a later write's.
    let marker = app.create(&plant_in("Marker", "eu-north")).await;
    let next = one.next(Duration::from_millis(300)).await;
    assert!(
        next.as_ref().is_none_or(|e| e.event == "outcome"),
        "{next:?}"
    );
    let mut rest = Client::open(
        &app,
        "?region=eu-north",
        &[("last-event-id", &north[1].seq().to_string())],
    )
    .await;
    assert_eq!(rest.changes(1).await[0].json()["after"], marker);
}

async fn reconnecting_with_last_event_id_resumes_with_exactly_the_entries_after_it(
    backend: Backend,
) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let mut first = Client::open(&app, "", &[]).await;
    for n in 0..3 {
        app.create(&plant(&format!("before {n}"))).await;
    }
    let seen = first.changes(2).await;
    let last = seen[1].id.expect("a change has an id");
    drop(first);
    // Written while disconnected.
    for n in 0..3 {
        app.create(&plant(&format!("while away {n}"))).await;
    }
    let journal: Vec<u64> = (app.journal().await.iter())
        .map(|entry| entry["seq"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = journal.iter().copied().filter(|seq| *seq > last).collect();
    assert_eq!(expected.len(), 4);
    let mut resumed = Client::open(&app, "", &[("Last-Event-ID", &last.to_string())]).await;
    let mut got = resumed.changes(4).await;
    app.create(&plant("after")).await;
    got.extend(resumed.changes(1).await);
    let got_seqs = seqs(&got);
    assert_eq!(&got_seqs[..4], expected.as_slice(), "no gap, no duplicate");
    assert!(got_seqs[4] > got_seqs[3]);
    assert!(got.iter().all(|e| e.id == Some(e.seq())));
    resumed.no_change_within(Duration::from_millis(300)).await;

    // `after` for clients that cannot set the header; a header sent with it wins, as an EventSource
    // reconnecting to the URL it started with sends it.
    let mut by_query = Client::open(&app, &format!("?after={}", journal[0]), &[]).await;
    assert_eq!(seqs(&by_query.changes(2).await), &journal[1..3]);
    let mut both = Client::open(
        &app,
        &format!("?after={}", journal[0]),
        &[("Last-Event-ID", &journal[4].to_string())],
    )
    .await;
    assert_eq!(seqs(&both.changes(1).await), &journal[5..6]);
}

/// Enough entries, of about 2.5 kB each, to fill the sockets' buffers (at most 4 MiB here) and then a
/// client's buffer several times over.
const BULK: u64 = 3_000;

/// The entries written per statement: with their outcomes, fewer events than a client's buffer holds,
/// so a client that reads keeps up however fast the follower runs on this machine.
const CHUNK: u64 = 200;

async fn a_client_that_stops_reading_is_dropped_while_another_receives_everything_and_the_feed_goes_on(
    backend: Backend,
) {
    let app = TestApp::start_on(backend, |c| {
        c.server.max_stream_clients = 2.try_into().unwrap();
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(app.addr().parse().unwrap()).await.unwrap();
    stuck
        .write_all(b"GET /v1/events/stream HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reader = Client::open(&app, "", &[]).await;
    let (read, mut read_so_far) = tokio::sync::watch::channel(0usize);
    let reading = tokio::spawn(async move {
        // Entries sent unprocessed, whose outcome is still to come.
        let (mut changes, mut pending) = (Vec::new(), BTreeSet::new());
        while changes.len() < BULK as usize || !pending.is_empty() {
            let Some(event) = reader.next(WAIT).await else {
                break;
            };
            if event.event == "change" {
                changes.push(event.seq());
                read.send_replace(changes.len());
                if event.data.contains("\"outcome\":null") {
                    pending.insert(event.seq());
                }
            } else {
                assert!(
                    pending.remove(&event.seq()),
                    "one outcome per entry sent unprocessed"
                );
            }
        }
        (changes, pending)
    });
    let db = app.sql().await;
    let attributes = json!({"a": "x".repeat(500), "b": "y".repeat(500)});
    for first in (1..=BULK).step_by(CHUNK as usize) {
        let last = first + CHUNK - 1;
        sqlx::query(&format!(
            "WITH RECURSIVE n(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM n WHERE i < {last}) \
             INSERT INTO power_plants (name, region, fuel, capacity_mw, attributes) \
             SELECT 'Bulk ' || i, 'us-west', 'wind', i, '{attributes}' FROM n"
        ))
        .execute(&db)
        .await
        .unwrap();
        // The reader has this chunk's entries before the next is written (or the stream ended,
        // which the assertions below report).
        let _ =
            tokio::time::timeout(WAIT, read_so_far.wait_for(|read| *read >= last as usize)).await;
    }

    let (changes, pending) = reading.await.unwrap();
    assert_eq!(
        changes.len(),
        BULK as usize,
        "the reading client got every entry"
    );
    assert!(
        changes.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, none missing"
    );
    assert!(
        pending.is_empty(),
        "and every outcome, as the feed went on: {pending:?}"
    );

    // The stuck client was dropped: its connection is closed after what had been sent to it.
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, stuck.read_to_end(&mut got))
        .await
        .expect("the stuck client's connection is closed")
        .ok();
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.starts_with("HTTP/1.1 200"),
        "{}",
        &got[..got.len().min(200)]
    );
    let ids = got.matches("\nid: ").count();
    assert!(
        (1..BULK as usize).contains(&ids),
        "it got {ids} entries before it was dropped"
    );
    // Its place is free again.
    Client::open(&app, "", &[]).await;
}

async fn clients_beyond_max_stream_clients_are_answered_503_until_one_leaves(backend: Backend) {
    let app = TestApp::start_on(backend, |c| {
        c.server.max_stream_clients = 2.try_into().unwrap();
    })
    .await;
    let first = Client::open(&app, "", &[]).await;
    let _second = Client::open(&app, "", &[]).await;
    let refused = app.call(Method::GET, "/v1/events/stream").await;
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("max_stream_clients"),
        "{problem}"
    );
    // Other requests are not held up by the streams.
    assert_eq!(app.call(Method::GET, "/v1/changes").await.status(), 200);
    drop(first);
    // The server notices the departure when it next writes to it.
    let mut n = 0;
    eventually(WAIT, || {
        n += 1;
        let app = &app;
        async move {
            app.create(&plant(&format!("nudge {n}"))).await;
            let status = app.call(Method::GET, "/v1/events/stream").await.status();
            if status == 200 {
                Ok(())
            } else {
                Err(format!("still {status}"))
            }
        }
    })
    .await;
}

async fn with_protect_reads_the_stream_needs_the_token(backend: Backend) {
    let app = TestApp::start_on(backend, |c| {
        c.server.api_token = Some("s3cret".into());
        c.server.protect_reads = true;
    })
    .await;
    let refused = app.call(Method::GET, "/v1/events/stream").await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let mut client = Client::open(&app, "", &[("authorization", "Bearer s3cret")]).await;
    app.request(Method::POST, "/v1/plants")
        .bearer_auth("s3cret")
        .json(&plant("Guarded"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        client.changes(1).await[0].json()["after"]["name"],
        "Guarded"
    );

    // Without protect_reads the stream is open like the journal, whatever the token.
    let open = TestApp::start_on(backend, |c| c.server.api_token = Some("s3cret".into())).await;
    Client::open(&open, "", &[]).await;
}

async fn parameters_the_stream_does_not_know_or_cannot_read_are_answered_400(backend: Backend) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let refusals: [(&str, &[(&str, &str)]); 10] = [
        ("?fuel=wind", &[]),
        ("?kind=renamed", &[]),
        ("?after=-1", &[]),
        ("?after=18446744073709551615", &[]),
        ("", &[("last-event-id", "not-a-seq")]),
        ("", &[("last-event-id", "+12")]),
        ("", &[("last-event-id", "")]),
        ("", &[("last-event-id", "9223372036854775808")]),
        ("?after=9223372036854775808", &[("last-event-id", "1")]),
        ("?plant_id=%00", &[]),
    ];
    for (query, headers) in refusals {
        let mut request = app.request(Method::GET, &format!("/v1/events/stream{query}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{query} {headers:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    Client::open(&app, "", &[("last-event-id", "9223372036854775807")]).await;
}

async fn an_entry_committed_after_one_with_a_larger_seq_is_still_streamed_in_seq_order(
    backend: Backend,
) {
    let app = TestApp::start_on(backend, |_| {}).await;
    let mut client = Client::open(&app, "", &[]).await;
    let db = app.sql().await;
    for commit in [true, false] {
        let mut held = db.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO power_plants (name, region, fuel, capacity_mw) \
             VALUES ('Held', 'us-west', 'wind', 1)",
        )
        .execute(&mut *held)
        .await
        .unwrap();
        // On PostgreSQL this write commits first with the larger seq; on SQLite it waits its turn.
        let writing = {
            let client = app.client.clone();
            let url = app.url("/v1/plants");
            tokio::spawn(
                async move { client.post(url).json(&plant("Quick")).send().await.unwrap() },
            )
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The capture leader journals transactions as they commit: the quick one has the smaller seq
        // and nothing waits. Triggers journal at the insert: it must wait for the held one's seq.
        let in_commit_order = backend == Backend::PostgresWal;
        if !in_commit_order {
            client.no_change_within(Duration::from_millis(300)).await;
        }
        if commit {
            held.commit().await.unwrap();
        } else {
            held.rollback().await.unwrap();
        }
        assert_eq!(writing.await.unwrap().status(), 201);
        let names: Vec<String> = if commit {
            client.changes(2).await
        } else {
            client.changes(1).await
        }
        .iter()
        .map(|e| e.json()["after"]["name"].as_str().unwrap().to_owned())
        .collect();
        let expected: &[&str] = if commit && in_commit_order {
            &["Quick", "Held"]
        } else if commit {
            &["Held", "Quick"]
        } else {
            &["Quick"]
        };
        assert_eq!(names, expected, "committed: {commit}");
    }
}

async fn a_replica_that_leads_no_region_streams_the_entries_and_the_outcomes_of_the_leader(
    backend: Backend,
) {
    let leader = TestApp::start_on(backend, |_| {}).await;
    let mut config = leader.config.clone();
    config.feed.regions = vec!["elsewhere".into()];
    let standby = Service::start(&config).await.expect("the standby starts");
    let response = leader
        .client
        .get(format!("http://{}/v1/events/stream", standby.local_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut client = Client::reading(response);
    leader.create(&plant("Led elsewhere")).await;
    let change = client.take(1).await[0].clone();
    assert_eq!(change.event, "change");
    if change.json()["outcome"].is_null() {
        let outcome = client.take(1).await[0].clone();
        assert_eq!(outcome.event, "outcome");
        assert_eq!(outcome.json()["outcome"]["result"], "unrouted");
    }
    let leases: Value = (leader.client)
        .get(format!("http://{}/v1/leases", standby.local_addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = (leases["items"].as_array().unwrap().iter())
        .find(|lease| lease["region"] == "us-west")
        .expect("the region of the data is led");
    assert_ne!(
        data["holder"], leases["instance_id"],
        "the standby does not lead it: {leases}"
    );
    standby.shutdown().await.expect("the standby stops");
}

async fn a_stream_outlives_the_request_timeout_and_ends_when_the_service_stops(backend: Backend) {
    let app = TestApp::start_on(backend, |c| {
        c.server.request_timeout = Duration::from_millis(500);
        c.server.shutdown_grace = Duration::from_secs(10);
    })
    .await;
    let mut client = Client::open(&app, "", &[]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.create(&plant("Late")).await;
    assert_eq!(client.changes(1).await[0].json()["after"]["name"], "Late");
    let stopping = std::time::Instant::now();
    app.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "the stream held the shutdown for {:?}",
        stopping.elapsed()
    );
    while let Some(event) = client.next(WAIT).await {
        assert_eq!(event.event, "outcome", "{event:?}");
    }
}
