-- Plants and their change journal.
--
-- The journal is written by triggers in the writer's own transaction, so a change made with the sqlite3
-- shell (or any other SQL client) is captured exactly like one made through the API, deletes included.
-- `version` and the timestamps belong to the server: the triggers set them whoever writes.

CREATE TABLE power_plants (
    -- Raw SQL writers may omit the id: the default is a random (version 4) UUID.
    id          TEXT PRIMARY KEY NOT NULL DEFAULT (lower(
                    hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)
                    || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2)
                    || '-' || hex(randomblob(6)))),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    region      TEXT NOT NULL CHECK (length(region) BETWEEN 1 AND 63
                                     AND region NOT GLOB '*[^a-z0-9-]*' AND region NOT GLOB '-*'),
    fuel        TEXT NOT NULL CHECK (fuel IN ('solar', 'wind', 'hydro', 'nuclear', 'coal', 'gas', 'oil',
                                              'biomass', 'geothermal', 'storage', 'other')),
    capacity_mw REAL NOT NULL CHECK (capacity_mw >= 0 AND capacity_mw <= 1.7976931348623157e308),
    output_mw   REAL CHECK (abs(output_mw) <= 1.7976931348623157e308),
    status      TEXT NOT NULL DEFAULT 'planned'
                CHECK (status IN ('planned', 'operational', 'maintenance', 'offline', 'decommissioned')),
    latitude    REAL CHECK (latitude BETWEEN -90 AND 90),
    longitude   REAL CHECK (longitude BETWEEN -180 AND 180),
    attributes  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object'),
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE INDEX power_plants_by_region ON power_plants (region, id);

-- Every plant as the JSON document the API, the journal and the plugins share.
CREATE VIEW power_plant_images (id, region, fuel, status, image) AS
SELECT id, region, fuel, status, json_object(
    'id', id, 'name', name, 'region', region, 'fuel', fuel, 'capacity_mw', capacity_mw,
    'output_mw', output_mw, 'status', status, 'latitude', latitude, 'longitude', longitude,
    'attributes', json(attributes), 'version', version, 'created_at', created_at, 'updated_at', updated_at)
FROM power_plants;

CREATE TABLE plant_changes (
    -- AUTOINCREMENT: a seq is an event id receivers dedupe on, so it must never be reused.
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    plant_id       TEXT NOT NULL,
    region         TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'deleted', 'snapshot')),
    before         TEXT,
    after          TEXT,
    changed_fields TEXT NOT NULL DEFAULT '[]',
    committed_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE INDEX plant_changes_by_plant ON plant_changes (plant_id, seq);

-- Attribute values are strings; JSON cannot say so in a CHECK, a trigger can.
CREATE TRIGGER power_plants_attributes_insert BEFORE INSERT ON power_plants
WHEN EXISTS (SELECT 1 FROM json_each(NEW.attributes) WHERE type <> 'text')
BEGIN
    SELECT RAISE(ABORT, 'power_plants.attributes: every value must be a string');
END;

CREATE TRIGGER power_plants_attributes_update BEFORE UPDATE OF attributes ON power_plants
WHEN EXISTS (SELECT 1 FROM json_each(NEW.attributes) WHERE type <> 'text')
BEGIN
    SELECT RAISE(ABORT, 'power_plants.attributes: every value must be a string');
END;

-- The journal keys on the id; changing it would orphan the plant's history.
CREATE TRIGGER power_plants_id_immutable BEFORE UPDATE OF id ON power_plants
WHEN NEW.id IS NOT OLD.id
BEGIN
    SELECT RAISE(ABORT, 'power_plants.id cannot change');
END;

CREATE TRIGGER power_plants_journal_insert AFTER INSERT ON power_plants
BEGIN
    UPDATE power_plants
       SET version = 1,
           created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = NEW.id;
    INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields)
    SELECT NEW.id, NEW.region, 'created', NULL, image,
           json('[' || rtrim(
               '"name","region","fuel","capacity_mw",'
               || iif(NEW.output_mw IS NOT NULL, '"output_mw",', '')
               || '"status",'
               || iif(NEW.latitude IS NOT NULL, '"latitude",', '')
               || iif(NEW.longitude IS NOT NULL, '"longitude",', '')
               || iif(json(NEW.attributes) <> '{}', '"attributes",', ''), ',') || ']')
      FROM power_plant_images WHERE id = NEW.id;
END;

-- Only a change to a plant's own fields is a change: the version and timestamps follow from it, and an
-- UPDATE that writes the same values again leaves no trace.
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
     WHERE id = NEW.id;
    INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields)
    SELECT NEW.id, NEW.region, 'updated',
           json_object(
               'id', OLD.id, 'name', OLD.name, 'region', OLD.region, 'fuel', OLD.fuel,
               'capacity_mw', OLD.capacity_mw, 'output_mw', OLD.output_mw, 'status', OLD.status,
               'latitude', OLD.latitude, 'longitude', OLD.longitude, 'attributes', json(OLD.attributes),
               'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at),
           image,
           json('[' || rtrim(
               iif(OLD.name IS NOT NEW.name, '"name",', '')
               || iif(OLD.region IS NOT NEW.region, '"region",', '')
               || iif(OLD.fuel IS NOT NEW.fuel, '"fuel",', '')
               || iif(OLD.capacity_mw IS NOT NEW.capacity_mw, '"capacity_mw",', '')
               || iif(OLD.output_mw IS NOT NEW.output_mw, '"output_mw",', '')
               || iif(OLD.status IS NOT NEW.status, '"status",', '')
               || iif(OLD.latitude IS NOT NEW.latitude, '"latitude",', '')
               || iif(OLD.longitude IS NOT NEW.longitude, '"longitude",', '')
               || iif(json(OLD.attributes) IS NOT json(NEW.attributes), '"attributes",', ''), ',') || ']')
      FROM power_plant_images WHERE id = NEW.id;
END;

CREATE TRIGGER power_plants_journal_delete AFTER DELETE ON power_plants
BEGIN
    INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields)
    VALUES (OLD.id, OLD.region, 'deleted',
            json_object(
                'id', OLD.id, 'name', OLD.name, 'region', OLD.region, 'fuel', OLD.fuel,
                'capacity_mw', OLD.capacity_mw, 'output_mw', OLD.output_mw, 'status', OLD.status,
                'latitude', OLD.latitude, 'longitude', OLD.longitude, 'attributes', json(OLD.attributes),
                'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at),
            NULL, '[]');
END;
