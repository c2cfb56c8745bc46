-- Backfills (PostgreSQL). Same semantics as migrations/sqlite/0011: `snapshot` entries journaled again
-- for the plants a filter matches, a batch per transaction in plant id order from `last_plant_id` on,
-- delivered to the backfill's sinks instead of the routers' choice.

CREATE TABLE backfills (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    filter        jsonb NOT NULL CHECK (jsonb_typeof(filter) = 'object'),
    sinks         jsonb NOT NULL CHECK (jsonb_typeof(sinks) = 'array'),
    total         bigint NOT NULL CHECK (total >= 0),
    last_plant_id text,
    emitted       bigint NOT NULL DEFAULT 0 CHECK (emitted >= 0),
    state         text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

CREATE INDEX backfills_running ON backfills (id) WHERE state = 'running';

ALTER TABLE plant_changes ADD COLUMN backfill_id bigint REFERENCES backfills (id);

CREATE INDEX plant_changes_unprocessed_by_backfill ON plant_changes (backfill_id)
    WHERE backfill_id IS NOT NULL AND processed_at IS NULL;
