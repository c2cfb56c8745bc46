INSERT INTO :tbl (name, region, fuel, capacity_mw, output_mw) VALUES ('bench', 'r' || (random() * 7)::int, 'solar', 10, random() * 10);
