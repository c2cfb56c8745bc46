//! `/v1/stats`: what happened over a window, in time buckets, for a console's line charts: journal
//! entries the feed processed per region, kind and outcome, sink attempts per outcome, and delivery
//! latency percentiles per sink. Each series is one array aligned with `buckets`, the shape uPlot
//! draws. The store adds the counts up per minute as the work is recorded, so an answer costs the
//! window's buckets whatever the size of the journal and the outbox.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::extract::Query;
use super::{AppState, Problem};
use crate::store::stats::{POINTS_MAX, STEP_MAX, WINDOW_MAX};
use crate::store::{DeliverySeries, EventSeries, LatencySeries};

/// The window when none is given: an hour.
const WINDOW_DEFAULT: u32 = 60;

/// The step when none is given: a minute.
const STEP_DEFAULT: u32 = 1;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// How far back the buckets reach: a duration of whole minutes from 1m to 7d, such as `90m`,
    /// `6h` or `7d` (default `1h`).
    #[param(example = "1h")]
    window: Option<String>,
    /// How long each bucket is: a duration of whole minutes from 1m to 1d (default `1m`), and at
    /// most 1440 buckets in the window.
    #[param(example = "1m")]
    step: Option<String>,
}

/// Activity in the buckets of a window, each series aligned with `buckets`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsAnswer {
    /// The window asked for, as a duration.
    #[schema(example = "1h")]
    window: String,
    /// The length of each bucket, as a duration.
    #[schema(example = "1m")]
    step: String,
    /// The start of the first bucket (RFC 3339, UTC).
    from: String,
    /// The end of the last bucket, which holds the current minute (RFC 3339, UTC).
    to: String,
    /// The start of each bucket, oldest first; buckets start at multiples of the step since the Unix
    /// epoch, by the database clock.
    buckets: Vec<String>,
    /// Journal entries the feed processed, per region, kind and outcome.
    events: Vec<EventSeries>,
    /// Sink attempts per outcome: `delivered`, `failed` (each failed attempt) and `dead` (an attempt
    /// that made its delivery a dead letter, counted as failed too).
    deliveries: Vec<DeliverySeries>,
    /// Percentiles of the time from a change's commit to its sink's 2xx, per sink, to within 9 %.
    latency: Vec<LatencySeries>,
}

/// Activity in time buckets: events per region, kind and outcome, deliveries per sink and outcome,
/// and delivery latency percentiles per sink.
#[utoipa::path(
    get, path = "/v1/stats", tag = "operations",
    params(StatsQuery),
    responses(
        (status = 200, description = "The window's buckets and a series per thing counted.", body = StatsAnswer),
        (status = 400, description = "`window` or `step` is not a whole number of minutes within its bounds, or they make more than 1440 buckets."),
    )
)]
pub async fn stats(
    State(state): State<AppState>,
    Query(query): Query<StatsQuery>,
) -> Result<Json<StatsAnswer>, Problem> {
    let window = minutes(
        "window",
        query.window.as_deref(),
        WINDOW_DEFAULT,
        WINDOW_MAX,
    )?;
    let step = minutes("step", query.step.as_deref(), STEP_DEFAULT, STEP_MAX)?;
    let points = window.div_ceil(step);
    if points > POINTS_MAX {
        return Err(Problem::bad_request(format!(
            "`step` makes {points} buckets of the window, more than {POINTS_MAX}: \
             take a step of at least {}",
            duration(window.div_ceil(POINTS_MAX))
        )));
    }
    let stats = state.store.stats(step, points).await?;
    let start = |point: u32| time(stats.from_minute + i64::from(point) * i64::from(step));
    Ok(Json(StatsAnswer {
        window: duration(window),
        step: duration(step),
        from: start(0),
        to: start(points),
        buckets: (0..points).map(start).collect(),
        events: stats.events,
        deliveries: stats.deliveries,
        latency: stats.latency,
    }))
}

/// The duration parameter `name` in whole minutes, from 1 to `max`; `default` when it is not given.
fn minutes(name: &str, given: Option<&str>, default: u32, max: Duration) -> Result<u32, Problem> {
    let Some(text) = given else {
        return Ok(default);
    };
    let given = humantime::parse_duration(text).map_err(|error| {
        Problem::bad_request(format!(
            "`{name}` is not a duration ({error}); write a number and a unit, e.g. 30m, 6h or 7d"
        ))
    })?;
    let max_minutes = (max.as_secs() / 60) as u32;
    if given.is_zero() || given.subsec_nanos() != 0 || given.as_secs() % 60 != 0 {
        return Err(Problem::bad_request(format!(
            "`{name}` is a whole number of minutes, from 1m to {}",
            duration(max_minutes)
        )));
    }
    match u32::try_from(given.as_secs() / 60) {
        Ok(minutes) if minutes <= max_minutes => Ok(minutes),
        _ => Err(Problem::bad_request(format!(
            "`{name}` is at most {}",
            duration(max_minutes)
        ))),
    }
}

/// Minutes as a duration a client can send back, such as `1h` or `7days`.
fn duration(minutes: u32) -> String {
    humantime::format_duration(Duration::from_secs(u64::from(minutes) * 60)).to_string()
}

/// A minute since the Unix epoch as an RFC 3339 time in UTC.
fn time(minute: i64) -> String {
    let seconds = u64::try_from(minute).unwrap_or(0) * 60;
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
        .to_string()
}
