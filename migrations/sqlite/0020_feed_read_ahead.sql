-- The PostgreSQL migration of this version gives the feed's read, a function there, the entries to
-- leave out while the last batch is being recorded. SQLite's read is a query the store sends, which
-- says so itself; the version exists so both backends number alike.
SELECT 1;
