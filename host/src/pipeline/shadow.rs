//! Shadow runs: `NAME.shadow.wasm` (with `NAME.shadow.toml`) runs beside the live plugin `NAME` on the
//! same events, at the same place in the pipeline, and its answers change nothing: the host compares
//! them with the live one's (kept or dropped, labels, the `after` image, routes, errors) and keeps the
//! counts and the first differing events, for `GET /v1/plugins/{name}/shadow`. Renaming the file to
//! `NAME.wasm` (or `POST /v1/plugins/{name}/promote`) makes it the live version.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::Event;
use crate::plugins::{CallError, Plugin};

/// The file-name suffix (before `.wasm`) of a shadow version.
pub const SUFFIX: &str = ".shadow";

/// How many differing events a report keeps.
const KEPT: usize = 20;

/// A shadow version and what it has shown so far.
#[derive(Debug)]
pub struct Shadow {
    pub plugin: Arc<Plugin>,
    report: Mutex<Report>,
}

/// How a shadow's answers compared with the live plugin's.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// Events both answered.
    pub events: u64,
    /// Events where the answers were the same.
    pub same: u64,
    /// Events where they differed, by what differed: `kept`, `labels`, `after`, `sinks`, `error`.
    pub differences: BTreeMap<&'static str, u64>,
    /// The first differing events.
    pub first: Vec<Difference>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Difference {
    pub seq: u64,
    pub plant_id: String,
    /// What differed.
    pub what: Vec<&'static str>,
    pub live: Value,
    pub shadow: Value,
}

impl Shadow {
    pub fn new(plugin: Arc<Plugin>) -> Shadow {
        Shadow {
            plugin,
            report: Mutex::new(Report::default()),
        }
    }

    pub fn report(&self) -> Report {
        self.lock().clone()
    }

    /// Runs the shadow's filter on `event` and compares with the live answer.
    pub fn keep(&self, event: &Event, live: &Result<bool, CallError>) {
        let answer = |result: &Result<bool, CallError>| match result {
            Ok(kept) => json!({ "kept": kept }),
            Err(error) => json!({ "error": error.to_string() }),
        };
        let shadow = self.plugin.keep(event);
        self.compare(event, answer(live), answer(&shadow));
    }

    /// Runs the shadow's enricher on `input` (what the live one was given) and compares.
    pub fn enrich(&self, input: &Event, live: &Result<Event, CallError>) {
        let answer = |result: &Result<Event, CallError>| match result {
            Ok(event) => json!({ "labels": event.labels, "after": event.after }),
            Err(error) => json!({ "error": error.to_string() }),
        };
        let shadow = self.plugin.enrich(input);
        self.compare(input, answer(live), answer(&shadow));
    }

    /// Runs the shadow's router on `event` and compares the sets of sinks.
    pub fn route(&self, event: &Event, live: &Result<Vec<String>, CallError>) {
        let answer = |result: &Result<Vec<String>, CallError>| match result {
            Ok(sinks) => {
                let mut sinks = sinks.clone();
                sinks.sort();
                sinks.dedup();
                json!({ "sinks": sinks })
            }
            Err(error) => json!({ "error": error.to_string() }),
        };
        let shadow = self.plugin.route(event);
        self.compare(event, answer(live), answer(&shadow));
    }

    fn compare(&self, event: &Event, live: Value, shadow: Value) {
        let what: Vec<&'static str> = ["kept", "labels", "after", "sinks", "error"]
            .into_iter()
            .filter(|key| live.get(key) != shadow.get(key))
            .collect();
        let mut report = self.lock();
        report.events += 1;
        if what.is_empty() {
            report.same += 1;
            return;
        }
        for key in &what {
            *report.differences.entry(key).or_default() += 1;
        }
        if report.first.len() < KEPT {
            report.first.push(Difference {
                seq: event.seq,
                plant_id: event.plant_id.clone(),
                what,
                live,
                shadow,
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Report> {
        self.report
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
