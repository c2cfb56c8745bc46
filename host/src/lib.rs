//! plant-monitor: a registry of power plants that captures every change, runs it through WebAssembly
//! plugins and delivers it to HTTP endpoints. The modules follow the data flow: [`config`] → [`store`]
//! → [`lease`] (with [`capture`] in `wal` mode) → [`feed`] (through [`plugins`] and [`pipeline`]) → [`sinks`], with [`backfill`]
//! journaling snapshots again on request, [`retention`] pruning what is done and [`api`] beside them,
//! serving a live stream of the journal that [`tail`] follows; [`service`] wires them into the
//! running process and [`cli`] is the command line.

// Product code handles every failure; tests may unwrap (see clippy.toml).
#![warn(clippy::unwrap_used)]

pub mod api;
pub mod backfill;
pub mod capture;
pub mod cli;
pub mod feed;
pub mod lease;
pub mod pipeline;
pub mod retention;
pub mod service;
pub mod sinks;
pub mod tail;
pub mod telemetry;

pub use plant_monitor_core::{config, domain};
pub use plant_monitor_plugins as plugins;
pub use plant_monitor_store as store;
