//! Keeps the journal's writers notifying while, and only while, a reader of this process waits. The
//! journal trigger calls `pg_notify` only before the deadline in the sequence `plant_changes_awake`
//! (migration 0012), because a notifying commit takes a lock that serializes every notifying commit in
//! the database. While a reader waits, this task keeps the deadline ahead. When it finds the deadline
//! passed (a fresh arm), a writer may have looked while it was passed and will not notify: every such
//! writer held the journal's table lock before looking, so once the writers open now have ended, a
//! notification from here wakes every replica to read what they wrote.

use std::time::Duration;

use sqlx::postgres::PgPool;

use super::{CHANNEL, JOURNAL_WRITERS};
use crate::signal::Written;

/// How far ahead a reader moves the deadline; writers stop notifying this long after the last reader
/// stopped waiting.
const AWAKE_FOR: Duration = Duration::from_millis(300);

/// How often the deadline is moved while a reader waits: well within [`AWAKE_FOR`], so that a busy
/// machine rarely lets it pass.
const REFRESH: Duration = Duration::from_millis(100);

/// How soon the writers open at a fresh arm are looked at again, at first.
const FIRST_LOOK: Duration = Duration::from_millis(1);

/// Runs for as long as the store lives.
pub(super) async fn keep_awake(pool: PgPool, written: Written) {
    // Whether a fresh arm has yet to be announced: kept across errors, since the deadline may have been
    // moved before the announcement failed, and the next arm would not look fresh.
    let mut unannounced = false;
    loop {
        written.awaited().await;
        match arm(&pool, &mut unannounced).await {
            Ok(()) => tokio::time::sleep(REFRESH).await,
            Err(error) => {
                tracing::warn!(%error, "Cannot keep the journal's writers notifying; the feed polls meanwhile.");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Moves the deadline ahead; after a fresh arm, waits out the writers open then and notifies.
async fn arm(pool: &PgPool, unannounced: &mut bool) -> Result<(), sqlx::Error> {
    *unannounced |= !extend(pool).await?;
    if !*unannounced {
        return Ok(());
    }
    let mut open = writers(pool).await?;
    let mut pause = FIRST_LOOK;
    while !open.is_empty() {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(REFRESH);
        // A writer long open keeps the deadline from being moved by the loop above: move it here.
        let kept = extend(pool).await?;
        let now = writers(pool).await?;
        if kept {
            open.retain(|writer| now.contains(writer));
        } else {
            open = now;
        }
    }
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(pool)
        .await?;
    *unannounced = false;
    Ok(())
}

/// Moves the deadline [`AWAKE_FOR`] ahead; answers whether it had not passed yet.
async fn extend(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT plant_changes_await($1)")
        .bind(AWAKE_FOR.as_millis() as i64)
        .fetch_one(pool)
        .await
}

async fn writers(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(JOURNAL_WRITERS).fetch_all(pool).await
}
