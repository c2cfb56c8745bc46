//! `plant-monitor sink-echo --listen ADDR`.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;

use crate::config::LogFormat;
use crate::{service, sinks, telemetry};

#[derive(Debug, Args)]
pub struct SinkEchoArgs {
    /// Address to listen on, e.g. 127.0.0.1:9000
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
}

pub fn run(args: SinkEchoArgs) -> anyhow::Result<()> {
    telemetry::init(LogFormat::Pretty);
    super::runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let local_addr = listener.local_addr()?;
        tracing::info!(%local_addr, "sink-echo is listening; every event received is printed to stdout.");
        sinks::echo::serve(listener, service::termination_signal()).await?;
        Ok(())
    })
}
