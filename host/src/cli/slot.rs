//! `plant-monitor capture drop-slot`: removes the replication slot of `wal` capture cleanly. A slot
//! keeps every change of the server's log from its position on, so an abandoned one fills the disk;
//! dropping it first switches the database back to trigger capture, after the capture leader (or this
//! command) has journaled every change the slot holds, so nothing is lost on the way.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::store;

#[derive(Debug, Subcommand)]
pub enum CaptureCommand {
    /// Switch the database to trigger capture and drop the replication slot of wal capture.
    DropSlot(DropSlotArgs),
}

#[derive(Debug, Args)]
pub struct DropSlotArgs {
    /// Configuration file (for `database.url`).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub fn run(command: CaptureCommand) -> anyhow::Result<()> {
    match command {
        CaptureCommand::DropSlot(args) => {
            let (config, _) = Config::load(args.config.as_deref())?;
            super::runtime()?.block_on(async {
                let store = store::connect(&config.database).await?;
                let dropped = store
                    .drop_slot()
                    .await
                    .context("cannot drop the replication slot");
                store.close().await;
                let said = match dropped? {
                    Some(slot) => format!(
                        "The journal is written by triggers now; dropped the replication slot {slot}."
                    ),
                    None => "The journal is written by triggers; there is no replication slot to drop."
                        .to_owned(),
                };
                writeln!(std::io::stdout(), "{said}")?;
                Ok(())
            })
        }
    }
}
