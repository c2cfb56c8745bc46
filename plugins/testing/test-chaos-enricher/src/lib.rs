//! Test plugin: an enricher that misbehaves on request, so the host's integration tests can check
//! every `on_error` policy and that the host refuses an event whose identity was tampered with.
//! The manifest's `mode` picks the behaviour (`pass`, `label`, `error`, `trap`, `tamper-seq`,
//! `tamper-kind`, `tamper-plant-id`, `tamper-region`, `tamper-after`, `bad-fuel`, and the floods
//! `many-labels`, `huge-label`, `huge-event`, `giant-label`, `huge-error`, `log-flood`, `leak` (keeps
//! 1 MiB of every event), and `sleep`,
//! which blocks on a WASI clock for an hour; default `pass`), and
//! `match_name`, when set, limits it to events about the plant of that name (the `after` image's,
//! else the `before` image's), passing all others through unchanged.

use std::sync::OnceLock;

use exports::plant_monitor::plugin::enrich::{ChangeEvent, Guest};
use plant_monitor::plugin::host::{self, Level};
use plant_monitor::plugin::types::ChangeKind;

wit_bindgen::generate!({
    world: "enrich-plugin",
    path: "../../../wit",
});

struct ChaosEnricher;

impl Guest for ChaosEnricher {
    fn enrich(mut event: ChangeEvent) -> Result<ChangeEvent, String> {
        let config = Config::get();
        if let Some(name) = &config.match_name {
            let plant = event.after.as_ref().or(event.before.as_ref());
            if plant.is_none_or(|p| &p.name != name) {
                return Ok(event);
            }
        }
        match config.mode.as_str() {
            "pass" => {}
            "label" => set_label(&mut event.labels, "chaos", "seen"),
            // Keeps 1 MiB of every event, as a guest whose allocator never gives memory back.
            "leak" => {
                // black_box: else the compiler drops an allocation nothing reads.
                let kept: &'static mut [u8] = std::hint::black_box(Vec::leak(vec![1; 1 << 20]));
                set_label(&mut event.labels, "chaos", &kept.len().to_string());
            }
            "error" => return Err("chaos: asked to fail".to_owned()),
            "trap" => core::arch::wasm32::unreachable(),
            "tamper-seq" => event.seq = event.seq.wrapping_add(1),
            "tamper-kind" => event.kind = other_kind(event.kind),
            "tamper-plant-id" => event.plant_id.push_str("-x"),
            "tamper-region" => event.region.push_str("-x"),
            // The one change here the host must accept. A deleted plant has no `after` to change,
            // and inventing one would be a different test.
            "tamper-after" => {
                if let Some(after) = &mut event.after {
                    after.output_mw = Some(1.0);
                }
            }
            // A fuel the host does not know: the answer is not a valid event.
            "bad-fuel" => {
                if let Some(after) = &mut event.after {
                    after.fuel = "peat".to_owned();
                }
            }
            // The floods: answers and logs far over the host's caps.
            "many-labels" => {
                for n in 0..100 {
                    event.labels.push((format!("l{n}"), String::new()));
                }
            }
            "huge-label" => set_label(&mut event.labels, "huge", &"x".repeat(2 << 10)),
            "giant-label" => set_label(&mut event.labels, "giant", &"x".repeat(8 << 20)),
            "huge-event" => {
                if let Some(after) = &mut event.after {
                    after.attributes.push(("blob".to_owned(), "x".repeat(300 << 10)));
                }
            }
            "huge-error" => return Err("e".repeat(1 << 20)),
            "log-flood" => {
                let line = "y".repeat(8 << 10);
                for _ in 0..1000 {
                    host::log(Level::Info, &line);
                }
            }
            // Blocks in the host (a monotonic-clock pollable), where no epoch interrupts it.
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
            other => return Err(format!("chaos: unknown mode {other:?}")),
        }
        Ok(event)
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
                mode: host::config("mode").unwrap_or_else(|| "pass".to_owned()),
                match_name: host::config("match_name"),
            };
            host::log(
                Level::Debug,
                &format!("chaos enricher configured: {config:?}"),
            );
            config
        })
    }
}

/// Any kind but the given one, so the change is always visible to the host.
fn other_kind(kind: ChangeKind) -> ChangeKind {
    match kind {
        ChangeKind::Updated => ChangeKind::Created,
        ChangeKind::Created | ChangeKind::Deleted | ChangeKind::Snapshot => ChangeKind::Updated,
    }
}

/// Replaces an existing label of the same key, as a well-behaved enricher would.
fn set_label(labels: &mut Vec<(String, String)>, key: &str, value: &str) {
    match labels.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => value.clone_into(v),
        None => labels.push((key.to_owned(), value.to_owned())),
    }
}

export!(ChaosEnricher);
