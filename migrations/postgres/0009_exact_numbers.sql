-- The SQLite migration of this version makes plant images carry every REAL exactly. PostgreSQL's
-- to_jsonb already renders a double precision value as the shortest text that reads back as the same
-- double, so there is nothing to change here; the version exists so both backends number alike.
SELECT 1;
