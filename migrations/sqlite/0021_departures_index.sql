-- One index fewer for every captured write. plant_changes_unprocessed_by_plant held every unprocessed
-- entry so that a leader could find a plant's earlier entry in a region it does not lead (per-plant
-- order across leaders). Keeping it cost each single-row write a page more in the WAL and a B-tree
-- insert: with synchronous = FULL, writers into power_plants committed at 0.69-0.74 of capture off
-- with it and 0.84-0.85 without it (Python, bound parameters, alternating rounds of 1,500 commits).
--
-- A plant's entries can only sit in a region a leader does not lead if the plant left that region:
-- an update that moved it, or a delete (after which the same id may be created elsewhere). Only those
-- entries, the departures, are indexed by plant. Since a leader never processes a plant's entry while
-- an earlier one is unprocessed, a plant's unprocessed entries are the last of its history, and the
-- regions they lie in are the departures' own regions and the regions the moves left, where the
-- feed's read looks for the plant through plant_changes_unprocessed_by_region.
DROP INDEX plant_changes_unprocessed_by_plant;
CREATE INDEX plant_changes_unprocessed_departures ON plant_changes (plant_id, seq)
    WHERE processed_at IS NULL
      AND (kind = 'deleted' OR (kind = 'updated' AND before_region IS NOT region));
