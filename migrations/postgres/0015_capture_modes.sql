-- Capture modes (`[capture] mode`). In "trigger" mode the journal triggers of 0012 write the journal in
-- each writer's transaction. In "wal" mode they are dropped and the capture leader (lease `capture`)
-- journals the changes a logical replication slot decodes (pgoutput) from the publication
-- `plant_monitor`, which the switch creates, as `plant-monitor migrate` does at run time (it needs
-- checks and a slot, which a migration cannot make). This row says which mode the database is in, and
-- in "wal" mode how far the slot's changes are journaled.
CREATE TABLE capture (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    mode text NOT NULL DEFAULT 'trigger' CHECK (mode IN ('trigger', 'wal')),
    -- "wal" mode: the slot, named after the database's oid since slots are shared by the whole server.
    slot text,
    -- "wal" mode: the end of the last transaction journaled from the slot, written in the same
    -- transaction as its entries, so that a leader starting anew skips exactly what is journaled. NULL
    -- until the transaction that switched to "wal" is decoded: transactions that ended before it were
    -- journaled by the triggers.
    lsn pg_lsn,
    -- "wal" mode: the last marker the capture leader has passed (a non-transactional logical decoding
    -- message with the prefix plant_monitor.marker): every transaction that committed before the
    -- marker was written is journaled once this names it.
    marker text
);

INSERT INTO capture DEFAULT VALUES;

-- The trace of an API write reaches the journal through the transaction-local setting that
-- plant_trace() reads, and in "wal" mode also through a transactional logical decoding message, which
-- the capture leader reads before the rows the transaction writes after it. True, so it can gate a
-- statement.
CREATE FUNCTION plant_write_trace(trace text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('plant_monitor.traceparent', coalesce(trace, ''), true);
    IF coalesce(trace, '') <> '' AND (SELECT mode FROM capture) = 'wal' THEN
        PERFORM pg_logical_emit_message(true, 'plant_monitor.traceparent', trace);
    END IF;
    RETURN true;
END
$$;

-- TRUNCATE removes rows without row or statement triggers firing and, decoded from the log, without
-- their images, so neither mode could journal the plants' deletions: it is refused in both, with the
-- way to do it instead.
CREATE FUNCTION power_plants_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of power_plants is refused: it would remove plants without journaling their deletion'
        USING ERRCODE = 'feature_not_supported',
              HINT = 'Use DELETE FROM power_plants, which journals each deleted plant.';
END
$$;

CREATE TRIGGER power_plants_refuse_truncate BEFORE TRUNCATE ON power_plants
FOR EACH STATEMENT EXECUTE FUNCTION power_plants_refuse_truncate();
