-- The pipeline snapshot (the plugin versions, by id) that processed each journal entry, so "which version
-- sent this?" has an answer; NULL for entries processed before snapshots had ids.
ALTER TABLE plant_changes ADD COLUMN outcome_pipeline TEXT;
