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
use crate::store::{DeadLetters, SinkStats};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SinkList {
    items: Vec<SinkView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct SinkView {
    name: String,
    url: String,
    /// `enabled`; `waiting` while its health probe fails (deliveries wait without spending
    /// attempts); `disabled` after a 410 until enabled again.
    state: &'static str,
    /// Why deliveries wait for the health probe; null when they do not.
    waiting_reason: Option<String>,
    in_flight: u64,
    #[serde(flatten)]
    stats: SinkStats,
    /// The recent `health_url` probes, oldest first; null without a `health_url`.
    health: Option<Vec<Probe>>,
}

/// What `POST /v1/sinks/{name}/enable` did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enabled {
    name: String,
    state: &'static str,
    /// False when the sink was not disabled to begin with.
    was_disabled: bool,
}

/// What `POST /v1/sinks/{name}/retry` did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Retried {
    sink: String,
    /// How many dead letters went back to pending.
    retried: u64,
    /// How many pending deliveries waiting for a later retry are due now.
    rescheduled: u64,
}

/// Each configured sink: its state, outbox figures, last error and health probes.
#[utoipa::path(
    get, path = "/v1/sinks", tag = "operations",
    responses((status = 200, description = "The sinks.", body = SinkList))
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<SinkList>, Problem> {
    let mut stats: std::collections::BTreeMap<String, SinkStats> =
        state.store.sink_stats().await?.into_iter().collect();
    let items: Vec<SinkView> = state
        .sinks
        .iter()
        .map(|sink| {
            let stats = stats.remove(&sink.name).unwrap_or_default();
            let waiting_reason = sink.waiting();
            SinkView {
                name: sink.name.clone(),
                url: sink.url().to_string(),
                state: match (&stats.disabled_reason, &waiting_reason) {
                    (Some(_), _) => "disabled",
                    (None, Some(_)) => "waiting",
                    (None, None) => "enabled",
                },
                waiting_reason,
                in_flight: sink.in_flight(),
                stats,
                health: sink.health(),
            }
        })
        .collect();
    Ok(Json(SinkList { items }))
}

/// Enables a sink a 410 disabled, on every replica.
#[utoipa::path(
    post, path = "/v1/sinks/{name}/enable", tag = "operations",
    params(("name" = String, Path, pattern = "^[^\\u0000]*$", description = "The sink's name.")),
    responses(
        (status = 200, description = "Enabled.", body = Enabled),
        (status = 404, description = "No sink has this name."),
    )
)]
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

/// Puts a sink's dead letters back in its queue and makes its waiting retries due now.
#[utoipa::path(
    post, path = "/v1/sinks/{name}/retry", tag = "operations",
    params(("name" = String, Path, pattern = "^[^\\u0000]*$", description = "The sink's name.")),
    responses(
        (status = 202, description = "Queued again.", body = Retried),
        (status = 404, description = "No sink has this name."),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Retried>), Problem> {
    configured(&state, &name)?;
    let dead_letters = DeadLetters {
        sink: Some(name.clone()),
        ..DeadLetters::default()
    };
    let retried = state.store.retry_dead(&dead_letters).await?;
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
    if state.sinks.contains(name) {
        Ok(())
    } else {
        Err(Problem::not_found(format!("no sink is named {name:?}")))
    }
}
