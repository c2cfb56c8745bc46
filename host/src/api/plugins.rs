//! `/v1/plugins`: the pipeline snapshot in force (its id is the `pipeline` attribute of the events it
//! produces), each plugin in it with its version, state and statistics and the version it replaced,
//! which files in the plugin folder were refused, with the reason, and which are being compiled; a
//! shadow version's report, and its promotion.

use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::extract::Path;
use super::{AppState, Problem};
use crate::pipeline::{Compiling, SHADOW_SUFFIX, ShadowReport, Swap, SwapResult};
use crate::plugins::{CacheOutcome, Plugin, Refused, Role, Stats};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginList {
    /// The id of the pipeline snapshot in force.
    pipeline: String,
    items: Vec<PluginView>,
    refused: Vec<Refused>,
    /// New versions being compiled; the version before each, if any, is in `items` meanwhile.
    compiling: Vec<CompilingView>,
}

/// A file being compiled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct CompilingView {
    /// Always `compiling`, for clients that read every entry's state.
    state: &'static str,
    #[serde(flatten)]
    file: Compiling,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    #[serde(flatten)]
    figures: Figures,
    /// The version this one replaced, kept for going back to it.
    previous: Option<Version>,
    /// The last files read under this name (oldest first) and what became of each.
    history: Vec<Swap>,
    /// The shadow version running beside it, if any (see `/v1/plugins/{name}/shadow`).
    #[serde(skip_serializing_if = "Option::is_none")]
    shadow: Option<Version>,
}

/// What a plugin in the list is doing.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Version {
    sha256: String,
    loaded_at: String,
}

/// The pipeline in force: each plugin with its version, state and figures, refused files, and files
/// being compiled.
#[utoipa::path(
    get, path = "/v1/plugins", tag = "operations",
    responses((status = 200, description = "The plugins.", body = PluginList))
)]
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
                figures: figures(&plugin.stats),
                previous: past.and_then(|p| p.previous.as_ref()).map(version),
                history: past
                    .map(|p| p.history.iter().cloned().collect())
                    .unwrap_or_default(),
                shadow: pipeline.shadow(&plugin.name).map(|s| version(&s.plugin)),
            })
        })
        .collect();
    Json(PluginList {
        pipeline: pipeline.id().to_owned(),
        items,
        refused: pipeline.refused().to_vec(),
        compiling: (pipeline.compiling().iter())
            .map(|file| CompilingView {
                state: "compiling",
                file: file.clone(),
            })
            .collect(),
    })
}

/// A plugin version's calls and their times.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Figures {
    calls: u64,
    errors: u64,
    traps: u64,
    mean_us: f64,
    p99_us: f64,
}

fn figures(stats: &Stats) -> Figures {
    Figures {
        calls: stats.calls(),
        errors: stats.errors(),
        traps: stats.traps(),
        mean_us: round(stats.mean_micros()),
        p99_us: round(stats.p99_micros()),
    }
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

/// `GET /v1/plugins/{name}/shadow`: the shadow version beside `name` and how its answers compared.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShadowView {
    name: String,
    live: Option<Version>,
    shadow: ShadowVersion,
    report: ShadowReport,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ShadowVersion {
    #[serde(flatten)]
    version: Version,
    #[serde(flatten)]
    figures: Figures,
}

/// A shadow version's figures and how its answers compared with the live plugin's.
#[utoipa::path(
    get, path = "/v1/plugins/{name}/shadow", tag = "operations",
    params(("name" = String, Path, pattern = "^[^\\u0000]*$", description = "The plugin's name.")),
    responses(
        (status = 200, description = "The shadow version's report.", body = ShadowView),
        (status = 404, description = "No shadow version runs beside this plugin."),
    )
)]
pub async fn shadow(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ShadowView>, Problem> {
    let pipeline = state.pipeline.load();
    let shadow = pipeline.shadow(&name).ok_or_else(|| no_shadow(&name))?;
    let plugin = &shadow.plugin;
    Ok(Json(ShadowView {
        live: (pipeline.plugins().iter())
            .find(|live| live.name == name)
            .map(version),
        name,
        shadow: ShadowVersion {
            version: version(plugin),
            figures: figures(&plugin.stats),
        },
        report: shadow.report(),
    }))
}

/// What `POST /v1/plugins/{name}/promote` did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Promoted {
    name: String,
    /// The shadow version's hash, live once the folder has been read again (moments).
    sha256: String,
}

/// Makes the shadow version of `name` the live one by renaming its files in the plugin folder, as an
/// operator would; the folder watcher then loads it like any new version (on probation).
/// Makes the shadow version the live one (it loads on probation, like any new version).
#[utoipa::path(
    post, path = "/v1/plugins/{name}/promote", tag = "operations",
    params(("name" = String, Path, pattern = "^[^\\u0000]*$", description = "The plugin's name.")),
    responses(
        (status = 202, description = "Its files are renamed; it is live moments later.", body = Promoted),
        (status = 404, description = "No shadow version runs beside this plugin."),
    )
)]
pub async fn promote(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Promoted>), Problem> {
    let sha256 = {
        let pipeline = state.pipeline.load();
        let shadow = pipeline.shadow(&name).ok_or_else(|| no_shadow(&name))?;
        shadow.plugin.version.sha256.clone()
    };
    let dir = state.plugins_dir.clone();
    let renamed = tokio::task::spawn_blocking({
        let name = name.clone();
        move || promote_files(&dir, &name)
    })
    .await
    .map_err(|error| Problem::internal(&error))?;
    renamed.map_err(|error| Problem::internal(&error))?;
    Ok((StatusCode::ACCEPTED, Json(Promoted { name, sha256 })))
}

/// `NAME.shadow.toml` becomes `NAME.toml` (or, without one, `NAME.toml` goes, so the promoted version
/// runs with the manifest it ran with as a shadow), then `NAME.shadow.wasm` becomes `NAME.wasm`.
fn promote_files(dir: &std::path::Path, name: &str) -> std::io::Result<()> {
    let shadow = |ext: &str| dir.join(format!("{name}{SHADOW_SUFFIX}.{ext}"));
    let live = |ext: &str| dir.join(format!("{name}.{ext}"));
    match std::fs::rename(shadow("toml"), live("toml")) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::remove_file(live("toml")) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        other => other?,
    }
    std::fs::rename(shadow("wasm"), live("wasm"))
}

fn no_shadow(name: &str) -> Problem {
    Problem::not_found(format!(
        "no shadow version runs beside {name:?} (drop it in the plugin folder as {name}{SHADOW_SUFFIX}.wasm)"
    ))
}
