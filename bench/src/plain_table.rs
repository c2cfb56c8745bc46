//! "Capture off": a copy of `power_plants` in the same database with the same columns, defaults,
//! checks, indexes and guard triggers, but none of the triggers that journal. It is derived from the
//! live schema when the run starts, not from a list of trigger names, because the journal's triggers
//! change between migrations: a trigger is a journal trigger when it writes anything, a guard when it
//! only checks (SQLite), or, on PostgreSQL, when it runs after the row or its function names the
//! journal.

use sqlx::AnyPool;

/// The copy's name.
pub const PLAIN: &str = "power_plants_plain";

/// Creates [`PLAIN`] beside `power_plants`.
pub async fn create(pool: &AnyPool, postgres: bool) -> anyhow::Result<()> {
    let statements = if postgres {
        postgres_copy(pool).await?
    } else {
        sqlite_copy(pool).await?
    };
    for statement in statements {
        sqlx::raw_sql(&statement).execute(pool).await?;
    }
    Ok(())
}

async fn sqlite_copy(pool: &AnyPool) -> anyhow::Result<Vec<String>> {
    let schema: Vec<(String, String)> = sqlx::query_as(
        "SELECT type, sql FROM sqlite_master WHERE tbl_name = 'power_plants' AND sql IS NOT NULL \
         ORDER BY type = 'table' DESC, type = 'index' DESC",
    )
    .fetch_all(pool)
    .await?;
    anyhow::ensure!(
        schema.iter().any(|(kind, _)| kind == "table"),
        "no power_plants table"
    );
    Ok(schema
        .into_iter()
        .filter(|(kind, sql)| kind != "trigger" || only_checks(sql))
        // Index and trigger names are global in SQLite, so every name that contains the table's is
        // renamed with it.
        .map(|(_, sql)| sql.replace("power_plants", PLAIN))
        .collect())
}

/// Whether a SQLite trigger's body writes nothing: it can only check and raise.
fn only_checks(sql: &str) -> bool {
    let upper = sql.to_uppercase();
    let body = upper.split_once("BEGIN").map_or("", |(_, body)| body);
    !["INSERT", "UPDATE", "DELETE", "REPLACE"]
        .iter()
        .any(|write| body.contains(write))
}

async fn postgres_copy(pool: &AnyPool) -> anyhow::Result<Vec<String>> {
    // BEFORE row triggers whose function neither journals nor notifies: the one that sets the
    // server-owned fields (version, timestamps) is kept, as every writer pays it with capture off too.
    let triggers: Vec<(String,)> = sqlx::query_as(
        "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid \
         WHERE t.tgrelid = 'power_plants'::regclass AND NOT t.tgisinternal \
           AND (t.tgtype & 2) <> 0 \
           AND p.prosrc NOT LIKE '%plant_changes%' AND p.prosrc NOT LIKE '%pg_notify%' \
         ORDER BY t.tgname",
    )
    .fetch_all(pool)
    .await?;
    let mut statements = vec![format!(
        "CREATE TABLE {PLAIN} (LIKE power_plants INCLUDING ALL)"
    )];
    statements.extend(triggers.into_iter().map(|(definition,)| {
        definition
            .replace(" ON public.power_plants ", &format!(" ON {PLAIN} "))
            .replace(" ON power_plants ", &format!(" ON {PLAIN} "))
    }));
    Ok(statements)
}
