-- Dead letters and the state of each sink, shared by every replica.
--
-- A delivery that failed `max_attempts` times is `dead`. An event a plugin failed on under
-- on_error = "dead-letter" is recorded as a dead delivery with the empty sink name, so both kinds of
-- dead letter are listed, counted and replayed the same way.
CREATE INDEX deliveries_dead ON deliveries (sink, id) WHERE status = 'dead';

-- Delivered rows are pruned once older than retention.delivered.
CREATE INDEX deliveries_delivered ON deliveries (delivered_at) WHERE status = 'delivered';

-- A sink a receiver answered 410 Gone is disabled for every replica until an operator enables it.
CREATE TABLE sink_states (
    name            TEXT PRIMARY KEY NOT NULL,
    disabled_reason TEXT,
    disabled_at     TEXT,
    last_error      TEXT,
    last_error_at   TEXT
) STRICT;
