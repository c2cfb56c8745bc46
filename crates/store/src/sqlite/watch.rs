//! Wake-ups for commits made by other connections. SQLite has no notifications, but the
//! `PRAGMA data_version` a connection reads changes whenever another connection, of this process or
//! any other, has committed to the file since. While a reader of the journal waits, a connection of the
//! watcher's own reads it every millisecond, or every 16 ms once the file has not changed for a second;
//! a change wakes the readers. So a row any SQL client writes reaches the feed within a millisecond or
//! two of its commit rather than at the feed's next `poll_interval`, and an idle service reads an
//! in-memory counter 60 times a second. Reading it takes no lock and touches no page.

use std::time::{Duration, Instant};

use sqlx::SqlitePool;

use crate::signal::Written;

/// The pause between reads while the file changes.
const BUSY: Duration = Duration::from_millis(1);

/// The pause between reads once it has been quiet for [`QUIET_AFTER`].
const QUIET: Duration = Duration::from_millis(16);

const QUIET_AFTER: Duration = Duration::from_secs(1);

/// Watches the file through `pool` (one connection, kept: a new connection starts counting anew)
/// until the pool is closed.
pub(super) async fn watch(pool: SqlitePool, written: Written) {
    let mut seen: Option<i64> = None;
    let mut changed_at = Instant::now();
    loop {
        written.awaited().await;
        match sqlx::query_scalar::<_, i64>("PRAGMA data_version")
            .fetch_one(&pool)
            .await
        {
            Ok(version) => {
                if seen.is_some_and(|seen| seen != version) {
                    written.announce();
                    changed_at = Instant::now();
                }
                seen = Some(version);
            }
            Err(sqlx::Error::PoolClosed) => return,
            // The readers still poll at their own interval; the next read tries again.
            Err(error) => tracing::debug!(%error, "Cannot read the SQLite data version."),
        }
        let pause = if changed_at.elapsed() < QUIET_AFTER {
            BUSY
        } else {
            QUIET
        };
        tokio::time::sleep(pause).await;
    }
}
