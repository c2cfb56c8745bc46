-- Each sink's outbox figures (pending, delivered, dead, failed attempts), kept current by triggers as
-- deliveries are written, change and are pruned, by this service or any SQL client, so that reading them
-- (GET /v1/sinks) costs one row per sink however large the outbox grows. The figures are exactly what
-- counting the outbox's rows gives; a plugin's dead letter (no sink) counts for no sink.
CREATE TABLE sink_counts (
    sink      TEXT PRIMARY KEY,
    pending   INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    dead      INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0
) STRICT;

INSERT INTO sink_counts (sink, pending, delivered, dead, failed)
SELECT sink, sum(status = 'pending'), sum(status = 'delivered'), sum(status = 'dead'),
       sum(attempts - (status = 'delivered'))
FROM deliveries WHERE sink IS NOT NULL GROUP BY sink;

CREATE TRIGGER deliveries_counted_in AFTER INSERT ON deliveries WHEN new.sink IS NOT NULL
BEGIN
    INSERT INTO sink_counts (sink, pending, delivered, dead, failed)
    VALUES (new.sink, new.status = 'pending', new.status = 'delivered', new.status = 'dead',
            new.attempts - (new.status = 'delivered'))
    ON CONFLICT (sink) DO UPDATE SET pending = pending + excluded.pending,
        delivered = delivered + excluded.delivered, dead = dead + excluded.dead,
        failed = failed + excluded.failed;
END;

CREATE TRIGGER deliveries_counted_out AFTER DELETE ON deliveries WHEN old.sink IS NOT NULL
BEGIN
    UPDATE sink_counts SET pending = pending - (old.status = 'pending'),
        delivered = delivered - (old.status = 'delivered'), dead = dead - (old.status = 'dead'),
        failed = failed - (old.attempts - (old.status = 'delivered'))
    WHERE sink = old.sink;
END;

-- A rescheduled delivery (next_attempt_at alone) changes no figure and fires nothing.
CREATE TRIGGER deliveries_recounted AFTER UPDATE OF sink, status, attempts ON deliveries
BEGIN
    UPDATE sink_counts SET pending = pending - (old.status = 'pending'),
        delivered = delivered - (old.status = 'delivered'), dead = dead - (old.status = 'dead'),
        failed = failed - (old.attempts - (old.status = 'delivered'))
    WHERE sink = old.sink;
    INSERT INTO sink_counts (sink, pending, delivered, dead, failed)
    SELECT new.sink, new.status = 'pending', new.status = 'delivered', new.status = 'dead',
           new.attempts - (new.status = 'delivered')
    WHERE new.sink IS NOT NULL
    ON CONFLICT (sink) DO UPDATE SET pending = pending + excluded.pending,
        delivered = delivered + excluded.delivered, dead = dead + excluded.dead,
        failed = failed + excluded.failed;
END;
