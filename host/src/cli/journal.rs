//! `plant-monitor journal export --last N`: the last N processed journal entries as the events the
//! plugins were given, one JSON object per line: fixtures for `plugin test`, taken from real traffic.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::{Config, DatabaseConfig};
use crate::domain::Event;
use crate::store::{self, Recorded};

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Write the last N processed events to standard output as JSON lines.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// How many of the most recent processed entries.
    #[arg(long, value_name = "N")]
    last: u32,
    /// Configuration file (for `database.url`).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub fn run(command: JournalCommand) -> anyhow::Result<()> {
    match command {
        JournalCommand::Export(args) => {
            let (config, _) = Config::load(args.config.as_deref())?;
            let recorded = read_recorded(&config.database, args.last)?;
            let mut out = std::io::stdout().lock();
            for entry in recorded {
                let event = Event::from(entry.change);
                writeln!(out, "{}", serde_json::to_string(&event)?)?;
            }
            Ok(())
        }
    }
}

/// The last `last` processed entries of the configured database, oldest first.
pub fn read_recorded(config: &DatabaseConfig, last: u32) -> anyhow::Result<Vec<Recorded>> {
    super::runtime()?.block_on(async {
        let store = store::connect(config).await?;
        let recorded = store
            .recorded(last)
            .await
            .context("cannot read the journal")?;
        store.close().await;
        Ok(recorded)
    })
}
