-- The PostgreSQL migration of this version lets the server keep the plan of the feed's read between
-- reads. SQLite's prepared statements keep theirs already; the version exists so both backends number
-- alike.
SELECT 1;
