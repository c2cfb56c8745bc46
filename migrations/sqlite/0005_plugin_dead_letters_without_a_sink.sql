-- A plugin failure's dead letter has no sink: its sink is NULL, which no configured sink can match,
-- instead of the empty string. SQLite cannot drop NOT NULL from a column, so the table is rebuilt with
-- its rows, its indexes and its id sequence (ids are never reused: AUTOINCREMENT).
CREATE TABLE deliveries_rebuilt (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    seq             INTEGER NOT NULL REFERENCES plant_changes (seq),
    sink            TEXT CHECK (sink <> ''),
    plant_id        TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_error      TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    delivered_at    TEXT,
    region          TEXT NOT NULL DEFAULT '',
    UNIQUE (seq, sink)
) STRICT;

INSERT INTO deliveries_rebuilt (id, seq, sink, plant_id, status, attempts, next_attempt_at, last_error,
                                created_at, delivered_at, region)
SELECT id, seq, nullif(sink, ''), plant_id, status, attempts, next_attempt_at, last_error, created_at,
       delivered_at, region
FROM deliveries;

DELETE FROM sqlite_sequence WHERE name = 'deliveries_rebuilt';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'deliveries_rebuilt', seq FROM sqlite_sequence WHERE name = 'deliveries';

DROP TABLE deliveries;
ALTER TABLE deliveries_rebuilt RENAME TO deliveries;

CREATE INDEX deliveries_pending ON deliveries (sink, id) WHERE status = 'pending';
CREATE INDEX deliveries_pending_by_plant ON deliveries (sink, plant_id, id) WHERE status = 'pending';
CREATE INDEX deliveries_pending_by_region ON deliveries (region) WHERE status = 'pending';
CREATE INDEX deliveries_dead ON deliveries (sink, id) WHERE status = 'dead';
CREATE INDEX deliveries_delivered ON deliveries (delivered_at) WHERE status = 'delivered';
