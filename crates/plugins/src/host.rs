//! The state each plugin instance's store carries, and the `host` interface it imports: `log` goes to
//! tracing with the plugin's name as a field, cut to `plugins.max_log_size` and held to
//! `plugins.max_logs_per_second`; `config` reads the `[config]` table of its manifest.
//! WASI is offered with nothing to reach: no preopened directories, no sockets, no environment, no
//! arguments, and closed stdio.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, Level};
use super::limits::{Limits, LogBudget};
use super::wait::Deadlined;

/// One instance's view of the world.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: MemoryCap,
    plugin: Arc<str>,
    config: Arc<BTreeMap<String, String>>,
    caps: Limits,
    log_budget: LogBudget,
    /// When the call in progress must end; waits in `wasi:io/poll` end there too.
    pub deadline: Option<std::time::Instant>,
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

impl HostState {
    pub fn new(
        plugin: Arc<str>,
        config: Arc<BTreeMap<String, String>>,
        memory_limit: usize,
        caps: Limits,
    ) -> Self {
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limits: MemoryCap::new(memory_limit),
            plugin,
            config,
            caps,
            log_budget: LogBudget::new(std::time::Instant::now()),
            deadline: None,
        }
    }

    /// The poll interface's view: the resource table and the call's deadline.
    pub fn deadlined(&mut self) -> Deadlined<'_> {
        Deadlined {
            table: &mut self.table,
            deadline: self.deadline,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let plugin = &*self.plugin;
        let admission =
            (self.log_budget).admit(std::time::Instant::now(), self.caps.logs_per_second());
        if admission.dropped_before > 0 {
            tracing::warn!(
                plugin,
                dropped = admission.dropped_before,
                "Dropped the plugin's log messages over plugins.max_logs_per_second."
            );
        }
        if !admission.write {
            return;
        }
        let message = self.caps.cut_log(message);
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
}

impl bindings::plant_monitor::plugin::types::Host for HostState {}

/// Caps the memories of one instance together at `plugins.memory_limit` (a component of many core
/// modules has a linear memory in each, and all of them count), and remembers that a guest hit the cap,
/// so the resulting trap or failed instantiation can be reported as what it is rather than as the
/// guest's own abort. Each instance has a `MemoryCap` of its own, so what it counts dies with it.
#[derive(Debug)]
pub struct MemoryCap {
    limit: usize,
    /// The sum of the sizes of every memory of the instance, in bytes. A growth allowed here that
    /// wasmtime then fails to make (the system out of memory) stays counted: the cap errs on the safe side.
    in_use: usize,
    pub exceeded: bool,
}

impl MemoryCap {
    pub fn new(limit: usize) -> MemoryCap {
        MemoryCap {
            limit,
            in_use: 0,
            exceeded: false,
        }
    }

    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Whether an instance that used `at_start` bytes once started has since taken more than half
    /// of what the limit left it: memory a guest's allocator or collector does not give back
    /// (componentize-js 0.23 keeps a few KB of every event) would otherwise reach the limit and trap
    /// on an event that did nothing wrong. Such an instance is replaced between two calls instead.
    pub fn worn(&self, at_start: usize) -> bool {
        self.in_use.saturating_sub(at_start) > self.limit.saturating_sub(at_start) / 2
    }
}

impl ResourceLimiter for MemoryCap {
    /// Also asked when a memory is created (`current` 0, `desired` its initial size).
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.in_use).saturating_add(desired.saturating_sub(current));
        if total > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        self.in_use = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}
