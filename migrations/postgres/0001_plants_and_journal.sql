-- Plants and their change journal (PostgreSQL). Same semantics as migrations/sqlite/0001:
-- triggers write the journal in the writer's own transaction, so every SQL client is captured, deletes
-- included; `version` and the timestamps belong to the server whoever writes.

CREATE TABLE power_plants (
    id          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    region      text NOT NULL CHECK (region ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    fuel        text NOT NULL CHECK (fuel IN ('solar', 'wind', 'hydro', 'nuclear', 'coal', 'gas', 'oil',
                                              'biomass', 'geothermal', 'storage', 'other')),
    -- NaN sorts above every number in PostgreSQL, so "< 'Infinity'" refuses NaN too.
    capacity_mw double precision NOT NULL CHECK (capacity_mw >= 0 AND capacity_mw < 'Infinity'),
    output_mw   double precision CHECK (output_mw > '-Infinity' AND output_mw < 'Infinity'),
    status      text NOT NULL DEFAULT 'planned'
                CHECK (status IN ('planned', 'operational', 'maintenance', 'offline', 'decommissioned')),
    latitude    double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision CHECK (longitude BETWEEN -180 AND 180),
    attributes  jsonb NOT NULL DEFAULT '{}'
                CHECK (jsonb_typeof(attributes) = 'object'
                       AND NOT jsonb_path_exists(attributes, '$.* ? (@.type() != "string")')),
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX power_plants_by_region ON power_plants (region, id);

-- Timestamps as the API shows them: RFC 3339, UTC, milliseconds.
CREATE FUNCTION plant_time(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- A plant as the JSON document the API, the journal and the plugins share.
CREATE FUNCTION plant_image(p power_plants) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'id', p.id, 'name', p.name, 'region', p.region, 'fuel', p.fuel, 'capacity_mw', p.capacity_mw,
        'output_mw', p.output_mw, 'status', p.status, 'latitude', p.latitude, 'longitude', p.longitude,
        'attributes', p.attributes, 'version', p.version,
        'created_at', plant_time(p.created_at), 'updated_at', plant_time(p.updated_at))
$$;

CREATE TABLE plant_changes (
    -- An identity is never reused: a seq is an event id receivers dedupe on.
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plant_id       text NOT NULL,
    region         text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('created', 'updated', 'deleted', 'snapshot')),
    before         jsonb,
    after          jsonb,
    changed_fields jsonb NOT NULL DEFAULT '[]',
    committed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX plant_changes_by_plant ON plant_changes (plant_id, seq);

-- Server-owned fields, set before the row is written.
CREATE FUNCTION power_plants_own_fields() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.version := 1;
        NEW.created_at := now();
        NEW.updated_at := now();
        RETURN NEW;
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION 'power_plants.id cannot change';
    END IF;
    NEW.created_at := OLD.created_at;
    -- Only a change to a plant's own fields is a change; writing the same values again leaves no trace.
    IF (NEW.name, NEW.region, NEW.fuel, NEW.capacity_mw, NEW.output_mw, NEW.status, NEW.latitude,
        NEW.longitude, NEW.attributes)
       IS DISTINCT FROM
       (OLD.name, OLD.region, OLD.fuel, OLD.capacity_mw, OLD.output_mw, OLD.status, OLD.latitude,
        OLD.longitude, OLD.attributes) THEN
        NEW.version := OLD.version + 1;
        NEW.updated_at := now();
    ELSE
        NEW.version := OLD.version;
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER power_plants_own_fields BEFORE INSERT OR UPDATE ON power_plants
FOR EACH ROW EXECUTE FUNCTION power_plants_own_fields();

CREATE FUNCTION power_plants_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    fields text[] := ARRAY[]::text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        fields := ARRAY['name', 'region', 'fuel', 'capacity_mw'];
        IF NEW.output_mw IS NOT NULL THEN fields := array_append(fields, 'output_mw'); END IF;
        fields := array_append(fields, 'status');
        IF NEW.latitude IS NOT NULL THEN fields := array_append(fields, 'latitude'); END IF;
        IF NEW.longitude IS NOT NULL THEN fields := array_append(fields, 'longitude'); END IF;
        IF NEW.attributes <> '{}' THEN fields := array_append(fields, 'attributes'); END IF;
        INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields)
        VALUES (NEW.id, NEW.region, 'created', NULL, plant_image(NEW), to_jsonb(fields));
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.name IS DISTINCT FROM OLD.name THEN fields := array_append(fields, 'name'); END IF;
        IF NEW.region IS DISTINCT FROM OLD.region THEN fields := array_append(fields, 'region'); END IF;
        IF NEW.fuel IS DISTINCT FROM OLD.fuel THEN fields := array_append(fields, 'fuel'); END IF;
        IF NEW.capacity_mw IS DISTINCT FROM OLD.capacity_mw THEN fields := array_append(fields, 'capacity_mw'); END IF;
        IF NEW.output_mw IS DISTINCT FROM OLD.output_mw THEN fields := array_append(fields, 'output_mw'); END IF;
        IF NEW.status IS DISTINCT FROM OLD.status THEN fields := array_append(fields, 'status'); END IF;
        IF NEW.latitude IS DISTINCT FROM OLD.latitude THEN fields := array_append(fields, 'latitude'); END IF;
        IF NEW.longitude IS DISTINCT FROM OLD.longitude THEN fields := array_append(fields, 'longitude'); END IF;
        IF NEW.attributes IS DISTINCT FROM OLD.attributes THEN fields := array_append(fields, 'attributes'); END IF;
        INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields)
        VALUES (NEW.id, NEW.region, 'updated', plant_image(OLD), plant_image(NEW), to_jsonb(fields));
    ELSE
        INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields)
        VALUES (OLD.id, OLD.region, 'deleted', plant_image(OLD), NULL, '[]');
    END IF;
    -- Wakes the feed; identical notifications in one transaction are delivered once.
    PERFORM pg_notify('plant_changes', coalesce(NEW.region, OLD.region));
    RETURN NULL;
END
$$;

CREATE TRIGGER power_plants_journal_insert AFTER INSERT ON power_plants
FOR EACH ROW EXECUTE FUNCTION power_plants_journal();

-- The version rises exactly when a plant's own fields changed.
CREATE TRIGGER power_plants_journal_update AFTER UPDATE ON power_plants
FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version) EXECUTE FUNCTION power_plants_journal();

CREATE TRIGGER power_plants_journal_delete AFTER DELETE ON power_plants
FOR EACH ROW EXECUTE FUNCTION power_plants_journal();
