//! A fresh PostgreSQL database per test (or benchmark run), so tests run in parallel and leave nothing
//! behind. The server is the machine's (`PLANT_MONITOR_TEST_POSTGRES`, default
//! `postgres://root@127.0.0.1:5432/postgres`), or the one a benchmark is given.

use std::sync::atomic::{AtomicU32, Ordering};

/// A database created for one test and dropped with it.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin: String,
}

impl TestDatabase {
    /// A fresh database on the machine's server.
    pub async fn create() -> TestDatabase {
        let admin = std::env::var("PLANT_MONITOR_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into());
        TestDatabase::create_on(&admin)
            .await
            .expect("PostgreSQL is running (scripts/test starts it)")
    }

    /// A fresh database on the server the URL `admin` reaches (as a user that may create databases).
    pub async fn create_on(admin: &str) -> Result<TestDatabase, sqlx::Error> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        let name = format!(
            "pm_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let pool = sqlx::PgPool::connect(admin).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await?;
        pool.close().await;
        let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
        Ok(TestDatabase {
            url: format!("{base}/{name}"),
            name,
            admin: admin.to_owned(),
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread of its own can.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                    drop_slots(&pool, &name).await;
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&pool)
                        .await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// Drops the replication slots of database `name` (`wal` capture's), which would keep it from being
/// dropped, ending the sessions that stream from them first.
async fn drop_slots(pool: &sqlx::PgPool, name: &str) {
    for _ in 0..50 {
        let dropped = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM (SELECT CASE WHEN active THEN pg_terminate_backend(active_pid) \
                                              ELSE pg_drop_replication_slot(slot_name) IS NULL END \
                                   FROM pg_replication_slots WHERE database = $1) s",
        )
        .bind(name)
        .fetch_one(pool)
        .await;
        if !matches!(dropped, Ok(n) if n > 0) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
