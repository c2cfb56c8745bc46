//! The database a benchmark runs on: an SQLite file, or a PostgreSQL database created for the run and
//! dropped with it (the tests' [`TestDatabase`], so creating and dropping one exists once).

use plant_monitor_tests::TestDatabase;

/// The database under test.
pub enum Database {
    Sqlite(String),
    Postgres(TestDatabase),
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
            Some(admin) => Ok(Database::Postgres(TestDatabase::create_on(admin).await?)),
            None => Ok(Database::Sqlite(format!(
                "sqlite://{}",
                dir.join(file).display()
            ))),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Database::Sqlite(url) => url,
            Database::Postgres(database) => &database.url,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "SQLite",
            Database::Postgres(_) => "PostgreSQL",
        }
    }
}
