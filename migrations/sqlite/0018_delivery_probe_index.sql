-- The PostgreSQL migration of this version gives the sinks' probe for a plant's earlier delivery an
-- index no other condition can claim. SQLite's planner already takes deliveries_pending_by_plant for
-- it, preferring the index with more equality constraints; the version exists so both backends
-- number alike.
SELECT 1;
