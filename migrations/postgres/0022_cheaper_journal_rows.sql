-- A journal row that costs its writer less. Every captured statement runs the journal trigger's
-- INSERT, and perf over 8 pgbench writers (single-row inserts, 2 cores) put the trigger at 18 % of
-- the machine: 5.1 % in its four index inserts, 2.1 % in the journal's CHECK constraints, which
-- the executor reads back from their stored text (stringToNode) for every statement.
--
-- The CHECKs on kind and outcome go. Only the service writes those columns, always from a closed
-- set of words (the triggers', the log decoder's and the snapshots' constants, the feed's outcome
-- kinds), and the service's reader refuses any other word as it decodes the entry.
--
-- The index of every unprocessed entry by plant becomes SQLite's departures (its 0021). It was for
-- one question: has the plant an earlier entry in a region the leader does not lead (per-plant order
-- across leaders)? A plant's entries can only sit in such a region if the plant left it: an update
-- that moved it, or a delete (after which the same id may be created elsewhere). Only those
-- entries, the departures, are indexed by plant. An entry journaled before migration 12 names the
-- region a move left only in its JSON image.
--
-- pgbench, single-row inserts into power_plants against its plain copy, three alternating rounds
-- each: 8 writers 0.70 -> 0.76 of capture off (the CHECKs and the index about 0.03 each), 1 writer
-- 0.80 -> 0.83. With the trace below as well, bench capture's 8 writers went from 0.69-0.71 to
-- 0.75-0.76 (BENCHMARKS.md, "PostgreSQL's journal rows cheaper to write").
ALTER TABLE plant_changes DROP CONSTRAINT plant_changes_kind_check,
                          DROP CONSTRAINT plant_changes_outcome_check;
DROP INDEX plant_changes_unprocessed_by_plant;
CREATE INDEX plant_changes_unprocessed_departures ON plant_changes (plant_id, seq)
    WHERE processed_at IS NULL
      AND (kind = 'deleted'
           OR (kind = 'updated'
               AND coalesce((before_row).region, before ->> 'region') IS DISTINCT FROM region));

-- The read of 0020, with the probe for a plant's earlier entry outside the led regions through the
-- departures. A leader never processes a plant's entry while an earlier one is unprocessed, so a
-- plant's unprocessed entries are the last of its history. An entry waits while a departure up to it
-- is itself outside the led regions, or moved the plant from a region outside them while the entry
-- before the move, the plant's last in that region, is unprocessed (found through
-- plant_changes_by_plant, one step back).
CREATE OR REPLACE FUNCTION plant_changes_to_feed(regions text[], lim bigint, in_flight bigint[])
RETURNS SETOF plant_changes
LANGUAGE plpgsql STABLE
SET enable_sort = off
SET enable_bitmapscan = off
AS $$
DECLARE
    lo bigint := (SELECT min(s) FROM unnest(in_flight) AS s);
    hi bigint := (SELECT max(s) FROM unnest(in_flight) AS s);
BEGIN
    RETURN QUERY
    SELECT c.* FROM plant_changes c
    WHERE c.processed_at IS NULL AND c.region = ANY (regions)
      AND (lo IS NULL OR c.seq NOT BETWEEN lo AND hi OR c.seq <> ALL (in_flight))
      AND NOT EXISTS (
          SELECT 1 FROM plant_changes d
          WHERE d.plant_id = c.plant_id AND d.seq <= c.seq
            AND d.processed_at IS NULL
            AND (d.kind = 'deleted'
                 OR (d.kind = 'updated'
                     AND coalesce((d.before_row).region, d.before ->> 'region') IS DISTINCT FROM d.region))
            AND (d.region <> ALL (regions)
                 OR coalesce((d.before_row).region, d.before ->> 'region') <> ALL (regions)
                    AND (SELECT e.processed_at IS NULL FROM plant_changes e
                         WHERE e.plant_id = d.plant_id AND e.seq < d.seq
                         ORDER BY e.seq DESC LIMIT 1))
          OFFSET 0)
    ORDER BY c.seq LIMIT lim;
END
$$;

-- A transaction that brought no trace gets one when its entries are read, not when they are
-- written: each entry stores its transaction's id, and plant_traceparent makes the trace from it and
-- the transaction's start (committed_at) with a secret of this database, so every entry of one
-- transaction has the same trace, any reader sees the same, and no two transactions share one
-- (ids repeat only in another cluster, such as a restored copy, and never at the same microsecond).
-- plant_trace(), the column's default until now, made a random trace per transaction at write time
-- and kept it in a setting for the transaction's other rows: two random UUIDs, their text and a
-- setting's stack, 1.3 % of the machine under 8 writers. The column is added without a default and
-- given one after, so no existing row is rewritten; those keep the trace they were written with.
ALTER TABLE plant_changes ADD COLUMN xact xid8;
ALTER TABLE plant_changes ALTER COLUMN xact SET DEFAULT pg_current_xact_id(),
                          ALTER COLUMN traceparent DROP DEFAULT;

DO $$
BEGIN
    EXECUTE format($f$
        CREATE FUNCTION plant_traceparent(recorded text, xact xid8, began timestamptz) RETURNS text
        LANGUAGE sql STABLE AS $b$
            SELECT coalesce(recorded,
                            '00-' || md5(%1$L || xact::text || '@' || extract(epoch FROM began)::text)
                            || '-' || left(md5(extract(epoch FROM began)::text || '@' || xact::text
                                               || %1$L), 16)
                            || '-01')
        $b$
    $f$, gen_random_uuid()::text);
END
$$;

CREATE OR REPLACE FUNCTION power_plants_journal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- An unset custom setting reads as NULL, or as '' once a transaction of the session has set it.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO plant_changes (plant_id, region, kind, after_row, traceparent)
        SELECT n.id, n.region, 'created', ROW(n.*)::power_plants,
               nullif(current_setting('plant_monitor.traceparent', true), '')
        FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        -- The version rises exactly when a plant's own fields changed; ids cannot change.
        INSERT INTO plant_changes (plant_id, region, kind, before_row, after_row, traceparent)
        SELECT n.id, n.region, 'updated', ROW(o.*)::power_plants, ROW(n.*)::power_plants,
               nullif(current_setting('plant_monitor.traceparent', true), '')
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE n.version IS DISTINCT FROM o.version;
    ELSE
        INSERT INTO plant_changes (plant_id, region, kind, before_row, traceparent)
        SELECT o.id, o.region, 'deleted', ROW(o.*)::power_plants,
               nullif(current_setting('plant_monitor.traceparent', true), '')
        FROM old_rows o;
    END IF;
    -- After the insert: its table lock is what a reader arming its wake-up waits out.
    IF FOUND AND pg_sequence_last_value('plant_changes_awake')
                 > (extract(epoch FROM clock_timestamp()) * 1000)::bigint THEN
        PERFORM pg_notify('plant_changes', '');
    END IF;
    RETURN NULL;
END
$$;

DROP FUNCTION plant_trace();
