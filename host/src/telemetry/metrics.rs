//! Metrics: every series `GET /metrics` exports, recorded through the `metrics` facade into one
//! Prometheus recorder per process. Counters and histograms are recorded where things happen (the
//! plugins crate records its own two, named in [`plant_monitor_plugins::metrics`]); gauges that
//! describe the database (journal lag, pending and dead deliveries, leases, connections) are read when
//! scraped. The names and help texts live here, so the exposition and README say the same.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const JOURNAL_LAG_ENTRIES: &str = "plant_monitor_journal_lag_entries";
pub const JOURNAL_LAG_SECONDS: &str = "plant_monitor_journal_lag_seconds";
pub const FEED_BATCH_SECONDS: &str = "plant_monitor_feed_batch_duration_seconds";
pub const FEED_EVENTS: &str = "plant_monitor_feed_events_total";
pub const DELIVERIES: &str = "plant_monitor_deliveries_total";
pub const DELIVERY_LATENCY_SECONDS: &str = "plant_monitor_delivery_latency_seconds";
pub const SINK_PENDING: &str = "plant_monitor_sink_pending_deliveries";
pub const SINK_DEAD: &str = "plant_monitor_sink_dead_deliveries";
pub const SINK_WAITING: &str = "plant_monitor_sink_waiting";
pub const LEASE_HELD: &str = "plant_monitor_lease_held";
pub const LEASE_EPOCH: &str = "plant_monitor_lease_epoch";
pub const CAPTURE_SLOT_RETAINED_BYTES: &str = "plant_monitor_capture_slot_retained_bytes";
pub const CAPTURE_SLOT_LAG_BYTES: &str = "plant_monitor_capture_slot_lag_bytes";
pub const DB_CONNECTIONS: &str = "plant_monitor_db_connections";
pub const DB_CONNECTIONS_IN_USE: &str = "plant_monitor_db_connections_in_use";
pub const HTTP_REQUESTS: &str = "plant_monitor_http_requests_total";
pub const HTTP_REQUEST_SECONDS: &str = "plant_monitor_http_request_duration_seconds";

/// Histogram buckets in seconds, from a plugin call's microseconds to a slow receiver's minute.
const BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How often histogram samples are folded into their buckets between scrapes, so an unscraped
/// process does not keep every sample.
const UPKEEP: Duration = Duration::from_secs(5);

/// The process's recorder, installed on first use; `None` when another recorder was installed first
/// (by an embedding program), whose exposition is then its own business.
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(install).as_ref()
}

fn install() -> Option<PrometheusHandle> {
    let recorder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
        Ok(builder) => builder.build_recorder(),
        Err(error) => {
            tracing::error!(%error, "Cannot set up the metrics recorder; /metrics stays empty.");
            return None;
        }
    };
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        tracing::warn!("Another metrics recorder is installed; /metrics stays empty.");
        return None;
    }
    describe();
    plant_monitor_plugins::metrics::describe();
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "Cannot start the metrics upkeep; histograms are folded at each scrape only.");
    }
    Some(handle)
}

fn describe() {
    describe_gauge!(
        JOURNAL_LAG_ENTRIES,
        "Journal entries not yet processed, per region."
    );
    describe_gauge!(
        JOURNAL_LAG_SECONDS,
        metrics::Unit::Seconds,
        "Age of the oldest unprocessed journal entry's commit, per region (0 when caught up)."
    );
    describe_histogram!(
        FEED_BATCH_SECONDS,
        metrics::Unit::Seconds,
        "Time the feed took for one batch: read, run through the pipeline, record."
    );
    describe_counter!(
        FEED_EVENTS,
        "Journal entries the feed processed, per region and outcome (routed, unrouted, filtered, failed)."
    );
    describe_counter!(
        DELIVERIES,
        "Delivery attempts per sink and outcome (delivered, failed, dead)."
    );
    describe_histogram!(
        DELIVERY_LATENCY_SECONDS,
        metrics::Unit::Seconds,
        "Time from a change's commit to its sink's 2xx, per sink."
    );
    describe_gauge!(SINK_PENDING, "Deliveries not yet delivered, per sink.");
    describe_gauge!(SINK_DEAD, "Dead letters, per sink.");
    describe_gauge!(
        SINK_WAITING,
        "1 while a sink's deliveries wait for its failing health probe, else 0."
    );
    describe_gauge!(
        LEASE_HELD,
        "1 while this process holds the region's lease, else 0."
    );
    describe_gauge!(
        LEASE_EPOCH,
        "The region lease's epoch (acquisitions so far), whoever holds it."
    );
    describe_gauge!(
        CAPTURE_SLOT_RETAINED_BYTES,
        "Bytes of PostgreSQL's log the replication slot of wal capture keeps (0 without a slot)."
    );
    describe_gauge!(
        CAPTURE_SLOT_LAG_BYTES,
        "Bytes of PostgreSQL's log written since the position wal capture last confirmed."
    );
    describe_gauge!(DB_CONNECTIONS, "Open database connections.");
    describe_gauge!(
        DB_CONNECTIONS_IN_USE,
        "Database connections in use (open and not idle)."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "API requests per method, route template and status."
    );
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "API request duration per method and route template."
    );
}
