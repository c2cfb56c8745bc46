//! `plant-monitor plugin check FILE` and `plant-monitor plugin run FILE --event EVENT.json`: the plugin
//! author's tools. Both load the component exactly as `serve` does, in the same sandbox.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::config::PluginsConfig;
use crate::domain::Event;
use crate::plugins::{self, Manifest, Plugin, Role, Runtime};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Say which roles (filter / enrich / route) a component exports and whether it fits this host.
    Check {
        /// The component file.
        file: PathBuf,
    },
    /// Run a plugin on one event (the `data` object of a sink payload) and print what it returned.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The component file.
    file: PathBuf,
    /// A JSON file holding the event.
    #[arg(long, value_name = "EVENT.json")]
    event: PathBuf,
    /// A `[config]` entry for the plugin, overriding its manifest; may be repeated.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
    config: Vec<(String, String)>,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

pub fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Check { file } => check(&file),
        PluginCommand::Run(args) => try_out(args),
    }
}

/// Loads with the default sandbox; compiled forms go to this user's cache.
fn load(file: &Path, manifest: Option<Manifest>) -> anyhow::Result<Plugin> {
    let config = PluginsConfig::default();
    let runtime = Runtime::new(&config)?;
    Ok(plugins::load_file(&runtime, file, &user_cache(), manifest)?)
}

/// The plugin tools' cache of compiled components: this user's own (`$XDG_CACHE_HOME`, else
/// `~/.cache`), never a folder other users share, where one could plant code for another to run.
fn user_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        // Without a home the temporary folder is left, where the cache refuses a folder it does
        // not own alone.
        .unwrap_or_else(std::env::temp_dir);
    base.join("plant-monitor").join("plugin-cache")
}

fn check(file: &Path) -> anyhow::Result<()> {
    let plugin = load(file, None)?;
    let roles: Vec<&str> = plugin.roles.iter().map(|r| r.as_str()).collect();
    print(&format!(
        "{}: fits plant-monitor:plugin@0.1.0; roles: {}; sha256 {}",
        file.display(),
        roles.join(", "),
        plugin.version.sha256
    ))
}

fn try_out(args: RunArgs) -> anyhow::Result<()> {
    let mut manifest = Manifest::beside(&args.file)?;
    manifest.config.extend(args.config);
    let plugin = load(&args.file, Some(manifest))?;
    let text = std::fs::read_to_string(&args.event)
        .with_context(|| format!("cannot read {}", args.event.display()))?;
    let event: Event = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an event", args.event.display()))?;
    let mut answers = BTreeMap::new();
    let mut failed = false;
    for role in &plugin.roles {
        let answer = match role {
            Role::Filter => plugin.keep(&event).map(|keep| json!({ "keep": keep })),
            Role::Enrich => plugin.enrich(&event).map(|event| json!({ "event": event })),
            Role::Route => plugin.route(&event).map(|sinks| json!({ "sinks": sinks })),
        };
        failed |= answer.is_err();
        answers.insert(
            role.as_str(),
            answer.unwrap_or_else(|error| json!({ "error": error.to_string() })),
        );
    }
    print(&serde_json::to_string_pretty(&Value::from_iter(
        answers.into_iter().map(|(k, v)| (k.to_owned(), v)),
    ))?)?;
    if failed {
        bail!("the plugin failed; see the error above");
    }
    Ok(())
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    Ok(())
}
