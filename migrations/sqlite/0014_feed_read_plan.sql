-- The PostgreSQL migration of this version fixes the plan of the feed's read, which PostgreSQL chose
-- from statistics that lag behind a burst. SQLite plans without table statistics unless ANALYZE is
-- run; the version exists so both backends number alike.
SELECT 1;
