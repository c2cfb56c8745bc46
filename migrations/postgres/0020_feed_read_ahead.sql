-- The feed reads its next batch while the last one is being recorded: the read leaves out the entries
-- of that batch (`in_flight`), still unprocessed until its record commits. Otherwise the same read as
-- 0016's, under the same SET clauses, so the same plan: it walks plant_changes_unprocessed in seq order
-- and steps over the in-flight entries, which the bounds check passes without searching the array for
-- every entry outside them.
CREATE FUNCTION plant_changes_to_feed(regions text[], lim bigint, in_flight bigint[])
RETURNS SETOF plant_changes
LANGUAGE plpgsql STABLE
SET enable_sort = off
SET enable_bitmapscan = off
AS $$
DECLARE
    lo bigint := (SELECT min(s) FROM unnest(in_flight) AS s);
    hi bigint := (SELECT max(s) FROM unnest(in_flight) AS s);
BEGIN
    -- A plant's entry waits while an earlier one of it, in a region this feed does not lead, is
    -- unprocessed (a plant that moved between regions). OFFSET 0 keeps that a probe per entry.
    RETURN QUERY
    SELECT c.* FROM plant_changes c
    WHERE c.processed_at IS NULL AND c.region = ANY (regions)
      AND (lo IS NULL OR c.seq NOT BETWEEN lo AND hi OR c.seq <> ALL (in_flight))
      AND NOT EXISTS (SELECT 1 FROM plant_changes e
                      WHERE e.plant_id = c.plant_id AND e.seq < c.seq
                        AND e.processed_at IS NULL AND e.region <> ALL (regions)
                      OFFSET 0)
    ORDER BY c.seq LIMIT lim;
END
$$;

DROP FUNCTION plant_changes_to_feed(text[], bigint);
