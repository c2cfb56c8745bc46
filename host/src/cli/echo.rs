//! `plant-monitor sink-echo --listen ADDR [--secret S] [--fail-rate R] [--status N [--retry-after S]]
//! [--delay D]`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::config::LogFormat;
use crate::sinks::echo::EchoOptions;
use crate::sinks::signing::Signer;
use crate::{service, sinks, telemetry};

#[derive(Debug, Args)]
pub struct SinkEchoArgs {
    /// Address to listen on, e.g. 127.0.0.1:9000
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Verify Standard Webhooks signatures with this secret (whsec_…, or env:NAME); repeat for a
    /// rotation. Each line shows signature=valid|invalid|missing; unsigned or badly signed requests
    /// are answered 401.
    #[arg(long, value_name = "SECRET")]
    secret: Vec<String>,
    /// Answer this share of requests (0 to 1) with 500, at random.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    fail_rate: f64,
    /// Answer every request with this status instead of 204.
    #[arg(long, value_name = "CODE")]
    status: Option<u16>,
    /// With --status: send `Retry-After: SECONDS`.
    #[arg(long, value_name = "SECONDS", requires = "status")]
    retry_after: Option<u64>,
    /// Wait this long before answering, e.g. 2s.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    delay: Option<Duration>,
}

pub fn run(args: SinkEchoArgs) -> anyhow::Result<()> {
    telemetry::init(LogFormat::Pretty);
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.fail_rate),
        "--fail-rate must be from 0 to 1"
    );
    let signer = if args.secret.is_empty() {
        None
    } else {
        Some(Signer::new(&args.secret, |var| std::env::var(var).ok()).context("--secret")?)
    };
    let options = EchoOptions {
        signer,
        fail_rate: args.fail_rate,
        status: args.status,
        retry_after: args.retry_after,
        delay: args.delay.unwrap_or_default(),
    };
    super::runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let local_addr = listener.local_addr()?;
        tracing::info!(%local_addr, "sink-echo is listening; every event received is printed to stdout.");
        sinks::echo::serve(listener, options, service::termination_signal()).await?;
        Ok(())
    })
}
