//! Activity statistics for charts: what the feed processed and what the sinks' requests came to, per
//! minute, added up as that work is recorded (in the same transaction) and read back as one array per
//! series aligned with the buckets of a window, so that a chart costs the buckets it shows and never a
//! scan of the journal or the outbox. Delivery latencies are kept as counts in fixed log-spaced
//! buckets, which merge by adding: a step's percentiles are read from its minutes' merged buckets, to
//! within 9 % (see [`bucket_ms`]).
//!
//! Times are the database clock's: a minute is a bucket's start in whole minutes since the Unix epoch
//! (UTC), and a step of `n` minutes starts at a multiple of `n` minutes since the epoch, so a step of an
//! hour starts at full hours and one of a day at midnight UTC.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::StoreError;
use plant_monitor_core::domain::{ChangeKind, OutcomeKind};

/// The longest window a read may cover.
pub const WINDOW_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// The longest step.
pub const STEP_MAX: Duration = Duration::from_secs(24 * 3600);

/// The most buckets one read answers with.
pub const POINTS_MAX: u32 = 1440;

/// How long minutes are kept: the longest window, plus the longest step by which its first bucket may
/// begin before it, so every read that is allowed finds each of its buckets whole.
pub const KEPT: Duration = WINDOW_MAX.saturating_add(STEP_MAX);

/// Latency buckets per doubling: bucket `i` holds latencies in (2^((i-1)/4), 2^(i/4)] ms, bucket 0
/// those up to 1 ms.
const PER_DOUBLING: f64 = 4.0;

/// The last latency bucket, up to 2^30 ms (12.4 days); longer latencies are counted in it.
const LAST_BUCKET: u16 = 120;

plant_monitor_core::word_enum! {
    /// What a sink's attempt came to: `delivered`, `failed` (every failed attempt), or `dead` (the
    /// failed attempt made the delivery a dead letter; counted as failed too).
    pub enum DeliveryOutcome {
        Delivered => "delivered", Failed => "failed", Dead => "dead",
    }
}

/// A window of activity, one value per bucket in each series.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// The first bucket's start, in minutes since the Unix epoch; the buckets follow each other a step
    /// apart, and the last holds the current minute.
    pub from_minute: i64,
    pub events: Vec<EventSeries>,
    pub deliveries: Vec<DeliverySeries>,
    pub latency: Vec<LatencySeries>,
}

/// Journal entries the feed processed in each bucket, of one region, kind and outcome.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventSeries {
    pub region: String,
    pub kind: ChangeKind,
    pub outcome: OutcomeKind,
    pub counts: Vec<u64>,
}

/// A sink's attempts with one outcome in each bucket.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeliverySeries {
    pub sink: String,
    pub outcome: DeliveryOutcome,
    pub counts: Vec<u64>,
}

/// The percentiles of a sink's delivery latency (commit to the receiver's 2xx) in each bucket, in
/// milliseconds; null in a bucket without deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LatencySeries {
    pub sink: String,
    pub p50_ms: Vec<Option<f64>>,
    pub p95_ms: Vec<Option<f64>>,
    pub p99_ms: Vec<Option<f64>>,
}

/// The latency bucket a delivery's latency is counted in.
pub fn latency_bucket(latency: Duration) -> u16 {
    let ms = latency.as_secs_f64() * 1000.0;
    if ms <= 1.0 {
        return 0;
    }
    // A float too large for u16 saturates, into the last bucket.
    ((ms.log2() * PER_DOUBLING).ceil() as u16).min(LAST_BUCKET)
}

/// What a latency bucket reads as, to 0.01 ms: the geometric middle of its bounds, which is within a
/// factor of 2^(1/8) (9.05 %) of every latency in it. Bucket 0 (up to 1 ms) reads as 1 ms.
pub fn bucket_ms(bucket: u16) -> f64 {
    let middle = if bucket == 0 {
        1.0
    } else {
        2f64.powf((f64::from(bucket) - 0.5) / PER_DOUBLING)
    };
    (middle * 100.0).round() / 100.0
}

/// A sink's results as the JSON array its upsert reads: one `[outcome, count]` per outcome that
/// happened, in a fixed order (so concurrent writers lock the rows in the same order).
pub(crate) fn deliveries_json(delivered: u64, failed: u64, dead: u64) -> Option<String> {
    json_rows(
        [
            (DeliveryOutcome::Dead, dead),
            (DeliveryOutcome::Delivered, delivered),
            (DeliveryOutcome::Failed, failed),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(outcome, count)| serde_json::json!([outcome.as_str(), count])),
    )
}

/// Delivered events' latencies as the JSON array their upsert reads: one `[bucket, count]` per bucket.
pub(crate) fn latency_json(latencies: impl IntoIterator<Item = Duration>) -> Option<String> {
    let mut counts: BTreeMap<u16, u64> = BTreeMap::new();
    for latency in latencies {
        *counts.entry(latency_bucket(latency)).or_default() += 1;
    }
    json_rows(
        counts
            .into_iter()
            .map(|(bucket, count)| serde_json::json!([bucket, count])),
    )
}

fn json_rows(rows: impl Iterator<Item = serde_json::Value>) -> Option<String> {
    let rows: Vec<serde_json::Value> = rows.collect();
    (!rows.is_empty()).then(|| serde_json::Value::from(rows).to_string())
}

/// Where a read's buckets lie: `points` steps of `step` minutes, the last holding `now` (a minute).
pub(crate) fn from_minute(now: i64, step: u32, points: u32) -> i64 {
    let step = i64::from(step);
    (now.div_euclid(step) + 1) * step - i64::from(points) * step
}

/// A read's rows, each counted in a bucket (`point`, from 0) of the window: events as (point, region,
/// kind, outcome, count), deliveries as (point, sink, outcome, count), latencies as (point, sink,
/// bucket, count).
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub events: Vec<(i64, String, String, String, i64)>,
    pub deliveries: Vec<(i64, String, String, i64)>,
    pub latency: Vec<(i64, String, i64, i64)>,
}

/// A read's rows as series aligned with its `points` buckets: zeros, or null percentiles, where
/// nothing happened. Series are in the order of their names.
pub(crate) fn shape(from_minute: i64, points: u32, rows: Rows) -> Result<Stats, StoreError> {
    let points = points as usize;
    let at = |point: i64| usize::try_from(point).ok().filter(|at| *at < points);
    let count = |n: i64| u64::try_from(n).unwrap_or(0);

    // Keyed by name, for the order; the series itself carries its words.
    let mut events: BTreeMap<(String, &str, &str), EventSeries> = BTreeMap::new();
    for (point, region, kind, outcome, n) in rows.events {
        let kind = ChangeKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?;
        let outcome = OutcomeKind::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?;
        if let Some(at) = at(point) {
            let key = (region.clone(), kind.as_str(), outcome.as_str());
            let series = events.entry(key).or_insert_with(|| EventSeries {
                region,
                kind,
                outcome,
                counts: vec![0; points],
            });
            series.counts[at] += count(n);
        }
    }
    let mut deliveries: BTreeMap<(String, &str), DeliverySeries> = BTreeMap::new();
    for (point, sink, outcome, n) in rows.deliveries {
        let outcome =
            DeliveryOutcome::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?;
        if let Some(at) = at(point) {
            let key = (sink.clone(), outcome.as_str());
            let series = deliveries.entry(key).or_insert_with(|| DeliverySeries {
                sink,
                outcome,
                counts: vec![0; points],
            });
            series.counts[at] += count(n);
        }
    }
    // Each sink's merged histogram per bucket of the window, as (latency bucket, count).
    let mut histograms: BTreeMap<String, Vec<BTreeMap<u16, u64>>> = BTreeMap::new();
    for (point, sink, bucket, n) in rows.latency {
        let bucket = u16::try_from(bucket)
            .ok()
            .filter(|bucket| *bucket <= LAST_BUCKET)
            .ok_or_else(|| corrupt("latency bucket", &bucket.to_string()))?;
        if let Some(at) = at(point) {
            *histograms
                .entry(sink)
                .or_insert_with(|| vec![BTreeMap::new(); points])[at]
                .entry(bucket)
                .or_default() += count(n);
        }
    }

    Ok(Stats {
        from_minute,
        events: events.into_values().collect(),
        deliveries: deliveries.into_values().collect(),
        latency: histograms
            .into_iter()
            .map(|(sink, histograms)| {
                let percentile = |p| histograms.iter().map(|h| percentile(h, p)).collect();
                LatencySeries {
                    sink,
                    p50_ms: percentile(50),
                    p95_ms: percentile(95),
                    p99_ms: percentile(99),
                }
            })
            .collect(),
    })
}

/// The `p`th percentile (nearest rank) of a histogram, as its bucket reads; none when it is empty.
fn percentile(histogram: &BTreeMap<u16, u64>, p: u64) -> Option<f64> {
    let total: u64 = histogram.values().sum();
    let rank = (p * total).div_ceil(100).max(1);
    histogram
        .iter()
        .scan(0, |seen, (bucket, count)| {
            *seen += count;
            Some((*bucket, *seen))
        })
        .find(|(_, seen)| *seen >= rank)
        .map(|(bucket, _)| bucket_ms(bucket))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt {
        what: format!("stats {what}"),
        source: format!("{value:?} is not one").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_into_quarter_doublings_from_a_millisecond_on() {
        let ms = |ms: f64| latency_bucket(Duration::from_secs_f64(ms / 1000.0));
        assert_eq!(ms(0.0), 0);
        assert_eq!(ms(1.0), 0);
        assert_eq!(ms(1.1), 1);
        assert_eq!(ms(2.0), 4);
        assert_eq!(ms(60_000.0), 64);
        assert_eq!(ms(1e12), LAST_BUCKET);
        assert_eq!(latency_bucket(Duration::MAX), LAST_BUCKET);
    }

    #[test]
    fn every_latency_from_a_millisecond_to_twelve_days_reads_within_nine_percent() {
        let mut ms = 1.0;
        while ms < 2f64.powi(30) {
            let read = bucket_ms(latency_bucket(Duration::from_secs_f64(ms / 1000.0)));
            assert!((read / ms - 1.0).abs() <= 0.0906, "{ms} ms reads {read}");
            ms *= 1.013;
        }
    }

    #[test]
    fn a_percentile_is_the_bucket_of_its_nearest_rank() {
        let histogram = BTreeMap::from([(4, 1), (10, 98), (40, 1)]);
        assert_eq!(percentile(&histogram, 50), Some(bucket_ms(10)));
        assert_eq!(percentile(&histogram, 99), Some(bucket_ms(10)));
        let two = BTreeMap::from([(4, 1), (8, 1)]);
        assert_eq!(percentile(&two, 50), Some(bucket_ms(4)));
        assert_eq!(percentile(&two, 95), Some(bucket_ms(8)));
        assert_eq!(percentile(&BTreeMap::new(), 50), None);
    }

    #[test]
    fn buckets_start_at_multiples_of_the_step_and_the_last_holds_now() {
        assert_eq!(from_minute(125, 60, 2), 60);
        assert_eq!(from_minute(120, 60, 2), 60);
        assert_eq!(from_minute(119, 60, 2), 0);
        assert_eq!(from_minute(125, 1, 10), 116);
    }
}
