-- Plant images carry every REAL exactly. json_object renders a REAL with 15 significant digits, which
-- changes values on the way out (0.1 + 0.2 came back as 0.3) and turns the largest doubles into
-- numbers no reader can hold (1.7976931348623157e308 became 1.79769313486232e+308). Seventeen
-- significant digits always read back as the same double, so the view and the journal triggers render
-- each REAL with printf('%!.17g') instead; the images keep their shape.

DROP VIEW power_plant_images;

CREATE VIEW power_plant_images (id, region, fuel, status, image) AS
SELECT id, region, fuel, status, json_object(
    'id', id, 'name', name, 'region', region, 'fuel', fuel,
    'capacity_mw', json(printf('%!.17g', capacity_mw)),
    'output_mw', iif(output_mw IS NULL, NULL, json(printf('%!.17g', output_mw))),
    'status', status,
    'latitude', iif(latitude IS NULL, NULL, json(printf('%!.17g', latitude))),
    'longitude', iif(longitude IS NULL, NULL, json(printf('%!.17g', longitude))),
    'attributes', json(attributes), 'version', version, 'created_at', created_at, 'updated_at', updated_at)
FROM power_plants;

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
     WHERE id = NEW.id;
    INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields)
    SELECT NEW.id, NEW.region, 'updated',
           json_object(
               'id', OLD.id, 'name', OLD.name, 'region', OLD.region, 'fuel', OLD.fuel,
               'capacity_mw', json(printf('%!.17g', OLD.capacity_mw)),
               'output_mw', iif(OLD.output_mw IS NULL, NULL, json(printf('%!.17g', OLD.output_mw))),
               'status', OLD.status,
               'latitude', iif(OLD.latitude IS NULL, NULL, json(printf('%!.17g', OLD.latitude))),
               'longitude', iif(OLD.longitude IS NULL, NULL, json(printf('%!.17g', OLD.longitude))),
               'attributes', json(OLD.attributes),
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

DROP TRIGGER power_plants_journal_delete;

CREATE TRIGGER power_plants_journal_delete AFTER DELETE ON power_plants
BEGIN
    INSERT INTO plant_changes (plant_id, region, kind, before, after, changed_fields)
    VALUES (OLD.id, OLD.region, 'deleted',
            json_object(
                'id', OLD.id, 'name', OLD.name, 'region', OLD.region, 'fuel', OLD.fuel,
                'capacity_mw', json(printf('%!.17g', OLD.capacity_mw)),
                'output_mw', iif(OLD.output_mw IS NULL, NULL, json(printf('%!.17g', OLD.output_mw))),
                'status', OLD.status,
                'latitude', iif(OLD.latitude IS NULL, NULL, json(printf('%!.17g', OLD.latitude))),
                'longitude', iif(OLD.longitude IS NULL, NULL, json(printf('%!.17g', OLD.longitude))),
                'attributes', json(OLD.attributes),
                'version', OLD.version, 'created_at', OLD.created_at, 'updated_at', OLD.updated_at),
            NULL, '[]');
END;
