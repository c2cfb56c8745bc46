-- A plugin failure's dead letter has no sink: its sink is NULL, which no configured sink can match,
-- instead of the empty string. Same semantics as migrations/sqlite/0005.
ALTER TABLE deliveries ALTER COLUMN sink DROP NOT NULL;
UPDATE deliveries SET sink = NULL WHERE sink = '';
ALTER TABLE deliveries ADD CONSTRAINT deliveries_sink_not_empty CHECK (sink <> '');
