-- What the feed did with each journal entry, and the outbox of deliveries (PostgreSQL). Same semantics
-- as migrations/sqlite/0002. Processed state is per row, not a high-water mark: under concurrent commits
-- a smaller seq can become visible after a larger one, and "everything after the last seq read" would
-- skip it.

ALTER TABLE plant_changes
    ADD COLUMN processed_at timestamptz,
    ADD COLUMN outcome text CHECK (outcome IN ('routed', 'unrouted', 'filtered', 'failed')),
    ADD COLUMN outcome_plugin text,
    ADD COLUMN outcome_reason text,
    -- The event's `data` object after the enrichers, as text: sinks get these exact bytes every time.
    ADD COLUMN event text;

CREATE INDEX plant_changes_unprocessed ON plant_changes (seq) WHERE processed_at IS NULL;

CREATE TABLE deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq             bigint NOT NULL REFERENCES plant_changes (seq),
    sink            text NOT NULL,
    plant_id        text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (seq, sink)
);

CREATE INDEX deliveries_pending ON deliveries (sink, id) WHERE status = 'pending';
CREATE INDEX deliveries_pending_by_plant ON deliveries (sink, plant_id, id) WHERE status = 'pending';

CREATE TABLE feed_snapshots (
    scope    text PRIMARY KEY,
    taken_at timestamptz NOT NULL
);
