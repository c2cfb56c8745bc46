//! Switching a database's capture mode, which `migrate` does to match `capture.mode`, either way
//! while writers run.
//!
//! To `wal`, while writers run: the slot is created first, so the log it keeps starts before the
//! switch; then one transaction takes a lock on `power_plants` that waits for every writer in flight
//! and holds off new ones until it commits, drops the journal triggers, and writes a logical decoding
//! message. Every transaction that changed plants before that commit was journaled by the triggers,
//! and every one after it is decoded after the message: the capture leader skips what comes before
//! the message and journals what comes after, so no change is lost or journaled twice.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;

use super::{CAPTURE_LEASE, MARKER_PREFIX, PUBLICATION, SWITCH_PREFIX, stream};
use crate::postgres::PostgresStore;
use crate::{Acquisition, Fence, LeaseStore, StoreError};
use plant_monitor_core::config::CaptureMode;

/// The journal triggers of migrations 0012 and 0013, `power_plants_journal_<action>`: the action,
/// its event and the transition tables the function reads.
const JOURNAL_TRIGGERS: [(&str, &str, &str); 3] = [
    ("insert", "INSERT", "NEW TABLE AS new_rows"),
    (
        "update",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    ),
    ("delete", "DELETE", "OLD TABLE AS old_rows"),
];

/// Waits for every writer of `power_plants` in flight and holds new ones off until `tx` ends: SHARE ROW
/// EXCLUSIVE conflicts with every writer's ROW EXCLUSIVE, and with itself, so two switches do not
/// interleave either.
async fn hold_writers(tx: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("LOCK TABLE power_plants IN SHARE ROW EXCLUSIVE MODE")
        .execute(tx)
        .await?;
    Ok(())
}

/// Writes, in `tx`, the message that tells the capture leader the database is in `mode` from this
/// transaction's commit on (read in `stream`).
async fn announce(tx: &mut PgConnection, mode: CaptureMode) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_logical_emit_message(true, $1, $2)::text")
        .bind(SWITCH_PREFIX)
        .bind(mode.as_str())
        .execute(tx)
        .await?;
    Ok(())
}

/// The advisory lock a switch holds while it runs: "plant_mo" in ASCII, a key nothing else in the
/// database locks.
const SWITCH_LOCK: i64 = 0x706c_616e_745f_6d6f;

/// Runs `switch` while this process holds [`SWITCH_LOCK`]. Replicas started together each switch the
/// database to their configured mode: one at a time, each sees what the one before did, instead of
/// two of them creating the same publication or slot. The lock is held by a connection of its own,
/// outside the pool the switch uses, and ends with it if this process dies.
pub(super) async fn one_at_a_time<T>(
    store: &PostgresStore,
    switch: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let mut lock = PgConnection::connect(store.url.expose()).await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(SWITCH_LOCK)
        .execute(&mut lock)
        .await?;
    let result = switch.await;
    // Ending the session ends the lock, whether it ends politely or not.
    drop(lock.close().await);
    result
}

fn unavailable(reason: impl Into<String>) -> StoreError {
    StoreError::CaptureUnavailable {
        reason: reason.into(),
    }
}

/// Switches the database to `wal` capture; nothing to do if it is in that mode already.
pub(super) async fn to_wal(pool: &PgPool) -> Result<(), StoreError> {
    let (mode, slot): (String, Option<String>) = sqlx::query_as("SELECT mode, slot FROM capture")
        .fetch_one(pool)
        .await?;
    if mode == "wal" {
        return match slot_exists(pool, slot.as_deref()).await? {
            true => Ok(()),
            false => Err(unavailable(format!(
                "the database is in wal capture but its replication slot {} is gone, so changes \
                 made since it was dropped are not in the journal",
                slot.as_deref().unwrap_or("(none)")
            ))),
        };
    }
    check_server(pool).await?;
    let published: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
            .bind(PUBLICATION)
            .fetch_one(pool)
            .await?;
    if !published {
        sqlx::query(&format!(
            "CREATE PUBLICATION {PUBLICATION} FOR TABLE power_plants"
        ))
        .execute(pool)
        .await?;
    }
    sqlx::query("ALTER TABLE power_plants REPLICA IDENTITY FULL")
        .execute(pool)
        .await?;
    // Slots belong to the whole server, databases do not: the name says which database.
    let slot: String = sqlx::query_scalar(
        "SELECT 'plant_monitor_' || oid FROM pg_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    if !slot_exists(pool, Some(&slot)).await? {
        sqlx::query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')")
            .bind(&slot)
            .execute(pool)
            .await?;
    }
    let mut tx = pool.begin().await?;
    hold_writers(&mut tx).await?;
    for (action, _, _) in JOURNAL_TRIGGERS {
        sqlx::query(&format!(
            "DROP TRIGGER IF EXISTS power_plants_journal_{action} ON power_plants"
        ))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE capture SET mode = 'wal', slot = $1, lsn = NULL")
        .bind(&slot)
        .execute(&mut *tx)
        .await?;
    announce(&mut tx, CaptureMode::Wal).await?;
    tx.commit().await?;
    tracing::info!(slot, "Switched the journal to wal capture.");
    Ok(())
}

/// Switches the database back to trigger capture; nothing to do if it is in that mode.
///
/// First, while writers go on, the capture leader catches up with the log as it is: whatever
/// backlog it has is journaled before writers are held off, so they wait only for what was written
/// meanwhile. Then one transaction takes the lock on `power_plants` that holds writers off, and writes
/// a marker to the log: once the capture leader has passed it, every change committed before is
/// journaled. If no
/// leader holds the `capture` lease, this process takes it and journals up to the marker itself. Then
/// the same transaction brings the journal triggers back and says so in a message, after which the
/// leader journals nothing more; writers go on when it commits, journaled by the triggers. The slot is
/// dropped if no session streams from it any more (else `plant-monitor capture drop-slot` drops it):
/// its name if it was.
pub(super) async fn to_trigger(store: &PostgresStore) -> Result<Option<String>, StoreError> {
    let mode: String = sqlx::query_scalar("SELECT mode FROM capture")
        .fetch_one(&store.pool)
        .await?;
    if mode != "wal" {
        return Ok(None);
    }
    let token = mark(&mut *store.pool.acquire().await?).await?;
    drain(store, &token, CATCH_UP_WAIT).await?;
    let mut tx = store.pool.begin().await?;
    hold_writers(&mut tx).await?;
    // The transaction waits on the drain (other connections) for up to DRAIN_WAIT.
    sqlx::query("SET LOCAL idle_in_transaction_session_timeout = '60s'")
        .execute(&mut *tx)
        .await?;
    let token = mark(&mut tx).await?;
    drain(store, &token, DRAIN_WAIT).await?;
    for (action, event, tables) in JOURNAL_TRIGGERS {
        sqlx::query(&format!(
            "CREATE TRIGGER power_plants_journal_{action} AFTER {event} ON power_plants \
             REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION power_plants_journal()"
        ))
        .execute(&mut *tx)
        .await?;
    }
    // Whole old rows made every update and delete write more log; only the slot needed them.
    sqlx::query("ALTER TABLE power_plants REPLICA IDENTITY DEFAULT")
        .execute(&mut *tx)
        .await?;
    let slot: Option<String> = sqlx::query_scalar(
        "UPDATE capture SET mode = 'trigger', lsn = NULL, marker = NULL \
         FROM (SELECT slot FROM capture) old RETURNING old.slot",
    )
    .fetch_one(&mut *tx)
    .await?;
    announce(&mut tx, CaptureMode::Trigger).await?;
    tx.commit().await?;
    tracing::info!("Switched the journal back to trigger capture.");
    let dropped: bool = sqlx::query_scalar(
        "SELECT count(pg_drop_replication_slot(slot_name)) > 0 FROM pg_replication_slots \
         WHERE slot_name = $1 AND NOT active",
    )
    .bind(&slot)
    .fetch_one(&store.pool)
    .await?;
    if !dropped {
        tracing::warn!(
            slot,
            "The replication slot is still streamed from; `plant-monitor capture drop-slot` drops it."
        );
    }
    Ok(slot.filter(|_| dropped))
}

/// How long a switch back waits for the capture leader to catch up with the log before writers are
/// held off: its whole backlog.
const CATCH_UP_WAIT: Duration = Duration::from_secs(600);

/// How long a switch back waits, holding writers off, for the capture leader to journal what came
/// before it.
const DRAIN_WAIT: Duration = Duration::from_secs(30);

/// Writes a marker to the log, which the capture leader copies to `capture.marker` when it gets
/// there (non-transactional: decoded where it is written, even inside a transaction); its token.
async fn mark(connection: &mut PgConnection) -> Result<String, StoreError> {
    let token = uuid::Uuid::new_v4().to_string();
    sqlx::query("SELECT pg_logical_emit_message(false, $1, $2)::text")
        .bind(MARKER_PREFIX)
        .bind(&token)
        .execute(connection)
        .await?;
    Ok(token)
}

/// Returns once the capture leader has passed the marker `token`, within `wait`: the one that holds
/// the lease, or this process if none does.
async fn drain(store: &PostgresStore, token: &str, wait: Duration) -> Result<(), StoreError> {
    let holder = format!("switch-{token}");
    let passed = async {
        loop {
            let marker: Option<String> = sqlx::query_scalar("SELECT marker FROM capture")
                .fetch_one(&store.pool)
                .await?;
            if marker.as_deref() == Some(token) {
                return Ok::<(), StoreError>(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let drained = match store
        // Held no longer than a drain under the lock may take, so that if this process dies the
        // capture leader is back soon; its fence holds until another process takes the lease.
        .acquire_lease(CAPTURE_LEASE, &holder, DRAIN_WAIT)
        .await?
    {
        Acquisition::Acquired { epoch } => {
            let fence = Fence {
                lease: CAPTURE_LEASE.into(),
                holder,
                epoch,
            };
            let (_stop, stopped) = watch::channel(false);
            let drained = tokio::time::timeout(wait, async {
                tokio::select! {
                    passed = passed => passed,
                    captured = stream::capture(store, &fence, stopped) => captured,
                }
            })
            .await;
            store.release_lease(&fence).await?;
            drained
        }
        Acquisition::Held { .. } => tokio::time::timeout(wait, passed).await,
    };
    match drained {
        Ok(result) => result,
        Err(_) => Err(unavailable(format!(
            "the capture leader did not journal the changes before the switch within {wait:?}"
        ))),
    }
}

async fn slot_exists(pool: &PgPool, slot: Option<&str>) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
    )
    .bind(slot)
    .fetch_one(pool)
    .await?)
}

/// What logical decoding needs of the server and the role, each explained when missing.
async fn check_server(pool: &PgPool) -> Result<(), StoreError> {
    let (wal_level, role, may_replicate): (String, String, bool) = sqlx::query_as(
        "SELECT current_setting('wal_level'), current_user::text, \
                (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)",
    )
    .fetch_one(pool)
    .await?;
    if wal_level != "logical" {
        return Err(unavailable(format!(
            "capture.mode = \"wal\" needs the server's wal_level = logical, and it is {wal_level}: \
             run ALTER SYSTEM SET wal_level = logical as a superuser and restart PostgreSQL"
        )));
    }
    if !may_replicate {
        return Err(unavailable(format!(
            "capture.mode = \"wal\" needs a role that may replicate, and {role} may not: run \
             ALTER ROLE {role} REPLICATION as a superuser (pg_hba.conf must also allow it \
             replication connections)"
        )));
    }
    Ok(())
}

/// Drops the database's replication slot, ending the session that streams from it if there is one;
/// its name, if there was one to drop. Only in trigger capture: in `wal` capture the slot is the
/// journal's source.
pub(super) async fn drop_slot(pool: &PgPool) -> Result<Option<String>, StoreError> {
    let (mode, slot): (String, Option<String>) = sqlx::query_as("SELECT mode, slot FROM capture")
        .fetch_one(pool)
        .await?;
    if mode == "wal" {
        return Err(unavailable(
            "the database is in wal capture, whose source the slot is: switch it to trigger \
             capture first",
        ));
    }
    for _ in 0..50 {
        let (exists, active_pid): (bool, Option<i32>) = sqlx::query_as(
            "SELECT count(*) > 0, max(active_pid) FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(&slot)
        .fetch_one(pool)
        .await?;
        match (exists, active_pid) {
            (false, _) => return Ok(None),
            (true, Some(pid)) => {
                sqlx::query("SELECT pg_terminate_backend($1)")
                    .bind(pid)
                    .execute(pool)
                    .await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (true, None) => {
                sqlx::query("SELECT pg_drop_replication_slot($1)")
                    .bind(&slot)
                    .execute(pool)
                    .await?;
                return Ok(slot);
            }
        }
    }
    Err(unavailable(format!(
        "the replication slot {} stays in use",
        slot.as_deref().unwrap_or_default()
    )))
}
