//! Test plugin: a filter that misbehaves on request, so the host's integration tests can break
//! every sandbox limit and exercise every `on_error` policy with one component copied under
//! several names. The manifest's `mode` picks the behaviour (`keep`, `drop`, `error`, `trap`,
//! `loop`, `oom`, `sandbox`; default `keep`), and `match_name`, when set, limits it to events about
//! the plant of that name (the `after` image's, else the `before` image's), keeping all others.

use std::hint::black_box;
use std::sync::OnceLock;

use exports::plant_monitor::plugin::filter::{ChangeEvent, Guest};
use plant_monitor::plugin::host::{self, Level};

wit_bindgen::generate!({
    world: "filter-plugin",
    path: "../../../wit",
});

/// One mebibyte, the unit in which `oom` grows.
const MIB: usize = 1 << 20;

struct ChaosFilter;

impl Guest for ChaosFilter {
    fn keep(event: ChangeEvent) -> Result<bool, String> {
        let config = Config::get();
        if let Some(name) = &config.match_name {
            let plant = event.after.as_ref().or(event.before.as_ref());
            if plant.is_none_or(|p| &p.name != name) {
                return Ok(true);
            }
        }
        match config.mode.as_str() {
            "keep" => Ok(true),
            "drop" => Ok(false),
            "error" => Err("chaos: asked to fail".to_owned()),
            "trap" => core::arch::wasm32::unreachable(),
            "loop" => spin_forever(),
            "oom" => exhaust_memory(),
            "sandbox" => probe_sandbox(),
            other => Err(format!("chaos: unknown mode {other:?}")),
        }
    }
}

/// The manifest's settings, read once per instance like a real plugin would.
#[derive(Debug)]
struct Config {
    mode: String,
    match_name: Option<String>,
}

impl Config {
    fn get() -> &'static Self {
        static CONFIG: OnceLock<Config> = OnceLock::new();
        CONFIG.get_or_init(|| {
            let config = Config {
                mode: host::config("mode").unwrap_or_else(|| "keep".to_owned()),
                match_name: host::config("match_name"),
            };
            host::log(
                Level::Debug,
                &format!("chaos filter configured: {config:?}"),
            );
            config
        })
    }
}

/// Never returns; only the host's epoch deadline can stop it. `black_box` keeps the optimiser from
/// proving the loop useless.
fn spin_forever() -> ! {
    let mut spins = 0_u64;
    loop {
        spins = black_box(spins.wrapping_add(1));
    }
}

/// Grows memory a mebibyte at a time, writing every byte so the pages are really committed, until
/// an allocation fails. Up to the whole 4 GiB address space is tried, so only the host's memory
/// limit can stop it early. On failure it frees everything, logs how far it got (so a test can
/// check that the limit, not the address space, stopped it) and traps, as an out-of-memory abort
/// would.
fn exhaust_memory() -> ! {
    let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(4096);
    for n in 0_usize.. {
        let mut chunk = Vec::new();
        if chunk.try_reserve_exact(MIB).is_err() {
            drop(black_box(chunks));
            host::log(
                Level::Warn,
                &format!("oom: allocation failed after {n} MiB"),
            );
            core::arch::wasm32::unreachable();
        }
        chunk.resize(MIB, (n as u8) | 1);
        chunks.push(black_box(chunk));
    }
    unreachable!("the address space ends before usize does")
}

/// Tries each way out of the sandbox that a Rust guest has; keeps the event only if all of them
/// failed, and otherwise fails it, naming what got through.
fn probe_sandbox() -> Result<bool, String> {
    let mut escaped = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/etc/hostname") {
        escaped.push(format!("read /etc/hostname ({:?})", text.trim()));
    }
    if let Ok(entries) = std::fs::read_dir("/") {
        escaped.push(format!("listed / ({} entries)", entries.count()));
    }
    let vars = std::env::vars().count();
    if vars > 0 {
        escaped.push(format!("{vars} environment variables"));
    }
    let args = std::env::args().count();
    if args > 0 {
        escaped.push(format!("{args} arguments"));
    }
    if std::net::TcpStream::connect("127.0.0.1:9").is_ok() {
        escaped.push("connected to 127.0.0.1:9".to_owned());
    }
    if escaped.is_empty() {
        Ok(true)
    } else {
        Err(format!("escaped: {}", escaped.join(", ")))
    }
}

export!(ChaosFilter);
