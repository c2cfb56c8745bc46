//! `plant-monitor plugin run FILE --journal N`: a dry run of a candidate plugin over the last N recorded
//! journal events. The configured pipeline (the plugin folder of the configuration) is loaded with the
//! candidate in it, replacing the plugin of its name or added to it; each event runs through it, and
//! where the outcome, the labels or the sinks differ from what the journal recorded, a JSON line says
//! so. Nothing is written anywhere: the database is only read.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};

use crate::config::Config;
use crate::domain::{Event, OutcomeKind};
use crate::pipeline::{Folder, Loaded, Pipeline, Verdict};
use crate::plugins::{self, Manifest, Runtime};
use crate::store::Recorded;

pub fn run(
    file: &Path,
    manifest: Manifest,
    last: u32,
    config_file: Option<&Path>,
) -> anyhow::Result<()> {
    let (mut config, _) = Config::load(config_file)?;
    config.plugins.cache_dir = super::plugin::user_cache();
    let recorded = super::journal::read_recorded(&config.database, last)?;
    let runtime = Runtime::new(&config.plugins)?;
    let sinks: Vec<String> = config.sinks.keys().cloned().collect();
    let mut folder = Folder::new(
        runtime.clone(),
        &config.plugins,
        &config.routing,
        sinks.clone(),
    );
    folder.reconcile();
    let candidate = Arc::new(
        plugins::load_file(&runtime, file, &config.plugins.cache_dir, Some(manifest))
            .with_context(|| format!("cannot load {}", file.display()))?,
    );
    let mut plugins: Vec<_> = (folder.pipeline().plugins().iter())
        .filter(|plugin| plugin.name != candidate.name)
        .cloned()
        .collect();
    plugins.push(candidate);
    let pipeline = Pipeline::new(
        Loaded {
            plugins,
            ..Loaded::default()
        },
        &config.plugins,
        &config.routing,
        sinks,
    );
    let mut out = std::io::stdout().lock();
    let mut differing = 0;
    for entry in &recorded {
        if let Some(difference) = compare(&pipeline, entry) {
            differing += 1;
            writeln!(out, "{difference}")?;
        }
    }
    eprintln!(
        "{} events: {} as recorded, {differing} different",
        recorded.len(),
        recorded.len() - differing
    );
    Ok(())
}

/// Where running `entry` through `pipeline` differs from what was recorded, as a JSON line.
fn compare(pipeline: &Pipeline, entry: &Recorded) -> Option<Value> {
    let event = Event::from(entry.change.clone());
    let verdict = match entry.change.backfill {
        // A backfill's entry went to the backfill's sinks, whatever the routers say.
        Some(_) => pipeline.run_to(event, &entry.sinks),
        None => pipeline.run(event),
    };
    let outcome = entry.change.outcome.as_ref()?;
    let recorded_labels = (entry.event.as_deref())
        .and_then(|event| serde_json::from_str::<Value>(event).ok())
        .map(|event| event["labels"].clone())
        .unwrap_or(Value::Null);
    let recorded = json!({
        "result": outcome.result.as_str(),
        "plugin": outcome.plugin,
        "labels": recorded_labels,
        "sinks": entry.sinks,
    });
    let now = match &verdict {
        Verdict::Deliver { event, sinks } => {
            let mut sinks = sinks.clone();
            sinks.sort();
            let result = OutcomeKind::delivered_to(&sinks);
            json!({ "result": result.as_str(), "plugin": null, "labels": event.labels, "sinks": sinks })
        }
        Verdict::Filtered { plugin } => {
            json!({ "result": "filtered", "plugin": plugin, "labels": null, "sinks": [] })
        }
        Verdict::Failed {
            event,
            plugin,
            reason,
        } => {
            json!({ "result": "failed", "plugin": plugin, "reason": reason, "labels": event.labels, "sinks": [] })
        }
        Verdict::Halt { plugin, reason } => {
            json!({ "result": "halted", "plugin": plugin, "reason": reason, "labels": null, "sinks": [] })
        }
    };
    // Delivered rows are pruned after `retention.delivered`: an empty record of sinks says nothing then.
    let sinks_known = !(outcome.result == OutcomeKind::Routed && entry.sinks.is_empty());
    let what: Vec<&str> = ["result", "plugin", "labels", "sinks"]
        .into_iter()
        .filter(|key| (*key != "sinks" || sinks_known) && recorded[key] != now[key])
        .collect();
    (!what.is_empty()).then(|| {
        json!({
            "seq": entry.change.seq,
            "plant_id": entry.change.plant_id,
            "what": what,
            "recorded": recorded,
            "with_candidate": now,
        })
    })
}
