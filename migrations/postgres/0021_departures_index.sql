-- The SQLite migration of this version replaces its index of every unprocessed entry by plant with
-- one of the entries by which a plant left a region, a page fewer for every captured write there.
-- PostgreSQL's journal keeps its index by plant: the change was measured on SQLite only. The version
-- exists so both backends number alike.
SELECT 1;
