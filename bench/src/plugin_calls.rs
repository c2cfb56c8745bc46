//! Per-call cost of each role on a reused instance (host-to-guest conversion, the call, the guest's work
//! and the way back, its Prometheus series included), and the whole filter → enrich → route chain per
//! event.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use plant_monitor::config::{PluginsConfig, RoutingConfig};
use plant_monitor::domain::{ChangeKind, Event, Fuel, Plant, Status};
use plant_monitor::pipeline::{Loaded, Pipeline, Shadow};
use plant_monitor::plugins::{self, Runtime};

/// Microseconds per call: the filter's fixed part (an event without images), each role (filter,
/// enrich, route) with a full update event, and the three-plugin chain per event.
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    pub bare_filter: f64,
    pub full: [f64; 3],
    pub chain: f64,
}

/// Measures and prints every cost; returns those `bench all` reports.
pub fn run(calls: u32) -> anyhow::Result<Costs> {
    // As in the service: each call also records its Prometheus series.
    plant_monitor::telemetry::metrics::handle();
    let config = PluginsConfig::default();
    let runtime = Runtime::new(&config)?;
    let cache = tempfile::tempdir()?;
    let load = |name: &str| {
        plugins::load_file(
            &runtime,
            &super::dist().join(format!("{name}.wasm")),
            cache.path(),
            None,
        )
        .map(Arc::new)
    };
    let filter = load("min-capacity-filter")?;
    let enricher = load("output-alert-enricher")?;
    let router = load("fuel-router")?;
    let event = sample();
    let bare = Event {
        before: None,
        after: None,
        changed_fields: Vec::new(),
        ..event.clone()
    };

    println!("per call on a reused instance, {calls} calls each; an event without plant images:");
    let bare_filter = time("filter (min-capacity-filter)", calls, || {
        black_box(filter.keep(&bare).map(drop))
    })?;
    time("enrich (output-alert-enricher)", calls, || {
        black_box(enricher.enrich(&bare).map(drop))
    })?;
    time("route (fuel-router)", calls, || {
        black_box(router.route(&bare).map(drop).or(Ok::<_, ()>(())))
    })?;
    println!("the same with a full update event (before and after images):");
    let full = [
        time("filter (min-capacity-filter)", calls, || {
            black_box(filter.keep(&event).map(drop))
        })?,
        time("enrich (output-alert-enricher)", calls, || {
            black_box(enricher.enrich(&event).map(drop))
        })?,
        time("route (fuel-router)", calls, || {
            black_box(router.route(&event).map(drop))
        })?,
    ];

    let pipeline = Pipeline::new(
        Loaded {
            plugins: vec![filter, enricher.clone(), router],
            ..Loaded::default()
        },
        &config,
        &RoutingConfig::default(),
        ["green", "grid", "alerts"].map(String::from),
    );
    let chain = time("chain filter → enrich → route", calls, || {
        black_box(pipeline.run(event.clone()));
        Ok::<_, ()>(())
    })?;
    time("  of which cloning the event", calls, || {
        black_box(event.clone());
        Ok::<_, ()>(())
    })?;

    // A shadow run: the enricher's candidate called beside it on every event, answers compared.
    let enrich_only = |shadow: Option<Arc<Shadow>>| {
        Pipeline::new(
            Loaded {
                plugins: vec![enricher.clone()],
                shadows: shadow
                    .map(|s| ("output-alert-enricher".to_owned(), s))
                    .into_iter()
                    .collect(),
                ..Loaded::default()
            },
            &config,
            &RoutingConfig::default(),
            ["green"].map(String::from),
        )
    };
    let alone = enrich_only(None);
    time("enricher alone", calls, || {
        black_box(alone.run(event.clone()));
        Ok::<_, ()>(())
    })?;
    let candidate = load("output-alert-enricher")?;
    let shadowed = enrich_only(Some(Arc::new(Shadow::new(candidate))));
    time("enricher with a shadow beside it", calls, || {
        black_box(shadowed.run(event.clone()));
        Ok::<_, ()>(())
    })?;
    Ok(Costs {
        bare_filter,
        full,
        chain,
    })
}

fn time<E: std::fmt::Debug>(
    what: &str,
    calls: u32,
    mut call: impl FnMut() -> Result<(), E>,
) -> anyhow::Result<f64> {
    for _ in 0..calls / 10 {
        call().map_err(|e| anyhow::anyhow!("{what}: {e:?}"))?;
    }
    let started = Instant::now();
    for _ in 0..calls {
        call().map_err(|e| anyhow::anyhow!("{what}: {e:?}"))?;
    }
    let per_call = started.elapsed().as_secs_f64() * 1e6 / f64::from(calls);
    println!("  {what:<34} {per_call:>8.3} µs");
    Ok(per_call)
}

/// An update of a realistic plant, as the feed hands it to the pipeline.
pub fn sample() -> Event {
    let plant = |output: f64, version: u64| Plant {
        id: "01a20217-4381-7146-aa3e-f0b79c9305fb".into(),
        name: "Grand Coulee".into(),
        region: "us-west".into(),
        fuel: Fuel::Hydro,
        capacity_mw: 6809.0,
        output_mw: Some(output),
        status: Status::Operational,
        latitude: Some(47.96),
        longitude: Some(-118.98),
        attributes: BTreeMap::from([("operator".into(), "USBR".into())]),
        version,
        created_at: "2026-11-22T10:00:00.000Z".into(),
        updated_at: "2026-11-22T10:00:01.123Z".into(),
    };
    Event {
        seq: 1042,
        kind: ChangeKind::Updated,
        plant_id: "01a20217-4381-7146-aa3e-f0b79c9305fb".into(),
        region: "us-west".into(),
        before: Some(plant(5120.5, 2)),
        after: Some(plant(7000.0, 3)),
        changed_fields: vec!["output_mw".into()],
        committed_at: "2026-11-22T10:00:01.123Z".into(),
        labels: BTreeMap::new(),
    }
}
