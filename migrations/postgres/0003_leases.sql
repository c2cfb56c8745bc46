-- Per-region feed leases (PostgreSQL). Same semantics as migrations/sqlite/0003.
--
-- One row per lease, named `feed:<region>`. `epoch` rises on every acquisition, and every write a leader
-- makes first touches its lease row conditional on (holder, epoch): a deposed leader's write then finds
-- no row and is rolled back. Times come from the database clock only.
CREATE TABLE leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    epoch      bigint NOT NULL CHECK (epoch > 0),
    expires_at timestamptz NOT NULL
);

-- A region's leader delivers that region's deliveries, so each delivery carries its change's region.
ALTER TABLE deliveries ADD COLUMN region text;
UPDATE deliveries d SET region = c.region FROM plant_changes c WHERE c.seq = d.seq;
ALTER TABLE deliveries ALTER COLUMN region SET NOT NULL;
CREATE INDEX deliveries_pending_by_region ON deliveries (region) WHERE status = 'pending';

-- A leader passes over a change while an earlier change of the same plant, in a region it does not
-- lead, is still unprocessed (the plant moved regions): per-plant order across leaders.
CREATE INDEX plant_changes_unprocessed_by_plant ON plant_changes (plant_id, seq)
    WHERE processed_at IS NULL;
CREATE INDEX plant_changes_unprocessed_by_region ON plant_changes (region)
    WHERE processed_at IS NULL;

-- Snapshots are now per region. One taken by the single feed of earlier versions (scope '*') counts
-- for every region it covered.
INSERT INTO feed_snapshots (scope, taken_at)
    SELECT DISTINCT p.region, s.taken_at FROM power_plants p, feed_snapshots s WHERE s.scope = '*'
    ON CONFLICT (scope) DO NOTHING;
DELETE FROM feed_snapshots WHERE scope = '*';
