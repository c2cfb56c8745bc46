-- Per-region feed leases, so several processes can share one database file with one feeding each region.
--
-- One row per lease, named `feed:<region>`. `epoch` rises on every acquisition, and every write a leader
-- makes first touches its lease row conditional on (holder, epoch): a deposed leader's write then finds
-- no row and is rolled back. Times come from the database clock only.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    epoch      INTEGER NOT NULL CHECK (epoch > 0),
    expires_at TEXT NOT NULL
) STRICT;

-- A region's leader delivers that region's deliveries, so each delivery carries its change's region.
ALTER TABLE deliveries ADD COLUMN region TEXT NOT NULL DEFAULT '';
UPDATE deliveries SET region = (SELECT c.region FROM plant_changes c WHERE c.seq = deliveries.seq);
CREATE INDEX deliveries_pending_by_region ON deliveries (region) WHERE status = 'pending';

-- A leader passes over a change while an earlier change of the same plant, in a region it does not
-- lead, is still unprocessed (the plant moved regions): per-plant order across leaders.
CREATE INDEX plant_changes_unprocessed_by_plant ON plant_changes (plant_id, seq)
    WHERE processed_at IS NULL;
CREATE INDEX plant_changes_unprocessed_by_region ON plant_changes (region)
    WHERE processed_at IS NULL;

-- Snapshots are now per region. One taken by the single feed of earlier versions (scope '*') counts
-- for every region it covered.
INSERT OR IGNORE INTO feed_snapshots (scope, taken_at)
    SELECT DISTINCT p.region, s.taken_at FROM power_plants p, feed_snapshots s WHERE s.scope = '*';
DELETE FROM feed_snapshots WHERE scope = '*';
