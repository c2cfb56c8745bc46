//! `/v1/sinks`: each configured sink with its outbox figures (pending, in flight, delivered, failed
//! attempts, dead), its state (a 410 disables it for every replica) and its last error; `enable`
//! re-enables a disabled sink and `retry` puts all its dead letters back in the queue and makes its
//! deliveries waiting for a retry due now.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::extract::Path;
use super::{AppState, Problem};
use crate::sinks::Probe;
use crate::store::SinkStats;

#[derive(Debug, Serialize)]
pub struct SinkList {
    items: Vec<SinkView>,
}

#[derive(Debug, Serialize)]
struct SinkView {
    name: String,
    url: String,
    /// `enabled`, or `disabled` after a 410 until enabled again.
    state: &'static str,
    in_flight: u64,
    #[serde(flatten)]
    stats: SinkStats,
    /// The recent `health_url` probes, oldest first; null without a `health_url`.
    health: Option<Vec<Probe>>,
}

/// What `POST /v1/sinks/{name}/enable` did.
#[derive(Debug, Serialize)]
pub struct Enabled {
    name: String,
    state: &'static str,
    /// False when the sink was not disabled to begin with.
    was_disabled: bool,
}

/// What `POST /v1/sinks/{name}/retry` did.
#[derive(Debug, Serialize)]
pub struct Retried {
    sink: String,
    /// How many dead letters went back to pending.
    retried: u64,
    /// How many pending deliveries waiting for a later retry are due now.
    rescheduled: u64,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<SinkList>, Problem> {
    let mut stats: std::collections::BTreeMap<String, SinkStats> =
        state.store.sink_stats().await?.into_iter().collect();
    let items: Vec<SinkView> = state
        .sinks
        .iter()
        .map(|sink| {
            let stats = stats.remove(&sink.name).unwrap_or_default();
            SinkView {
                name: sink.name.clone(),
                url: sink.url().to_string(),
                state: if stats.disabled_reason.is_some() {
                    "disabled"
                } else {
                    "enabled"
                },
                in_flight: sink.in_flight(),
                stats,
                health: sink.health(),
            }
        })
        .collect();
    Ok(Json(SinkList { items }))
}

pub async fn enable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Enabled>, Problem> {
    configured(&state, &name)?;
    let was_disabled = state.store.enable_sink(&name).await?;
    state.deliveries_due.send_replace(());
    Ok(Json(Enabled {
        name,
        state: "enabled",
        was_disabled,
    }))
}

pub async fn retry(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Retried>), Problem> {
    configured(&state, &name)?;
    let retried = state.store.retry_dead(&name).await?;
    let rescheduled = state.store.reschedule_pending(&name).await?;
    state.deliveries_due.send_replace(());
    Ok((
        StatusCode::ACCEPTED,
        Json(Retried {
            sink: name,
            retried,
            rescheduled,
        }),
    ))
}

fn configured(state: &AppState, name: &str) -> Result<(), Problem> {
    if state.sinks.iter().any(|sink| sink.name == name) {
        Ok(())
    } else {
        Err(Problem::not_found(format!("no sink is named {name:?}")))
    }
}
