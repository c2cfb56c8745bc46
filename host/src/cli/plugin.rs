//! The plugin author's tools: `plugin check FILE`, `plugin run FILE --event EVENT.json` (one event),
//! `plugin run FILE --journal N` (a dry run over the recorded journal, see `dry_run.rs`) and
//! `plugin test FILE EVENTS.jsonl [--expect ANSWERS.jsonl]` (fixtures, as in a plugin's own CI). All
//! load the component exactly as `serve` does, in the same sandbox.

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
    /// Run a plugin on one event (the `data` object of a sink payload) and print what it returned, or
    /// over the last N recorded journal events and print where the pipeline with it would differ.
    Run(RunArgs),
    /// Run a plugin over events (JSON lines, e.g. from `journal export`) and print its answers as JSON
    /// lines; with `--expect`, check them against expected answers.
    Test(TestArgs),
    /// Make a new plugin project from a template, or list the languages.
    New(super::new::NewArgs),
    /// Install the toolchain of one or more plugin languages (pinned, from the package registries).
    Toolchain(super::new::ToolchainArgs),
    /// Write the bindings of a plugin world for C (and Zig) or Go; used by their build.sh.
    Bindings(super::guest::BindingsArgs),
    /// Turn a core WebAssembly module into a plugin component; used by C, Go and Zig's build.sh.
    Componentize(super::guest::ComponentizeArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The component file.
    file: PathBuf,
    /// A JSON file holding the event.
    #[arg(long, value_name = "EVENT.json", required_unless_present = "journal")]
    event: Option<PathBuf>,
    /// Instead of one event: the last N processed events of the configured database, run through the
    /// configured pipeline with this plugin in it (replacing the plugin of its name).
    #[arg(long, value_name = "N", conflicts_with = "event")]
    journal: Option<u32>,
    /// The service's configuration file, for `--journal`.
    #[arg(short = 'c', long = "config-file", value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// A `[config]` entry for the plugin, overriding its manifest; may be repeated.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
    config: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The component file.
    file: PathBuf,
    /// The events, one JSON object per line.
    events: PathBuf,
    /// The expected answers, one JSON object per line as this command prints them.
    #[arg(long, value_name = "ANSWERS.jsonl")]
    expect: Option<PathBuf>,
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
        PluginCommand::Run(args) => match args.journal {
            Some(last) => {
                let manifest = manifest_with(&args.file, args.config)?;
                super::dry_run::run(&args.file, manifest, last, args.config_file.as_deref())
            }
            None => try_out(args),
        },
        PluginCommand::Test(args) => test(args),
        PluginCommand::New(args) => super::new::run(args),
        PluginCommand::Toolchain(args) => super::new::toolchain(args),
        PluginCommand::Bindings(args) => super::guest::bindings(args),
        PluginCommand::Componentize(args) => super::guest::componentize(args),
    }
}

/// The manifest beside `file` with `overrides` in its `[config]`.
fn manifest_with(file: &Path, overrides: Vec<(String, String)>) -> anyhow::Result<Manifest> {
    let mut manifest = Manifest::beside(file)?;
    manifest.config.extend(overrides);
    Ok(manifest)
}

/// Loads with the default sandbox; compiled forms go to this user's cache.
fn load(file: &Path, manifest: Option<Manifest>) -> anyhow::Result<Plugin> {
    let config = PluginsConfig::default();
    let runtime = Runtime::new(&config)?;
    Ok(plugins::load_file(&runtime, file, &user_cache(), manifest)?)
}

/// The plugin tools' cache of compiled components: this user's own (`$XDG_CACHE_HOME`, else
/// `~/.cache`), never a folder other users share, where one could plant code for another to run.
pub fn user_cache() -> PathBuf {
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
    let plugin = load(&args.file, Some(manifest_with(&args.file, args.config)?))?;
    let path = args.event.context("--event or --journal is required")?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let event: Event = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an event", path.display()))?;
    let (answers, failed) = answers(&plugin, &event);
    print(&serde_json::to_string_pretty(&answers)?)?;
    if failed {
        bail!("the plugin failed; see the error above");
    }
    Ok(())
}

/// Runs the plugin over each event of a JSON-lines file and prints its answers, a line each; with
/// `--expect`, fails listing every answer that is not the expected line.
fn test(args: TestArgs) -> anyhow::Result<()> {
    let plugin = load(&args.file, Some(manifest_with(&args.file, args.config)?))?;
    let events = json_lines(&args.events)?;
    let expected = args.expect.as_deref().map(json_lines).transpose()?;
    if let Some(expected) = &expected
        && expected.len() != events.len()
    {
        bail!(
            "{} events but {} expected answers",
            events.len(),
            expected.len()
        );
    }
    let mut mismatches = 0;
    for (line, value) in events.into_iter().enumerate() {
        let event: Event = serde_json::from_value(value).with_context(|| {
            format!("{} line {}: not an event", args.events.display(), line + 1)
        })?;
        let (mut answer, _) = answers(&plugin, &event);
        answer["seq"] = event.seq.into();
        print(&answer.to_string())?;
        if let Some(expected) = &expected
            && expected[line] != answer
        {
            mismatches += 1;
            eprintln!(
                "line {}: seq {}: expected {} but got {answer}",
                line + 1,
                event.seq,
                expected[line]
            );
        }
    }
    if mismatches > 0 {
        bail!("{mismatches} answers differ from the expected ones");
    }
    Ok(())
}

/// Each line of `path` as JSON (blank lines skipped).
fn json_lines(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    (text.lines().enumerate())
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{} line {}: not JSON", path.display(), n + 1))
        })
        .collect()
}

/// What each role of the plugin answers for `event` (an error as `{"error": …}`), and whether any
/// failed.
fn answers(plugin: &Plugin, event: &Event) -> (Value, bool) {
    let mut answers = serde_json::Map::new();
    let mut failed = false;
    for role in &plugin.roles {
        let answer = match role {
            Role::Filter => plugin.keep(event).map(|keep| json!({ "keep": keep })),
            Role::Enrich => plugin.enrich(event).map(|event| json!({ "event": event })),
            Role::Route => plugin.route(event).map(|sinks| json!({ "sinks": sinks })),
        };
        failed |= answer.is_err();
        answers.insert(
            role.as_str().to_owned(),
            answer.unwrap_or_else(|error| json!({ "error": error.to_string() })),
        );
    }
    (Value::Object(answers), failed)
}

pub(super) fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    Ok(())
}
