-- Backfills: `snapshot` entries journaled again for the plants a filter matches, delivered to chosen
-- sinks only. A backfill walks the matching plants in id order, a batch per transaction, and keeps the
-- id of the last plant it journaled (`last_plant_id`) with the entries, so a restart or another
-- replica goes on from there: no plant is skipped or journaled twice. Its entries carry its id, which
-- tells the feed to deliver them to the backfill's sinks instead of the routers' choice.

CREATE TABLE backfills (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- {"region"?, "fuel"?, "status"?, "ids"?: [...]}: what a plant must match.
    filter        TEXT NOT NULL CHECK (json_valid(filter) AND json_type(filter) = 'object'),
    -- The sink names, a JSON array.
    sinks         TEXT NOT NULL CHECK (json_valid(sinks) AND json_type(sinks) = 'array'),
    -- The plants matching when it was created; the number journaled once it is done.
    total         INTEGER NOT NULL CHECK (total >= 0),
    last_plant_id TEXT,
    emitted       INTEGER NOT NULL DEFAULT 0 CHECK (emitted >= 0),
    state         TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at   TEXT
) STRICT;

CREATE INDEX backfills_running ON backfills (id) WHERE state = 'running';

ALTER TABLE plant_changes ADD COLUMN backfill_id INTEGER REFERENCES backfills (id);

-- A backfill's progress: its entries not yet fed (the rest are done, however long retention keeps them).
CREATE INDEX plant_changes_unprocessed_by_backfill ON plant_changes (backfill_id)
    WHERE backfill_id IS NOT NULL AND processed_at IS NULL;
