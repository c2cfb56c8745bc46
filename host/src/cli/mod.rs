//! The command line: parses arguments, loads the configuration, sets up logging and runs the chosen
//! command (the plugin tools and `sink-echo` in their own files). Exit codes: 0 success, 1 a user error (bad config, unreachable database) with one line on
//! stderr, 2 a usage error (from clap).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

mod dry_run;
mod echo;
mod guest;
mod journal;
mod new;
mod plugin;
mod slot;

use crate::config::Config;
use crate::service::{self, Service};
use crate::{capture, store, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "plant-monitor",
    version,
    about = "Power plant registry with change capture, WebAssembly plugins and HTTP delivery."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything: API, migrations, feed, plugins and sinks.
    Serve(ConfigArg),
    /// Apply database migrations and exit.
    Migrate(ConfigArg),
    /// Inspect or try out a plugin.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Read the recorded journal.
    #[command(subcommand)]
    Journal(journal::JournalCommand),
    /// Manage capture from the write-ahead log (PostgreSQL).
    #[command(subcommand)]
    Capture(slot::CaptureCommand),
    /// A webhook receiver for development: prints each event it receives.
    SinkEcho(echo::SinkEchoArgs),
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// Configuration file [default: config/plant-monitor.toml if it exists, else built-in defaults]
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// A tokio runtime for one command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs the program and turns its outcome into the documented exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, leaving out a cause its parent's message already quotes
/// (database drivers often repeat the I/O error at every level).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line = format!("{line}: {text}");
        }
    }
    line.replace('\n', " ")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let args = match cli.command {
        Command::Plugin(command) => return plugin::run(command),
        Command::Journal(command) => return journal::run(command),
        Command::Capture(command) => return slot::run(command),
        Command::SinkEcho(args) => return echo::run(args),
        Command::Serve(ref args) | Command::Migrate(ref args) => args,
    };
    let (config, source) = Config::load(args.config.as_deref())?;
    telemetry::init(config.log.format);
    tracing::debug!(%source, "Loaded the configuration.");
    runtime()?.block_on(async {
        match cli.command {
            Command::Serve(_) => {
                let service = Service::start(&config).await?;
                service.run_until(service::termination_signal()).await?;
            }
            Command::Migrate(_) => {
                let store = store::connect(&config.database).await?;
                capture::prepare(&*store, &config).await?;
                store.close().await;
                tracing::info!(database = %config.database.url, "Migrations applied.");
            }
            Command::Plugin(_)
            | Command::Journal(_)
            | Command::Capture(_)
            | Command::SinkEcho(_) => {}
        }
        Ok(())
    })
}
