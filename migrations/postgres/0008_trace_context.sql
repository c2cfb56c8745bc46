-- The W3C trace context of the write that caused each change, sent on every sink request for it. The
-- API sets plant_monitor.traceparent for the write's transaction only; any other transaction gets a
-- trace of its own, shared by every change it makes. Entries journaled before this migration have none.

CREATE FUNCTION plant_trace() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    trace text := current_setting('plant_monitor.traceparent', true);
BEGIN
    -- An unset custom setting reads as NULL, or as '' once a transaction of the session has set it.
    IF trace IS NULL OR trace = '' THEN
        trace := '00-' || replace(gen_random_uuid()::text, '-', '') || '-'
                 || left(replace(gen_random_uuid()::text, '-', ''), 16) || '-01';
        PERFORM set_config('plant_monitor.traceparent', trace, true);
    END IF;
    RETURN trace;
END
$$;

ALTER TABLE plant_changes ADD COLUMN traceparent text;
ALTER TABLE plant_changes ALTER COLUMN traceparent SET DEFAULT plant_trace();
