-- The sinks' read of due deliveries probes, for each candidate, whether an earlier delivery of its
-- plant to its sink is still pending and held back (not due yet, or in a region this replica does not
-- lead). That probe is meant to be one step into (sink, plant_id, id). But deliveries_pending (sink, id)
-- serves its conditions too, and while the table's statistics lag a burst of writes (autovacuum has not
-- analyzed it yet), both estimates are one row and the smaller index wins: the probe then walked every
-- earlier pending delivery of the sink, and a read of 1,024 of 20,000 pending took 75 ms instead of
-- 5 ms (13 of 15 ms per read in bench e2e). This index states what the probe states, status NOT IN
-- ('delivered', 'dead'), which is 'pending' under the table's check, but does not imply
-- deliveries_pending's status = 'pending': no other index can serve the probe.
CREATE INDEX deliveries_unsettled_by_plant ON deliveries (sink, plant_id, id)
    WHERE status NOT IN ('delivered', 'dead');
DROP INDEX deliveries_pending_by_plant;
