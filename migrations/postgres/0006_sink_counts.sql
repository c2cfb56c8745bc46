-- Each sink's outbox figures (pending, delivered, dead, failed attempts), kept current by triggers as
-- deliveries are written, change and are pruned, by this service or any SQL client, so that reading them
-- (GET /v1/sinks) costs one row per sink however large the outbox grows. Same semantics as
-- migrations/sqlite/0006.
CREATE TABLE sink_counts (
    sink      text PRIMARY KEY,
    pending   bigint NOT NULL DEFAULT 0,
    delivered bigint NOT NULL DEFAULT 0,
    dead      bigint NOT NULL DEFAULT 0,
    failed    bigint NOT NULL DEFAULT 0
);

INSERT INTO sink_counts (sink, pending, delivered, dead, failed)
SELECT sink, count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'delivered'),
       count(*) FILTER (WHERE status = 'dead'), sum(attempts - (status = 'delivered')::int)
FROM deliveries WHERE sink IS NOT NULL GROUP BY sink;

-- Once per statement, not per row: a statement's rows in count +1 and its rows out -1, summed per sink.
-- Sinks are updated in name order, so two statements that touch several sinks cannot deadlock, and a
-- sink whose figures did not move (a reschedule) is not touched, so it takes no lock.
CREATE FUNCTION count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT sink, status, attempts, 1 AS sign FROM rows_in'
        WHEN 'DELETE' THEN 'SELECT sink, status, attempts, -1 AS sign FROM rows_out'
        ELSE 'SELECT sink, status, attempts, 1 AS sign FROM rows_in
              UNION ALL SELECT sink, status, attempts, -1 AS sign FROM rows_out'
    END;
BEGIN
    EXECUTE format(
        'INSERT INTO sink_counts AS c (sink, pending, delivered, dead, failed)
         SELECT sink, sum(sign * (status = ''pending'')::int), sum(sign * (status = ''delivered'')::int),
                sum(sign * (status = ''dead'')::int),
                sum(sign * (attempts - (status = ''delivered'')::int))
         FROM (%s) moved WHERE sink IS NOT NULL GROUP BY sink
         HAVING sum(sign * (status = ''pending'')::int) <> 0
             OR sum(sign * (status = ''delivered'')::int) <> 0
             OR sum(sign * (status = ''dead'')::int) <> 0
             OR sum(sign * (attempts - (status = ''delivered'')::int)) <> 0
         ORDER BY sink
         ON CONFLICT (sink) DO UPDATE SET pending = c.pending + excluded.pending,
             delivered = c.delivered + excluded.delivered, dead = c.dead + excluded.dead,
             failed = c.failed + excluded.failed', moved);
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_counted_in AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS rows_in FOR EACH STATEMENT EXECUTE FUNCTION count_deliveries();
CREATE TRIGGER deliveries_counted_out AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS rows_out FOR EACH STATEMENT EXECUTE FUNCTION count_deliveries();
CREATE TRIGGER deliveries_recounted AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS rows_out NEW TABLE AS rows_in FOR EACH STATEMENT
    EXECUTE FUNCTION count_deliveries();
