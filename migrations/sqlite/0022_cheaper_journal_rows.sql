-- The PostgreSQL migration of this version makes its journal rows cheaper to write: it drops the
-- CHECKs its executor reads back from their text for every statement (SQLite compiles them into the
-- cached trigger program once) and makes its index by plant the departures SQLite's 0021 made. The
-- version exists so both backends number alike.
SELECT 1;
