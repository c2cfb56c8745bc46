-- Capture that costs writers almost nothing. The journal triggers of 0001 ran once per row, built two
-- JSON images with formatted timestamps and the changed-field list in the writer's transaction, and
-- called pg_notify, whose commit-time lock serializes every notifying commit in the database. Now one
-- trigger per statement copies the rows as they are, from its transition tables, into `before_row` and
-- `after_row`; the readers turn them into the same images and `changed_fields` (plant_image and
-- plant_changed_fields below). Entries journaled before this migration keep their JSON columns, which
-- readers prefer when present, as do the snapshot and backfill entries, still written as images.
--
-- Wake-ups: a writer notifies only while some reader waits for one, which a reader says by moving the
-- deadline in the unlogged sequence plant_changes_awake (milliseconds since the Unix epoch, by the
-- database clock) ahead of now, and keeps moving while it waits. A sequence is read and set outside
-- any transaction's snapshot, so a writer sees a deadline the moment it is set, whatever its isolation
-- level. A writer checks it after its journal insert took the journal's table lock; a reader that
-- finds the deadline passed when it sets it (a fresh arm) waits until the writers then open have ended
-- and notifies itself, so a writer that saw no deadline is never missed. A crash resets the sequence
-- to 0: nobody waits until a reader says so again.

ALTER TABLE plant_changes ADD COLUMN before_row power_plants, ADD COLUMN after_row power_plants;

CREATE UNLOGGED SEQUENCE plant_changes_awake MINVALUE 0 START 0;

-- The journal's changed_fields for a change from b to a: for a creation (b null) the fields set, for a
-- deletion (a null) none.
CREATE FUNCTION plant_changed_fields(b power_plants, a power_plants) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_agg(f.name ORDER BY f.n), '[]')
    FROM (VALUES (1, 'name', b.name IS DISTINCT FROM a.name),
                 (2, 'region', b.region IS DISTINCT FROM a.region),
                 (3, 'fuel', b.fuel IS DISTINCT FROM a.fuel),
                 (4, 'capacity_mw', b.capacity_mw IS DISTINCT FROM a.capacity_mw),
                 (5, 'output_mw', b.output_mw IS DISTINCT FROM a.output_mw),
                 (6, 'status', b.status IS DISTINCT FROM a.status),
                 (7, 'latitude', b.latitude IS DISTINCT FROM a.latitude),
                 (8, 'longitude', b.longitude IS DISTINCT FROM a.longitude),
                 -- A plant created with no attributes has not set them.
                 (9, 'attributes', coalesce(b.attributes, '{}') IS DISTINCT FROM a.attributes))
         AS f (n, name, changed)
    WHERE f.changed AND a.id IS NOT NULL
$$;

-- Whether a writer is to notify: some reader waits.
CREATE FUNCTION plant_changes_awaited() RETURNS boolean LANGUAGE sql VOLATILE AS $$
    SELECT last_value > (extract(epoch FROM clock_timestamp()) * 1000)::bigint FROM plant_changes_awake
$$;

-- A reader waits for `ms` milliseconds more; answers whether one was waiting already.
CREATE FUNCTION plant_changes_await(ms bigint) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    awaited boolean := (SELECT last_value > now_ms FROM plant_changes_awake);
BEGIN
    PERFORM setval('plant_changes_awake', greatest(now_ms + ms, 1));
    RETURN awaited;
END
$$;

DROP TRIGGER power_plants_journal_insert ON power_plants;
DROP TRIGGER power_plants_journal_update ON power_plants;
DROP TRIGGER power_plants_journal_delete ON power_plants;
DROP FUNCTION power_plants_journal();

-- Rows go in as the statement wrote them; the trace is looked up once per statement, not per row.
CREATE FUNCTION power_plants_journal() RETURNS trigger LANGUAGE plpgsql AS $$
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
    IF FOUND AND plant_changes_awaited() THEN
        PERFORM pg_notify('plant_changes', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER power_plants_journal_insert AFTER INSERT ON power_plants
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION power_plants_journal();

CREATE TRIGGER power_plants_journal_update AFTER UPDATE ON power_plants
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
EXECUTE FUNCTION power_plants_journal();

CREATE TRIGGER power_plants_journal_delete AFTER DELETE ON power_plants
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION power_plants_journal();
