//! `wasi:io/poll` with the call's deadline. Epoch interruption stops a guest only while its own code
//! runs; a guest that subscribes to a clock and blocks on the pollable waits inside the host, where no
//! epoch reaches. So the host's blocking waits (`poll`, `pollable.block`, `pollable.ready`) end at the
//! deadline of the call in progress, and then the call traps like a loop that ran too long: a guest can
//! neither hold the feed's thread past `call_timeout` nor keep a replica from shutting down.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Instant;

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::io::poll as sync_poll;
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;
use wasmtime_wasi_io::poll::DynPollable;

/// A wait of the guest's outlasted the call's deadline.
#[derive(Debug, thiserror::Error)]
#[error("a wait outlasted the call's deadline")]
pub struct WaitPastDeadline;

/// The resource table with the deadline of the call in progress, as the poll interface sees them.
#[derive(Debug)]
pub struct Deadlined<'a> {
    pub table: &'a mut ResourceTable,
    pub deadline: Option<Instant>,
}

/// Names [`Deadlined`] as the data the poll interface is given.
#[derive(Debug)]
pub struct WithDeadline;

impl HasData for WithDeadline {
    type Data<'a> = Deadlined<'a>;
}

impl sync_poll::Host for Deadlined<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        until(self.deadline, async_poll::Host::poll(self.table, pollables))
    }
}

impl sync_poll::HostPollable for Deadlined<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        until(
            self.deadline,
            async_poll::HostPollable::ready(self.table, pollable),
        )
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        until(
            self.deadline,
            async_poll::HostPollable::block(self.table, pollable),
        )
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        async_poll::HostPollable::drop(self.table, pollable)
    }
}

/// Runs `wait` to its end or to `deadline`, whichever comes first, on the Tokio runtime of the
/// calling thread (a blocking thread of the service's) or, outside one (the plugin tools), on a
/// runtime of the plugins' own.
fn until<T>(
    deadline: Option<Instant>,
    wait: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    let handle = match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle,
        Err(_) => own_runtime()?.handle().clone(),
    };
    let _entered = handle.enter();
    match deadline {
        Some(deadline) => handle.block_on(async {
            tokio::time::timeout_at(deadline.into(), wait)
                .await
                .unwrap_or_else(|_| Err(wasmtime::Error::new(WaitPastDeadline)))
        }),
        None => handle.block_on(wait),
    }
}

fn own_runtime() -> wasmtime::Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| wasmtime::Error::msg("cannot start a runtime for the plugin's waits"))
}
