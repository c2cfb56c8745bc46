//! Leases on SQLite: each acquisition, renewal and release one conditional statement on the database
//! clock. A release wakes this process's standby loop at once; other processes on the file find out by
//! polling.

use std::time::Duration;

use async_trait::async_trait;

use super::{SqliteStore, seconds_modifier};
use crate::decode::decode_lease;
use crate::{Acquisition, Fence, Lease, LeaseStore, StoreError, shared};

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn active_regions(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(shared::ACTIVE_REGIONS)
            .fetch_all(&self.leases)
            .await?)
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Acquisition, StoreError> {
        let _own = self.own.begin();
        let epoch: Option<i64> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, epoch, expires_at) \
             VALUES (?1, ?2, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3)) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = leases.epoch + 1, \
               expires_at = excluded.expires_at \
             WHERE leases.expires_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
               OR leases.holder = excluded.holder \
             RETURNING epoch",
        )
        .bind(name)
        .bind(holder)
        .bind(seconds_modifier(ttl))
        .fetch_optional(&self.leases)
        .await?;
        if let Some(epoch) = epoch {
            return Ok(Acquisition::Acquired {
                epoch: epoch as u64,
            });
        }
        let (holder, remaining): (String, f64) = sqlx::query_as(
            "SELECT holder, max(0.0, (julianday(expires_at) - julianday('now')) * 86400.0) \
             FROM leases WHERE name = ?1",
        )
        .bind(name)
        .fetch_optional(&self.leases)
        .await?
        .unwrap_or_default();
        Ok(Acquisition::Held {
            holder,
            remaining: Duration::from_secs_f64(remaining),
        })
    }

    async fn renew_lease(&self, fence: &Fence, ttl: Duration) -> Result<bool, StoreError> {
        let _own = self.own.begin();
        let renewed = sqlx::query(
            "UPDATE leases SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?4) \
             WHERE name = ?1 AND holder = ?2 AND epoch = ?3",
        )
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.epoch as i64)
        .bind(seconds_modifier(ttl))
        .execute(&self.leases)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release_lease(&self, fence: &Fence) -> Result<(), StoreError> {
        let _own = self.own.begin();
        sqlx::query(
            "UPDATE leases SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
             WHERE name = ?1 AND holder = ?2 AND epoch = ?3",
        )
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.epoch as i64)
        .execute(&self.leases)
        .await?;
        crate::signal::announce_release(&self.released);
        Ok(())
    }

    async fn wait_for_lease_release(&self, at_most: Duration) -> bool {
        tokio::time::timeout(at_most, self.released.notified())
            .await
            .is_ok()
    }

    async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, holder, epoch, expires_at, \
             expires_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS held FROM leases ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_lease).collect()
    }
}
