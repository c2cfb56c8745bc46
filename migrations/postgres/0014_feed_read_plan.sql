-- The feed's read of the unprocessed entries of its regions, in seq order, as a function whose SET
-- clauses fix its plan. As a plain query the planner chose from the table's statistics, and during a
-- burst those describe the journal as it was at its last ANALYZE (autovacuum looks once a minute):
-- with a journal last analyzed nearly empty, each read of 500 entries went through every unprocessed
-- entry by the region index and sorted them, 180 ms with 20,000 waiting against 9 ms walking the seq
-- index, so a burst cost the square of its size. Here the read walks plant_changes_unprocessed in seq
-- order and stops at the limit, whatever the statistics say.
CREATE FUNCTION plant_changes_to_feed(regions text[], lim bigint) RETURNS SETOF plant_changes
LANGUAGE sql STABLE
SET enable_sort = off
SET enable_bitmapscan = off
AS $$
    -- A plant's entry waits while an earlier one of it, in a region this feed does not lead, is
    -- unprocessed (a plant that moved between regions). OFFSET 0 keeps that a probe per entry.
    SELECT c.* FROM plant_changes c
    WHERE c.processed_at IS NULL AND c.region = ANY (regions)
      AND NOT EXISTS (SELECT 1 FROM plant_changes e
                      WHERE e.plant_id = c.plant_id AND e.seq < c.seq
                        AND e.processed_at IS NULL AND e.region <> ALL (regions)
                      OFFSET 0)
    ORDER BY c.seq LIMIT lim
$$;
