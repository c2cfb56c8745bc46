-- Costs on the path from a commit to its delivery, found by logging every statement of a run at
-- 1,000 changes/s (1, 2), and one of the writers' (3).
--
-- 1. Each sink's figures without a row every writer waits for. Since 0006 the count trigger added a
-- statement's moves to the sink's one row in sink_counts, so the feed's transaction (new deliveries
-- of every sink) waited on the row lock of each sink whose worker was recording results, until that
-- transaction's commit had been flushed: at 1,000 changes/s the feed's insert of deliveries took
-- 2.4 ms instead of 0.3, and every change waited behind it. Now the trigger appends a row of deltas,
-- which locks nothing another writer needs; readers add the deltas to the folded figures, and
-- sink_counts_fold() moves the deltas into sink_counts (on every read of the figures and on every
-- retention run), taking only the folders' locks. Same figures as migrations/sqlite/0006, which needs
-- none of this: SQLite has one writer at a time.
CREATE TABLE sink_count_deltas (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sink      text NOT NULL,
    pending   bigint NOT NULL,
    delivered bigint NOT NULL,
    dead      bigint NOT NULL,
    failed    bigint NOT NULL
);

-- Static statements, one per operation, where 0006 built one with format() and EXECUTE: a dynamic
-- statement is parsed and planned at every call, which made each write of deliveries cost 0.5 ms more.
CREATE OR REPLACE FUNCTION count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sink_count_deltas (sink, pending, delivered, dead, failed)
        SELECT sink, count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'delivered'),
               count(*) FILTER (WHERE status = 'dead'), sum(attempts - (status = 'delivered')::int)
        FROM rows_in WHERE sink IS NOT NULL GROUP BY sink;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO sink_count_deltas (sink, pending, delivered, dead, failed)
        SELECT sink, -count(*) FILTER (WHERE status = 'pending'), -count(*) FILTER (WHERE status = 'delivered'),
               -count(*) FILTER (WHERE status = 'dead'), -sum(attempts - (status = 'delivered')::int)
        FROM rows_out WHERE sink IS NOT NULL GROUP BY sink;
    ELSE
        INSERT INTO sink_count_deltas (sink, pending, delivered, dead, failed)
        SELECT sink, sum(sign * (status = 'pending')::int), sum(sign * (status = 'delivered')::int),
               sum(sign * (status = 'dead')::int), sum(sign * (attempts - (status = 'delivered')::int))
        FROM (SELECT sink, status, attempts, 1 AS sign FROM rows_in
              UNION ALL SELECT sink, status, attempts, -1 AS sign FROM rows_out) moved
        WHERE sink IS NOT NULL GROUP BY sink
        -- A reschedule moves no figure: no delta.
        HAVING sum(sign * (status = 'pending')::int) <> 0 OR sum(sign * (status = 'delivered')::int) <> 0
            OR sum(sign * (status = 'dead')::int) <> 0
            OR sum(sign * (attempts - (status = 'delivered')::int)) <> 0;
    END IF;
    RETURN NULL;
END $$;

-- Moves the committed deltas into sink_counts. Two folds at once cannot count a delta twice: the second
-- waits for the first's row locks on the deltas, and then finds them deleted. Sinks are updated in name
-- order, so two folds cannot deadlock.
CREATE FUNCTION sink_counts_fold() RETURNS void LANGUAGE sql AS $$
    WITH moved AS (DELETE FROM sink_count_deltas RETURNING sink, pending, delivered, dead, failed)
    INSERT INTO sink_counts AS c (sink, pending, delivered, dead, failed)
    SELECT sink, sum(pending), sum(delivered), sum(dead), sum(failed) FROM moved GROUP BY sink ORDER BY sink
    ON CONFLICT (sink) DO UPDATE SET pending = c.pending + excluded.pending,
        delivered = c.delivered + excluded.delivered, dead = c.dead + excluded.dead,
        failed = c.failed + excluded.failed
$$;

-- The figures as readers see them: folded and not yet folded alike.
CREATE VIEW sink_totals (sink, pending, delivered, dead, failed) AS
SELECT sink, sum(pending)::bigint, sum(delivered)::bigint, sum(dead)::bigint, sum(failed)::bigint
FROM (SELECT sink, pending, delivered, dead, failed FROM sink_counts
      UNION ALL SELECT sink, pending, delivered, dead, failed FROM sink_count_deltas) AS figures
GROUP BY sink;

-- 2. The journal's images and changed fields as expressions the planner inlines into the feed's read.
-- plant_time was declared IMMUTABLE over to_char, which is only STABLE, so it could not be inlined, nor
-- could plant_image around it; plant_changed_fields aggregated over a VALUES list. Functions that are
-- not inlined are planned again by every query that calls them: 1.1 ms of a 1.5 ms read of 15 entries.
-- Same values as before, for creates, updates of every field, moves and deletes.
CREATE OR REPLACE FUNCTION plant_time(t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

CREATE OR REPLACE FUNCTION plant_image(p power_plants) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', p.id, 'name', p.name, 'region', p.region, 'fuel', p.fuel, 'capacity_mw', p.capacity_mw,
        'output_mw', p.output_mw, 'status', p.status, 'latitude', p.latitude, 'longitude', p.longitude,
        'attributes', p.attributes, 'version', p.version,
        'created_at', plant_time(p.created_at), 'updated_at', plant_time(p.updated_at))
$$;

CREATE OR REPLACE FUNCTION plant_changed_fields(b power_plants, a power_plants) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN a.id IS NULL THEN '[]'::jsonb ELSE to_jsonb(array_remove(ARRAY[
        CASE WHEN b.name IS DISTINCT FROM a.name THEN 'name' END,
        CASE WHEN b.region IS DISTINCT FROM a.region THEN 'region' END,
        CASE WHEN b.fuel IS DISTINCT FROM a.fuel THEN 'fuel' END,
        CASE WHEN b.capacity_mw IS DISTINCT FROM a.capacity_mw THEN 'capacity_mw' END,
        CASE WHEN b.output_mw IS DISTINCT FROM a.output_mw THEN 'output_mw' END,
        CASE WHEN b.status IS DISTINCT FROM a.status THEN 'status' END,
        CASE WHEN b.latitude IS DISTINCT FROM a.latitude THEN 'latitude' END,
        CASE WHEN b.longitude IS DISTINCT FROM a.longitude THEN 'longitude' END,
        -- A plant created with no attributes has not set them.
        CASE WHEN coalesce(b.attributes, '{}') IS DISTINCT FROM a.attributes THEN 'attributes' END],
        NULL)) END
$$;

-- 3. The journal trigger asks whether a reader waits (see 0012) with an expression PL/pgSQL evaluates
-- itself, instead of a query through plant_changes_awaited(), which the executor planned and ran at
-- every statement: 8 pgbench writers of single-row inserts went from 0.67 to 0.81 of their rate with
-- capture off. pg_sequence_last_value is NULL until the first reader has waited: not awaited.
CREATE OR REPLACE FUNCTION power_plants_journal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO plant_changes (plant_id, region, kind, after_row, traceparent)
        SELECT n.id, n.region, 'created', ROW(n.*)::power_plants, (SELECT plant_trace()) FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        -- The version rises exactly when a plant's own fields changed; ids cannot change.
        INSERT INTO plant_changes (plant_id, region, kind, before_row, after_row, traceparent)
        SELECT n.id, n.region, 'updated', ROW(o.*)::power_plants, ROW(n.*)::power_plants, (SELECT plant_trace())
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE n.version IS DISTINCT FROM o.version;
    ELSE
        INSERT INTO plant_changes (plant_id, region, kind, before_row, traceparent)
        SELECT o.id, o.region, 'deleted', ROW(o.*)::power_plants, (SELECT plant_trace()) FROM old_rows o;
    END IF;
    -- After the insert: its table lock is what a reader arming its wake-up waits out.
    IF FOUND AND pg_sequence_last_value('plant_changes_awake')
                 > (extract(epoch FROM clock_timestamp()) * 1000)::bigint THEN
        PERFORM pg_notify('plant_changes', '');
    END IF;
    RETURN NULL;
END
$$;

DROP FUNCTION plant_changes_awaited();
