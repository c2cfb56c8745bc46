-- The PostgreSQL migration of this version keeps the sinks' figures as appended deltas, so that
-- concurrent writers of deliveries do not wait on one row per sink, and lets the planner inline the
-- functions that make the journal's images. SQLite has one writer at a time, and its images are made
-- by a view already; the version exists so both backends number alike.
SELECT 1;
