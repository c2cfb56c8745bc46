//! Capture from PostgreSQL's write-ahead log (`capture.mode = "wal"`). The switch ([`switch`]) drops
//! the journal triggers and creates what logical decoding needs: the publication `plant_monitor` of
//! `power_plants`, `REPLICA IDENTITY FULL` (so updates and deletes carry the whole old row) and a slot
//! with the built-in `pgoutput` plugin. The capture leader ([`stream`]) then turns the slot's changes
//! into the journal entries the triggers would have written, in commit order, storing how far it got
//! (`capture.lsn`) in the same transaction as the entries and confirming the slot only after that
//! commits: a crash in between makes the server send the transaction again, and the stored position
//! says it is journaled already.

mod pgoutput;
mod stream;
mod switch;

use async_trait::async_trait;
use tokio::sync::watch;

use super::PostgresStore;
use crate::{CaptureStatus, CaptureStore, Fence, StoreError};
use plant_monitor_core::config::CaptureMode;

/// The lease of the capture leader.
const CAPTURE_LEASE: &str = "capture";

/// The publication the slot decodes.
const PUBLICATION: &str = "plant_monitor";

/// The prefix of the transactional logical decoding message an API write's trace travels in (see
/// `plant_write_trace`, migration 0015).
const TRACE_PREFIX: &str = "plant_monitor.traceparent";

/// The prefix of a non-transactional message that asks the capture leader to say, in
/// `capture.marker`, when it has journaled every transaction committed before it.
const MARKER_PREFIX: &str = "plant_monitor.marker";

/// The prefix of the message the switch to `wal` writes in its transaction: transactions that ended
/// before it were journaled by the triggers.
const SWITCH_PREFIX: &str = "plant_monitor.capture";

#[async_trait]
impl CaptureStore for PostgresStore {
    async fn switch_capture(&self, mode: CaptureMode) -> Result<(), StoreError> {
        switch::one_at_a_time(self, async {
            match mode {
                CaptureMode::Wal => switch::to_wal(&self.pool).await,
                CaptureMode::Trigger => switch::to_trigger(self).await.map(drop),
            }
        })
        .await
    }

    async fn capture(&self, fence: &Fence, stop: watch::Receiver<bool>) -> Result<(), StoreError> {
        stream::capture(self, fence, stop).await
    }

    async fn capture_status(&self) -> Result<CaptureStatus, StoreError> {
        let (mode, slot, active, retained, lag): (
            String,
            Option<String>,
            Option<bool>,
            Option<i64>,
            Option<i64>,
        ) = sqlx::query_as(
            "SELECT c.mode, s.slot_name::text, s.active, \
                    (pg_current_wal_lsn() - s.restart_lsn)::bigint, \
                    (pg_current_wal_lsn() - s.confirmed_flush_lsn)::bigint \
             FROM capture c LEFT JOIN pg_replication_slots s ON s.slot_name = c.slot",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(CaptureStatus {
            mode,
            slot,
            active: active.unwrap_or(false),
            retained_bytes: retained.map(|bytes| bytes.max(0) as u64),
            lag_bytes: lag.map(|bytes| bytes.max(0) as u64),
        })
    }

    async fn drop_slot(&self) -> Result<Option<String>, StoreError> {
        switch::one_at_a_time(self, async {
            match switch::to_trigger(self).await? {
                Some(dropped) => Ok(Some(dropped)),
                None => switch::drop_slot(&self.pool).await,
            }
        })
        .await
    }
}
