-- Capture modes (`[capture] mode`): PostgreSQL's "wal" mode reads a logical replication slot and needs
-- schema of its own there. SQLite has no such log to read, so its journal triggers stay the only mode,
-- and `DELETE FROM power_plants` without a WHERE fires them for every row (SQLite's truncate
-- optimization is off on a table with triggers). This version exists so both backends carry the same.
SELECT 1;
