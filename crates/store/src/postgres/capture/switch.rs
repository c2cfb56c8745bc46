//! Switching a database's capture mode, which `migrate` does to match `capture.mode`.
//!
//! To `wal`, while writers run: the slot is created first, so the log it keeps starts before the
//! switch; then one transaction takes a lock on `power_plants` that waits for every writer in flight
//! and holds off new ones until it commits, drops the journal triggers, and writes a logical decoding
//! message. Every transaction that changed plants before that commit was journaled by the triggers,
//! and every one after it is decoded after the message: the capture leader skips what comes before
//! the message and journals what comes after, so no change is lost or journaled twice.

use sqlx::PgPool;

use super::{PUBLICATION, SWITCH_PREFIX};
use crate::StoreError;

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
    // SHARE ROW EXCLUSIVE conflicts with every writer's ROW EXCLUSIVE, and with itself, so two
    // switches do not interleave either.
    sqlx::query("LOCK TABLE power_plants IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    for trigger in [
        "power_plants_journal_insert",
        "power_plants_journal_update",
        "power_plants_journal_delete",
    ] {
        sqlx::query(&format!("DROP TRIGGER IF EXISTS {trigger} ON power_plants"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE capture SET mode = 'wal', slot = $1, lsn = NULL")
        .bind(&slot)
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_logical_emit_message(true, $1, 'wal')")
        .bind(SWITCH_PREFIX)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(slot, "Switched the journal to wal capture.");
    Ok(())
}

/// Leaving `wal` capture needs the slot drained up to the switch before the triggers return, which is
/// not built yet: a database in `wal` capture stays there, and says so, rather than losing changes.
pub(super) async fn refuse_leaving_wal(pool: &PgPool) -> Result<(), StoreError> {
    let mode: String = sqlx::query_scalar("SELECT mode FROM capture")
        .fetch_one(pool)
        .await?;
    match mode.as_str() {
        "wal" => Err(unavailable(
            "the database is in wal capture, and switching it back to trigger capture is not \
             supported yet: keep capture.mode = \"wal\"",
        )),
        _ => Ok(()),
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
