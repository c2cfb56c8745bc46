//! `/v1/plugins`: what is loaded (with its statistics and whether it came from the compiled cache) and
//! which files in the plugin folder were refused, with the reason.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use crate::plugins::{CacheOutcome, Refused, Role};

#[derive(Debug, Serialize)]
pub struct PluginList {
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
    cache: CacheOutcome,
    calls: u64,
    errors: u64,
    mean_us: f64,
}

pub async fn list(State(state): State<AppState>) -> Json<PluginList> {
    let items = state
        .pipeline
        .plugins()
        .iter()
        .filter_map(|plugin| {
            let role = *plugin.roles.first()?;
            Some(PluginView {
                name: plugin.name.clone(),
                role,
                roles: plugin.roles.clone(),
                order: plugin.order(role),
                sha256: plugin.sha256.clone(),
                loaded_at: humantime::format_rfc3339_millis(plugin.loaded_at).to_string(),
                cache: plugin.cache,
                calls: plugin.stats.calls(),
                errors: plugin.stats.errors(),
                mean_us: (plugin.stats.mean_micros() * 100.0).round() / 100.0,
            })
        })
        .collect();
    Json(PluginList {
        items,
        refused: state.refused.to_vec(),
    })
}
