-- What the feed did with each journal entry, and the outbox of deliveries it wrote.
--
-- Processed state is kept per row (processed_at), not as a high-water mark: with concurrent writers a
-- smaller seq can commit after a larger one, and "everything after the last seq read" would skip it.
-- The outcome, the event as the plugins left it, and its deliveries are written in one transaction.

ALTER TABLE plant_changes ADD COLUMN processed_at TEXT;
ALTER TABLE plant_changes ADD COLUMN outcome TEXT
    CHECK (outcome IN ('routed', 'unrouted', 'filtered', 'failed'));
-- The plugin that filtered or failed the event, and why it failed.
ALTER TABLE plant_changes ADD COLUMN outcome_plugin TEXT;
ALTER TABLE plant_changes ADD COLUMN outcome_reason TEXT;
-- The event's `data` object after the enrichers: what every sink receives.
ALTER TABLE plant_changes ADD COLUMN event TEXT;

CREATE INDEX plant_changes_unprocessed ON plant_changes (seq) WHERE processed_at IS NULL;

-- One row per event and sink. Rows are claimed per sink in id order, which is seq order per plant.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    seq             INTEGER NOT NULL REFERENCES plant_changes (seq),
    sink            TEXT NOT NULL,
    plant_id        TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_error      TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    delivered_at    TEXT,
    UNIQUE (seq, sink)
) STRICT;

CREATE INDEX deliveries_pending ON deliveries (sink, id) WHERE status = 'pending';
CREATE INDEX deliveries_pending_by_plant ON deliveries (sink, plant_id, id) WHERE status = 'pending';

-- Snapshots taken, so that "on-first-lease" means once per scope, not once per start.
CREATE TABLE feed_snapshots (
    scope    TEXT PRIMARY KEY NOT NULL,
    taken_at TEXT NOT NULL
) STRICT;
