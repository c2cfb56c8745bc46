-- The W3C trace context of the write that caused each change, sent on every sink request for it. The
-- API writes its request's trace into write_trace inside the write's transaction and removes it before
-- the commit, so no other connection ever sees it; a change written by any other client starts a
-- trace of its own. Entries journaled before this migration have none.

CREATE TABLE write_trace (
    only        INTEGER PRIMARY KEY CHECK (only = 1),
    traceparent TEXT NOT NULL
);

ALTER TABLE plant_changes ADD COLUMN traceparent TEXT;

CREATE TRIGGER plant_changes_trace AFTER INSERT ON plant_changes
WHEN NEW.traceparent IS NULL
BEGIN
    UPDATE plant_changes
       SET traceparent = coalesce(
               (SELECT traceparent FROM write_trace),
               '00-' || lower(hex(randomblob(16))) || '-' || lower(hex(randomblob(8))) || '-01')
     WHERE seq = NEW.seq;
END;
