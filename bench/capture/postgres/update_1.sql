UPDATE :tbl SET output_mw = random() * 10 WHERE id = (SELECT id FROM :tbl ORDER BY id LIMIT 1 OFFSET (random() * 999)::int);
