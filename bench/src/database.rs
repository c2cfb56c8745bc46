//! The database a benchmark runs on: an SQLite file, or a PostgreSQL database created for the run and
//! dropped after it.

/// The database under test; a PostgreSQL one is created for the run and dropped after it.
pub enum Database {
    Sqlite(String),
    Postgres {
        admin: String,
        name: String,
        url: String,
    },
}

impl Database {
    /// A PostgreSQL database on the server `admin` reaches when given, else the SQLite file `file` in
    /// `dir`.
    pub async fn open(
        admin: Option<&str>,
        dir: &std::path::Path,
        file: &str,
    ) -> anyhow::Result<Database> {
        match admin {
            Some(admin) => Database::postgres(admin).await,
            None => Ok(Database::Sqlite(format!(
                "sqlite://{}",
                dir.join(file).display()
            ))),
        }
    }

    pub async fn postgres(admin: &str) -> anyhow::Result<Database> {
        let name = format!("pm_bench_{}", std::process::id());
        let pool = sqlx::PgPool::connect(admin).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await?;
        let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
        Ok(Database::Postgres {
            admin: admin.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    pub fn url(&self) -> &str {
        match self {
            Database::Sqlite(url) | Database::Postgres { url, .. } => url,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "SQLite",
            Database::Postgres { .. } => "PostgreSQL",
        }
    }

    pub async fn drop(self) -> anyhow::Result<()> {
        if let Database::Postgres { admin, name, .. } = self {
            let pool = sqlx::PgPool::connect(&admin).await?;
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&pool)
                .await?;
        }
        Ok(())
    }
}
