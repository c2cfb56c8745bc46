//! The sandbox every plugin runs in: one `wasmtime::Engine` for the process with epoch interruption
//! (a ticker thread advances the epoch; each call gets a deadline of `call_timeout`), a pooling
//! allocator sized by `memory_limit` and the per-component caps, and a linker offering WASI without
//! files, network, environment or arguments, plus the `host` interface.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
use super::breaker;
use super::host::HostState;
use super::limits::Limits;
use super::wait::WithDeadline;
use super::{PluginError, WasmError};
use plant_monitor_core::config::PluginsConfig;

/// Component instances the pool holds at once: one per plugin, with room to spare.
const POOLED_COMPONENTS: u32 = 200;

/// What every plugin shares: the engine, the linker and the limits.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("call_timeout", &self.inner.call_timeout)
            .field("memory_limit", &self.inner.memory_limit)
            .finish_non_exhaustive()
    }
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    deadline_ticks: u64,
    memory_limit: usize,
    call_timeout: Duration,
    limits: Limits,
    quarantine: breaker::Settings,
}

impl Runtime {
    /// Builds the engine and starts its epoch ticker (a thread that stops when the engine is dropped).
    pub fn new(config: &PluginsConfig) -> Result<Runtime, PluginError> {
        let memory_limit = usize::try_from(config.memory_limit).unwrap_or(usize::MAX);
        // Each component may hold at most its share of the pool, so no plugin can take the slots
        // the others need; a component with more is refused when it is compiled (at load).
        let (instances, memories, tables) = (
            config.max_core_instances.get(),
            config.max_memories.get(),
            config.max_tables.get(),
        );
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOLED_COMPONENTS)
            .max_core_instances_per_component(instances)
            .total_core_instances(POOLED_COMPONENTS * instances)
            .max_memories_per_component(memories)
            .max_memories_per_module(memories)
            .total_memories(POOLED_COMPONENTS * memories)
            .max_tables_per_component(tables)
            .max_tables_per_module(tables)
            .total_tables(POOLED_COMPONENTS * tables)
            .max_memory_size(memory_limit);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .concurrency_support(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&wasm).map_err(|error| PluginError::from(WasmError::from(error)))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|error| PluginError::from(WasmError::from(error)))?;
        // WASI's own waits know no deadline: these end with the call's (see wait.rs).
        linker.allow_shadowing(true);
        wasmtime_wasi::p2::bindings::sync::io::poll::add_to_linker::<HostState, WithDeadline>(
            &mut linker,
            HostState::deadlined,
        )
        .map_err(|error| PluginError::from(WasmError::from(error)))?;
        linker.allow_shadowing(false);
        bindings::AnyPlugin::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |state| state,
        )
        .map_err(|error| PluginError::from(WasmError::from(error)))?;

        // Fine enough that a deadline lands within 10 % of call_timeout, coarse enough to cost nothing.
        let tick =
            (config.call_timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(10));
        let deadline_ticks = config.call_timeout.as_nanos().div_ceil(tick.as_nanos()) as u64 + 1;
        start_ticker(&engine, tick);
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                deadline_ticks,
                memory_limit,
                call_timeout: config.call_timeout,
                limits: Limits::new(config),
                quarantine: breaker::Settings::new(config),
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// Epoch ticks a call may run before it is interrupted.
    pub fn deadline_ticks(&self) -> u64 {
        self.inner.deadline_ticks
    }

    pub fn quarantine(&self) -> breaker::Settings {
        self.inner.quarantine
    }

    pub fn memory_limit(&self) -> usize {
        self.inner.memory_limit
    }

    pub fn call_timeout(&self) -> Duration {
        self.inner.call_timeout
    }

    /// What a plugin may hand back.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }
}

fn start_ticker(engine: &Engine, tick: Duration) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        })
        .map(drop)
        .unwrap_or_else(|error| tracing::error!(%error, "Cannot start the plugin epoch ticker; plugin calls have no deadline."));
}
