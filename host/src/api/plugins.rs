//! `/v1/plugins`: the pipeline snapshot in force (its id is the `pipeline` attribute of the events it
//! produces), each plugin in it with its version, state and statistics and the version it replaced,
//! and which files in the plugin folder were refused, with the reason.

use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use crate::pipeline::{Swap, SwapResult};
use crate::plugins::{CacheOutcome, Plugin, Refused, Role};

#[derive(Debug, Serialize)]
pub struct PluginList {
    /// The id of the pipeline snapshot in force.
    pipeline: String,
    items: Vec<PluginView>,
    refused: Vec<Refused>,
}

#[derive(Debug, Serialize)]
struct PluginView {
    name: String,
    /// The first of `roles`, for clients that expect one.
    role: Role,
    roles: Vec<Role>,
    order: i64,
    sha256: String,
    loaded_at: String,
    state: PluginState,
    /// While `state` is `quarantined`: when it is next tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    quarantined_until: Option<String>,
    cache: CacheOutcome,
    calls: u64,
    errors: u64,
    traps: u64,
    mean_us: f64,
    p99_us: f64,
    /// The version this one replaced, kept for going back to it.
    previous: Option<Version>,
    /// The last files read under this name (oldest first) and what became of each.
    history: Vec<Swap>,
}

/// What a plugin in the list is doing.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum PluginState {
    /// In the pipeline, handling events.
    Active,
    /// In the pipeline but failing too often lately: not called until `quarantined_until`; its
    /// events fail at once, as its `on_error` says.
    Quarantined,
    /// Running again because the version that replaced it failed its first events (see `history`).
    RolledBack,
}

#[derive(Debug, Serialize)]
struct Version {
    sha256: String,
    loaded_at: String,
}

pub async fn list(State(state): State<AppState>) -> Json<PluginList> {
    let pipeline = state.pipeline.load();
    let items = (pipeline.plugins().iter())
        .filter_map(|plugin| {
            let role = *plugin.roles.first()?;
            let past = pipeline.past(&plugin.name);
            let quarantined_until = plugin.quarantined_until();
            Some(PluginView {
                name: plugin.name.clone(),
                role,
                roles: plugin.roles.clone(),
                order: plugin.order(role),
                sha256: plugin.version.sha256.clone(),
                loaded_at: timestamp(plugin.loaded_at),
                state: match (quarantined_until, past.and_then(|p| p.history.back())) {
                    (Some(_), _) => PluginState::Quarantined,
                    (None, Some(swap)) if swap.result == SwapResult::RolledBack => {
                        PluginState::RolledBack
                    }
                    (None, _) => PluginState::Active,
                },
                quarantined_until: quarantined_until.map(timestamp),
                cache: plugin.cache,
                calls: plugin.stats.calls(),
                errors: plugin.stats.errors(),
                traps: plugin.stats.traps(),
                mean_us: round(plugin.stats.mean_micros()),
                p99_us: round(plugin.stats.p99_micros()),
                previous: past.and_then(|p| p.previous.as_ref()).map(version),
                history: past
                    .map(|p| p.history.iter().cloned().collect())
                    .unwrap_or_default(),
            })
        })
        .collect();
    Json(PluginList {
        pipeline: pipeline.id().to_owned(),
        items,
        refused: pipeline.refused().to_vec(),
    })
}

fn version(plugin: &std::sync::Arc<Plugin>) -> Version {
    Version {
        sha256: plugin.version.sha256.clone(),
        loaded_at: timestamp(plugin.loaded_at),
    }
}

fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Two decimals are all a reader of microseconds needs.
fn round(micros: f64) -> f64 {
    (micros * 100.0).round() / 100.0
}
