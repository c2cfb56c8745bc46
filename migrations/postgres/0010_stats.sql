-- Activity per minute, for the charts of GET /v1/stats: kept pre-aggregated as the work is recorded, so
-- reading a window costs its buckets, never a scan of the journal or the outbox however large they grow.
-- Same tables and meaning as migrations/sqlite/0010.
--
-- `minute` is a bucket's start in whole minutes since the Unix epoch (UTC), by the database clock at the
-- moment the work was recorded. A writer adds its counts with one upsert per table and batch; the feed
-- counts what it marked processed, the sink workers what their requests came to. Latencies are kept as
-- counts in fixed log-spaced buckets (four per doubling, bucket i holding latencies up to 2^(i/4) ms), so
-- that minutes merge by adding and percentiles are read from the merged buckets. Retention deletes old
-- minutes.

-- Journal entries the feed processed, by region, kind and outcome.
CREATE TABLE stats_events (
    minute  bigint NOT NULL,
    region  text NOT NULL,
    kind    text NOT NULL CHECK (kind IN ('created', 'updated', 'deleted', 'snapshot')),
    outcome text NOT NULL CHECK (outcome IN ('routed', 'unrouted', 'filtered', 'failed')),
    count   bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (minute, region, kind, outcome)
);

-- Delivery results by sink: `delivered` events, `failed` attempts, and the attempts that made a
-- delivery `dead` (counted as failed too).
CREATE TABLE stats_deliveries (
    minute  bigint NOT NULL,
    sink    text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'dead')),
    count   bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (minute, sink, outcome)
);

-- Delivered events by sink and latency bucket (commit to the receiver's 2xx).
CREATE TABLE stats_latency (
    minute  bigint NOT NULL,
    sink    text NOT NULL,
    bucket  smallint NOT NULL CHECK (bucket BETWEEN 0 AND 120),
    count   bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (minute, sink, bucket)
);
