-- Dead letters and the state of each sink (PostgreSQL). Same semantics as migrations/sqlite/0004.
CREATE INDEX deliveries_dead ON deliveries (sink, id) WHERE status = 'dead';

-- Delivered rows are pruned once older than retention.delivered.
CREATE INDEX deliveries_delivered ON deliveries (delivered_at) WHERE status = 'delivered';

CREATE TABLE sink_states (
    name            text PRIMARY KEY,
    disabled_reason text,
    disabled_at     timestamptz,
    last_error      text,
    last_error_at   timestamptz
);
