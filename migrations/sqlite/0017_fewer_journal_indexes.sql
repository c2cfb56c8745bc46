-- One index fewer for every change to keep. Each index of the journal is a page more that a writer's
-- change copies into the WAL, and again when the feed marks the entry processed (a single-row insert
-- into power_plants wrote 9.2 WAL frames with capture on against 3.7 with it off; 8.2 without this
-- one). No query reads it: the feed's read, the lag and the keeper's probe for active regions go
-- through plant_changes_unprocessed_by_region, whose entries are in seq order within a region; the
-- probe for a plant's earlier entry through plant_changes_unprocessed_by_plant; the rest by seq, the
-- table's own key.
DROP INDEX plant_changes_unprocessed;
