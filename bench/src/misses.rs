//! What the naive poller misses that the journal does not: one workload on one database, consumed at
//! once by the service (one sink, no plugins) and by the poller of [`crate::baseline`], each to its
//! own path on one receiver. It deletes plants, updates some plants several times within one poll
//! interval, and commits an update whose `updated_at` is older than a change already polled (a
//! transaction that began before another one and commits after it; on SQLite writers take turns, so
//! there the second writer waits and the order holds).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use plant_monitor::service::Service;
use tokio::sync::watch;

use crate::database::Database;
use crate::paced::POLL;
use crate::recorder::{Received, Recorder};

const KEPT: u32 = 10;
const DELETED: u32 = 10;
const REPEATED: u32 = 3;
const UPDATES_EACH: u32 = 5;

/// Changes of one kind: how many were made and how many each consumer received.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub made: u64,
    pub plant_monitor: u64,
    pub naive: u64,
}

/// The three kinds of change the poller cannot see.
#[derive(Debug, Clone, Copy)]
pub struct Misses {
    pub deletes: Seen,
    pub repeated_updates: Seen,
    pub out_of_order: Seen,
}

pub async fn measure(admin: Option<&str>) -> anyhow::Result<Misses> {
    let recorder = Recorder::default();
    let receiver = recorder.start().await?;
    let dir = tempfile::tempdir()?;
    let database = Database::open(admin, dir.path(), "misses.db").await?;
    let config = database.service_config(
        dir.path(),
        "ours",
        serde_json::json!({ "url": format!("http://{receiver}/ours") }),
    )?;
    let service = Service::start(&config).await?;
    let (stop, stopping) = watch::channel(false);
    let poller = tokio::spawn(crate::baseline::run(
        database.writers(1).await?,
        admin.is_some(),
        format!("http://{receiver}/naive"),
        POLL,
        stopping,
    ));
    let pool = database.writers(2).await?;
    let result = workload(&pool, &recorder).await;
    let _ = stop.send(true);
    poller.await??;
    service.shutdown().await?;
    pool.close().await;
    drop(database);
    result?;
    let received = recorder.received()?;
    let seen = |prefix: &str, made: u64, counts: fn(&Received) -> bool| Seen {
        made,
        plant_monitor: distinct(&received, "/ours", prefix, counts),
        naive: distinct(&received, "/naive", prefix, counts),
    };
    Ok(Misses {
        deletes: seen("del-", DELETED.into(), |r| r.kind == "deleted"),
        repeated_updates: seen("multi-", (REPEATED * UPDATES_EACH).into(), |r| {
            r.version > 1
        }),
        out_of_order: seen("ooo-", 1, |r| r.version > 1),
    })
}

/// Distinct (plant, kind, version) changes that came to `path` about plants named `prefix…`.
fn distinct(received: &[Received], path: &str, prefix: &str, counts: fn(&Received) -> bool) -> u64 {
    received
        .iter()
        .filter(|r| r.path == path && r.plant_id.starts_with(prefix) && counts(r))
        .map(|r| (&r.plant_id, &r.kind, r.version))
        .collect::<HashSet<_>>()
        .len() as u64
}

async fn workload(pool: &sqlx::AnyPool, recorder: &Recorder) -> anyhow::Result<()> {
    let ids: Vec<String> = (0..KEPT)
        .map(|i| format!("keep-{i}"))
        .chain((0..DELETED).map(|i| format!("del-{i}")))
        .chain((0..REPEATED).map(|i| format!("multi-{i}")))
        .chain(["ooo-0".to_owned()])
        .collect();
    let mut tx = pool.begin().await?;
    for id in &ids {
        sqlx::query(
            "INSERT INTO power_plants (id, name, region, fuel, capacity_mw) VALUES ($1, 'P', 'north', 'wind', 10)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    // Both consumers have every plant before the changes start: what follows is all that differs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_paths(recorder)? < 2 * ids.len() {
        anyhow::ensure!(Instant::now() < deadline, "the creates did not arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let update = "UPDATE power_plants SET output_mw = $1 WHERE id = $2";
    for i in 0..REPEATED {
        for n in 1..=UPDATES_EACH {
            sqlx::query(update)
                .bind(f64::from(n))
                .bind(format!("multi-{i}"))
                .execute(pool)
                .await?;
        }
    }
    sqlx::query("DELETE FROM power_plants WHERE id LIKE 'del-%'")
        .execute(pool)
        .await?;

    // The older transaction updates first and commits last, after a poll has seen the younger one.
    let mut older = pool.begin().await?;
    sqlx::query(update)
        .bind(1.0)
        .bind("ooo-0")
        .execute(&mut *older)
        .await?;
    let younger = {
        let pool = pool.clone();
        tokio::spawn(async move {
            sqlx::query(update)
                .bind(2.0)
                .bind("keep-0")
                .execute(&pool)
                .await
        })
    };
    tokio::time::sleep(POLL + POLL / 2).await;
    older.commit().await?;
    younger.await??;

    // Two more polls, and every journal entry delivered.
    tokio::time::sleep(POLL * 2 + POLL / 2).await;
    let expected_ours = ids.len() as u64 + u64::from(DELETED + REPEATED * UPDATES_EACH) + 2;
    let deadline = Instant::now() + Duration::from_secs(30);
    while (recorder
        .received()?
        .iter()
        .filter(|r| r.path == "/ours")
        .count() as u64)
        < expected_ours
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the service did not deliver every change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Creates received, counted per consumer.
fn count_paths(recorder: &Recorder) -> anyhow::Result<usize> {
    Ok(recorder
        .received()?
        .iter()
        .map(|r| (&r.path, &r.plant_id))
        .collect::<HashSet<_>>()
        .len())
}
