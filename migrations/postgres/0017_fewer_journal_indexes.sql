-- The SQLite migration of this version drops a journal index no query there reads. Every index of the
-- PostgreSQL journal is read: plant_changes_unprocessed by the feed's read (0014),
-- plant_changes_unprocessed_by_region by the keeper's probe for active regions (one skip per region,
-- which without it walked every unprocessed entry: 66-128 ms per probe behind a backlog of 20,000),
-- plant_changes_unprocessed_by_plant by the probe for a plant's earlier entry. The version exists so
-- both backends number alike.
SELECT 1;
