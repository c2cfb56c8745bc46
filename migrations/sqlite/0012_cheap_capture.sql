-- Cheap capture: the journal triggers write a change as the row it is, and its readers turn it into JSON.
-- Building two JSON images (a printf per REAL) and the changed-field list, an UPDATE of each new entry
-- for its trace and an UPDATE of each new plant for its version and timestamps made a write several
-- times dearer than the write itself. Now a trigger writes one journal row of plain column values, its
-- trace included, and writes the plant again only when the writer set a server-owned column to
-- something other than what the server would.
--
-- An entry journaled from here on keeps its images in the before_* and after_* columns and leaves
-- `before`, `after` and `changed_fields` to their defaults; entries journaled earlier, snapshots and
-- backfill entries keep theirs as JSON. The view plant_change_images reads both alike, with the images
-- and changed_fields exactly as the triggers of 0009 rendered them. An after image stores only the
-- plant's own fields: its id and region are the entry's, and the server-owned rest follows from the
-- before image and committed_at, because SQLite holds 'now' still within a step of a statement: the
-- trigger sets updated_at (and a new plant's created_at) to the instant committed_at's default records.

ALTER TABLE plant_changes ADD COLUMN before_name TEXT;
ALTER TABLE plant_changes ADD COLUMN before_region TEXT;
ALTER TABLE plant_changes ADD COLUMN before_fuel TEXT;
ALTER TABLE plant_changes ADD COLUMN before_capacity_mw REAL;
ALTER TABLE plant_changes ADD COLUMN before_output_mw REAL;
ALTER TABLE plant_changes ADD COLUMN before_status TEXT;
ALTER TABLE plant_changes ADD COLUMN before_latitude REAL;
ALTER TABLE plant_changes ADD COLUMN before_longitude REAL;
ALTER TABLE plant_changes ADD COLUMN before_attributes TEXT;
ALTER TABLE plant_changes ADD COLUMN before_version INTEGER;
ALTER TABLE plant_changes ADD COLUMN before_created_at TEXT;
ALTER TABLE plant_changes ADD COLUMN before_updated_at TEXT;
ALTER TABLE plant_changes ADD COLUMN after_name TEXT;
ALTER TABLE plant_changes ADD COLUMN after_fuel TEXT;
ALTER TABLE plant_changes ADD COLUMN after_capacity_mw REAL;
ALTER TABLE plant_changes ADD COLUMN after_output_mw REAL;
ALTER TABLE plant_changes ADD COLUMN after_status TEXT;
ALTER TABLE plant_changes ADD COLUMN after_latitude REAL;
ALTER TABLE plant_changes ADD COLUMN after_longitude REAL;
ALTER TABLE plant_changes ADD COLUMN after_attributes TEXT;

-- Every index of the journal is a page more that each write copies into its statement journal and
-- the WAL. No query on SQLite reads this one (a plant's unprocessed entries have their own index, and
-- its history is read in seq order), so writers no longer keep it.
DROP INDEX plant_changes_by_plant;

DROP TRIGGER power_plants_journal_insert;

CREATE TRIGGER power_plants_journal_insert AFTER INSERT ON power_plants
BEGIN
    UPDATE power_plants
       SET version = 1,
           created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = NEW.id
       AND (NEW.version IS NOT 1 OR NEW.created_at IS NOT NEW.updated_at
            OR NEW.updated_at IS NOT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
    INSERT INTO plant_changes (plant_id, region, kind, traceparent,
                               after_name, after_fuel, after_capacity_mw, after_output_mw, after_status,
                               after_latitude, after_longitude, after_attributes)
    VALUES (NEW.id, NEW.region, 'created',
            coalesce((SELECT traceparent FROM write_trace),
                     '00-' || lower(hex(randomblob(16))) || '-' || lower(hex(randomblob(8))) || '-01'),
            NEW.name, NEW.fuel, NEW.capacity_mw, NEW.output_mw, NEW.status, NEW.latitude, NEW.longitude,
            NEW.attributes);
END;

DROP TRIGGER power_plants_journal_update;

CREATE TRIGGER power_plants_journal_update AFTER UPDATE ON power_plants
WHEN OLD.name IS NOT NEW.name OR OLD.region IS NOT NEW.region OR OLD.fuel IS NOT NEW.fuel
  OR OLD.capacity_mw IS NOT NEW.capacity_mw OR OLD.output_mw IS NOT NEW.output_mw
  OR OLD.status IS NOT NEW.status OR OLD.latitude IS NOT NEW.latitude OR OLD.longitude IS NOT NEW.longitude
  OR json(OLD.attributes) IS NOT json(NEW.attributes)
BEGIN
    UPDATE power_plants
       SET version = OLD.version + 1,
           created_at = OLD.created_at,
           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = NEW.id
       AND (NEW.version IS NOT OLD.version + 1 OR NEW.created_at IS NOT OLD.created_at
            OR NEW.updated_at IS NOT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
    INSERT INTO plant_changes (plant_id, region, kind, traceparent,
                               before_name, before_region, before_fuel, before_capacity_mw,
                               before_output_mw, before_status, before_latitude, before_longitude,
                               before_attributes, before_version, before_created_at, before_updated_at,
                               after_name, after_fuel, after_capacity_mw, after_output_mw, after_status,
                               after_latitude, after_longitude, after_attributes)
    VALUES (NEW.id, NEW.region, 'updated',
            coalesce((SELECT traceparent FROM write_trace),
                     '00-' || lower(hex(randomblob(16))) || '-' || lower(hex(randomblob(8))) || '-01'),
            OLD.name, OLD.region, OLD.fuel, OLD.capacity_mw, OLD.output_mw, OLD.status, OLD.latitude,
            OLD.longitude, OLD.attributes, OLD.version, OLD.created_at, OLD.updated_at,
            NEW.name, NEW.fuel, NEW.capacity_mw, NEW.output_mw, NEW.status, NEW.latitude, NEW.longitude,
            NEW.attributes);
END;

DROP TRIGGER power_plants_journal_delete;

CREATE TRIGGER power_plants_journal_delete AFTER DELETE ON power_plants
BEGIN
    INSERT INTO plant_changes (plant_id, region, kind, traceparent,
                               before_name, before_region, before_fuel, before_capacity_mw,
                               before_output_mw, before_status, before_latitude, before_longitude,
                               before_attributes, before_version, before_created_at, before_updated_at)
    VALUES (OLD.id, OLD.region, 'deleted',
            coalesce((SELECT traceparent FROM write_trace),
                     '00-' || lower(hex(randomblob(16))) || '-' || lower(hex(randomblob(8))) || '-01'),
            OLD.name, OLD.region, OLD.fuel, OLD.capacity_mw, OLD.output_mw, OLD.status, OLD.latitude,
            OLD.longitude, OLD.attributes, OLD.version, OLD.created_at, OLD.updated_at);
END;

-- The journal as its readers see it: each entry with its images and changed_fields as JSON text.
CREATE VIEW plant_change_images AS
SELECT seq, plant_id, region, kind,
       iif(before_name IS NULL, before, json_object(
           'id', plant_id, 'name', before_name, 'region', before_region, 'fuel', before_fuel,
           'capacity_mw', json(printf('%!.17g', before_capacity_mw)),
           'output_mw', iif(before_output_mw IS NULL, NULL, json(printf('%!.17g', before_output_mw))),
           'status', before_status,
           'latitude', iif(before_latitude IS NULL, NULL, json(printf('%!.17g', before_latitude))),
           'longitude', iif(before_longitude IS NULL, NULL, json(printf('%!.17g', before_longitude))),
           'attributes', json(before_attributes), 'version', before_version,
           'created_at', before_created_at, 'updated_at', before_updated_at)) AS before,
       iif(after_name IS NULL, after, json_object(
           'id', plant_id, 'name', after_name, 'region', region, 'fuel', after_fuel,
           'capacity_mw', json(printf('%!.17g', after_capacity_mw)),
           'output_mw', iif(after_output_mw IS NULL, NULL, json(printf('%!.17g', after_output_mw))),
           'status', after_status,
           'latitude', iif(after_latitude IS NULL, NULL, json(printf('%!.17g', after_latitude))),
           'longitude', iif(after_longitude IS NULL, NULL, json(printf('%!.17g', after_longitude))),
           'attributes', json(after_attributes), 'version', coalesce(before_version + 1, 1),
           'created_at', coalesce(before_created_at, committed_at), 'updated_at', committed_at)) AS after,
       CASE
           WHEN after_name IS NULL OR kind NOT IN ('created', 'updated') THEN changed_fields
           WHEN before_name IS NULL THEN json('[' || rtrim(
               '"name","region","fuel","capacity_mw",'
               || iif(after_output_mw IS NOT NULL, '"output_mw",', '')
               || '"status",'
               || iif(after_latitude IS NOT NULL, '"latitude",', '')
               || iif(after_longitude IS NOT NULL, '"longitude",', '')
               || iif(json(after_attributes) <> '{}', '"attributes",', ''), ',') || ']')
           ELSE json('[' || rtrim(
               iif(before_name IS NOT after_name, '"name",', '')
               || iif(before_region IS NOT region, '"region",', '')
               || iif(before_fuel IS NOT after_fuel, '"fuel",', '')
               || iif(before_capacity_mw IS NOT after_capacity_mw, '"capacity_mw",', '')
               || iif(before_output_mw IS NOT after_output_mw, '"output_mw",', '')
               || iif(before_status IS NOT after_status, '"status",', '')
               || iif(before_latitude IS NOT after_latitude, '"latitude",', '')
               || iif(before_longitude IS NOT after_longitude, '"longitude",', '')
               || iif(json(before_attributes) IS NOT json(after_attributes), '"attributes",', ''), ',')
               || ']')
       END AS changed_fields,
       committed_at, processed_at, outcome, outcome_plugin, outcome_reason, event, outcome_pipeline,
       traceparent, backfill_id
FROM plant_changes;
