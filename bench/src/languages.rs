//! The example plugins in every language the templates cover: component size, the host's compile of a
//! never-seen component, a load from the compiled cache, a new instance, and the per-call cost on a
//! reused instance, each call timed on its own (median and p99) and set against Rust's in the same run.
//! Every language has `output-alert-enricher`; JavaScript and Python also have the filter and the router,
//! so the filter → enrich → route chain is timed where all three exist and the enricher alone elsewhere.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plant_monitor::config::{PluginsConfig, RoutingConfig};
use plant_monitor::domain::{ChangeKind, Event, Fuel, Plant, Status};
use plant_monitor::pipeline::{Loaded, Pipeline, Verdict};
use plant_monitor::plugins::{self, Plugin, Runtime};

use super::plugin_calls::sample;

/// As `plugins/LANG/` spells them, Rust (the ceiling the others are set against) first.
const LANGUAGES: [(&str, &str); 6] = [
    ("rust", "Rust"),
    ("c", "C"),
    ("js", "JavaScript"),
    ("python", "Python"),
    ("go", "Go"),
    ("zig", "Zig"),
];

const ENRICHER: &str = "output-alert-enricher";
const CHAIN: [&str; 3] = ["min-capacity-filter", ENRICHER, "fuel-router"];

pub struct Setup {
    /// Uncached compiles and cached loads timed per language.
    pub runs: u32,
    /// Instances made (after releasing the last) per language.
    pub instances: u32,
    /// Calls timed per measurement, after a tenth as many warm-up calls.
    pub calls: u32,
}

/// The three events a call is timed on.
struct Events {
    /// An update without plant images: the call with the least to carry.
    bare: Event,
    /// An update whose two images are as small as a valid plant gets: one-letter strings, no
    /// optionals, no attributes.
    smallest: Event,
    /// A realistic update: both images, a few attributes each, two labels.
    full: Event,
}

impl Events {
    fn new() -> Events {
        let mut full = sample();
        for plant in full.before.iter_mut().chain(full.after.iter_mut()) {
            plant.attributes.extend(
                [
                    ("owner", "Bonneville Power Administration"),
                    ("commissioned", "1942"),
                    ("units", "33"),
                ]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
            );
        }
        full.labels = BTreeMap::from([
            ("region_owner".into(), "west".into()),
            ("tier".into(), "1".into()),
        ]);
        let small = |version| Plant {
            id: "p".into(),
            name: "P".into(),
            region: "r".into(),
            fuel: Fuel::Wind,
            capacity_mw: 100.0,
            output_mw: None,
            status: Status::Operational,
            latitude: None,
            longitude: None,
            attributes: BTreeMap::new(),
            version,
            created_at: "2026-12-01T00:00:00.000Z".into(),
            updated_at: "2026-12-01T00:00:00.000Z".into(),
        };
        let smallest = Event {
            seq: 1,
            kind: ChangeKind::Updated,
            plant_id: "p".into(),
            region: "r".into(),
            before: Some(small(1)),
            after: Some(small(2)),
            changed_fields: Vec::new(),
            committed_at: "2026-12-01T00:00:00.000Z".into(),
            labels: BTreeMap::new(),
        };
        let bare = Event {
            before: None,
            after: None,
            ..smallest.clone()
        };
        Events {
            bare,
            smallest,
            full,
        }
    }
}

/// Per-call times of one measurement, sorted, and the calls that failed (not among the times).
struct Samples {
    times: Vec<Duration>,
    failed: u32,
    /// Why the first failed call failed.
    first_failure: Option<String>,
}

impl Samples {
    fn median(&self) -> f64 {
        micros(self.times[self.times.len() / 2])
    }

    fn p99(&self) -> f64 {
        micros(self.times[(self.times.len() * 99 / 100).min(self.times.len() - 1)])
    }

    /// `median (p99)` in µs, with the median's ratio to `rust`'s; marked when calls failed.
    fn show(&self, rust: Option<&Samples>) -> String {
        let ratio = rust.map_or(String::new(), |rust| {
            format!(", {:.1}×", self.median() / rust.median())
        });
        let failed = if self.failed > 0 { " †" } else { "" };
        format!("{} ({}){ratio}{failed}", us(self.median()), us(self.p99()))
    }
}

/// Times `calls` calls one by one after `calls / 10` warm-up calls; what `input` prepares for each
/// (an event's clone, say) is not timed, nor is dropping the answer. A failed call (a trap, say: the
/// next call then runs on a new instance, as in the host) is counted, not timed.
fn per_call<I, T>(
    calls: u32,
    mut input: impl FnMut() -> I,
    mut call: impl FnMut(I) -> Result<T, String>,
) -> anyhow::Result<Samples> {
    let mut samples = Samples {
        times: Vec::with_capacity(calls as usize),
        failed: 0,
        first_failure: None,
    };
    for n in 0..calls / 10 + calls {
        let input = input();
        let started = Instant::now();
        let answer = call(input);
        let elapsed = started.elapsed();
        match black_box(answer) {
            Ok(_) if n >= calls / 10 => samples.times.push(elapsed),
            Ok(_) => {}
            Err(reason) => {
                samples.failed += 1;
                samples.first_failure.get_or_insert(format!(
                    "call {} of {}: {reason}",
                    n + 1,
                    calls / 10 + calls
                ));
            }
        }
    }
    anyhow::ensure!(
        samples.failed < calls / 2,
        "most calls failed, the first {:?}",
        samples.first_failure
    );
    samples.times.sort();
    Ok(samples)
}

/// One language's figures.
struct Figures {
    name: &'static str,
    size: u64,
    compile: Vec<Duration>,
    cached: Vec<Duration>,
    instance: Vec<Duration>,
    bare: Samples,
    smallest: Samples,
    full: Samples,
    /// The chain per event, and whether it is the 3-plugin chain (else the enricher alone).
    chain: (Samples, bool),
    /// Rust only: the enricher alone through the pipeline, for the languages that have only it.
    alone: Option<Samples>,
}

pub fn run(setup: Setup) -> anyhow::Result<()> {
    anyhow::ensure!(
        setup.runs > 0 && setup.instances > 0 && setup.calls >= 100,
        "--runs and --instances must be at least 1 and --calls at least 100"
    );
    let config = PluginsConfig::default();
    let runtime = Runtime::new(&config)?;
    let events = Events::new();
    let mut figures = Vec::new();
    let mut missing = Vec::new();
    for (lang, name) in LANGUAGES {
        let dir = if lang == "rust" {
            super::dist()
        } else {
            super::dist_lang().join(lang)
        };
        if !dir.join(format!("{ENRICHER}.wasm")).is_file() {
            let build = if lang == "rust" {
                "plugins/build".to_owned()
            } else {
                format!(
                    "PLANT_MONITOR=$CARGO_TARGET_DIR/debug/plant-monitor plugins/build-languages {lang}"
                )
            };
            anyhow::ensure!(
                lang != "rust",
                "{} is missing: build the Rust examples first with `{build}`; they are the \
                 ceiling every other language is set against",
                dir.join(format!("{ENRICHER}.wasm")).display()
            );
            println!("{name}: not built; build it with `{build}`");
            missing.push(name);
            continue;
        }
        println!("{name}: …");
        figures.push(language(
            &runtime,
            &config,
            &setup,
            &events,
            name,
            &dir,
            figures.first(),
        )?);
    }
    print(&setup, &figures, &missing);
    Ok(())
}

/// Measures one language whose components are in `dir`; `rust` is Rust's figures, for the ratios.
fn language(
    runtime: &Runtime,
    config: &PluginsConfig,
    setup: &Setup,
    events: &Events,
    name: &'static str,
    dir: &Path,
    rust: Option<&Figures>,
) -> anyhow::Result<Figures> {
    let file = |plugin: &str| dir.join(format!("{plugin}.wasm"));
    let size = std::fs::metadata(file(ENRICHER))?.len();
    let cache = tempfile::tempdir()?;

    // Each compile into a cache of its own, empty: what the host pays for a component never seen.
    // The first into the cache the rest of the run loads from.
    let mut compile = Vec::new();
    for run in 0..setup.runs {
        let fresh = tempfile::tempdir()?;
        let into = if run == 0 { cache.path() } else { fresh.path() };
        let started = Instant::now();
        let plugin = plugins::load_file(runtime, &file(ENRICHER), into, None)?;
        compile.push(started.elapsed());
        anyhow::ensure!(plugin.cache == plugins::CacheOutcome::Miss);
    }
    let mut cached = Vec::new();
    let mut enricher = None;
    for _ in 0..setup.runs {
        drop(enricher.take());
        let started = Instant::now();
        let plugin = plugins::load_file(runtime, &file(ENRICHER), cache.path(), None)?;
        cached.push(started.elapsed());
        anyhow::ensure!(plugin.cache == plugins::CacheOutcome::Hit);
        enricher = Some(plugin);
    }
    let enricher = Arc::new(enricher.expect("at least one run"));

    // A released instance is made again by the next call: the time to that call's answer.
    let mut instance = Vec::new();
    for _ in 0..setup.instances {
        enricher.release_instance();
        let started = Instant::now();
        black_box(enricher.enrich(&events.bare))?;
        instance.push(started.elapsed());
    }

    let calls = setup.calls;
    let enrich = |event: &Event| {
        per_call(
            calls,
            || event,
            |event| enricher.enrich(event).map_err(|e| e.to_string()),
        )
    };
    let bare = enrich(&events.bare)?;
    let smallest = enrich(&events.smallest)?;
    let full = enrich(&events.full)?;

    let through = |plugins: Vec<Arc<Plugin>>| -> anyhow::Result<Samples> {
        let pipeline = Pipeline::new(
            Loaded {
                plugins,
                ..Loaded::default()
            },
            config,
            &RoutingConfig::default(),
            ["green", "grid", "alerts"].map(String::from),
        );
        match pipeline.run(events.full.clone()) {
            Verdict::Deliver { sinks, .. } if !sinks.is_empty() => {}
            other => anyhow::bail!("{name}: the chain did not deliver the full event: {other:?}"),
        }
        per_call(
            calls,
            || events.full.clone(),
            |event| match pipeline.run(event) {
                Verdict::Failed { plugin, reason, .. } | Verdict::Halt { plugin, reason } => {
                    Err(format!("{plugin}: {reason}"))
                }
                verdict => Ok(verdict),
            },
        )
    };
    let all_three = CHAIN.iter().all(|plugin| file(plugin).is_file());
    let chain = if all_three {
        let mut chain = Vec::new();
        for plugin in CHAIN {
            chain.push(if plugin == ENRICHER {
                enricher.clone()
            } else {
                Arc::new(plugins::load_file(
                    runtime,
                    &file(plugin),
                    cache.path(),
                    None,
                )?)
            });
        }
        through(chain)?
    } else {
        through(vec![enricher.clone()])?
    };
    // Rust's enricher alone, the measure for the languages that have only the enricher.
    let alone = if rust.is_none() {
        Some(through(vec![enricher.clone()])?)
    } else {
        None
    };
    Ok(Figures {
        name,
        size,
        compile,
        cached,
        instance,
        bare,
        smallest,
        full,
        chain: (chain, all_three),
        alone,
    })
}

fn print(setup: &Setup, figures: &[Figures], missing: &[&str]) {
    let Some(rust) = figures.first() else {
        return;
    };
    println!();
    println!(
        "Loads: medians of {} uncached compiles (each into an empty cache: compile, serialize, \
         store, instantiate) and {} loads from the compiled cache; a new instance: median of {} \
         (the instance released, then the next call's answer, an event without images).",
        setup.runs, setup.runs, setup.instances
    );
    println!();
    println!(
        "| language | component | compile, uncached | cached load | new instance → first answer |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for f in figures {
        println!(
            "| {} | {} | {} | {} | {} |",
            f.name,
            size(f.size),
            duration(&f.compile),
            duration(&f.cached),
            duration(&f.instance),
        );
    }
    println!();
    println!(
        "Calls on a reused instance, `enrich` of output-alert-enricher, {} timed one by one after \
         {} warm-up calls: median (p99) µs, the median's ratio to Rust's.",
        setup.calls,
        setup.calls / 10
    );
    println!();
    println!("| language | no images (fixed part) | smallest valid images | full update | goal |");
    println!("| --- | --- | --- | --- | --- |");
    for f in figures {
        let goal = match f.name {
            "JavaScript" | "Python" => verdict(f.full.median() <= 30.0, "≤ 30 µs per call"),
            _ => verdict(f.bare.median() <= 1.0, "≤ 1 µs fixed overhead"),
        };
        println!(
            "| {} | {} | {} | {} | {goal} |",
            f.name,
            f.bare.show(Some(&rust.bare)),
            f.smallest.show(Some(&rust.smallest)),
            f.full.show(Some(&rust.full)),
        );
    }
    println!();
    println!(
        "The pipeline per full update event (its clone not timed), same calls: median (p99) µs, ratio \
         to Rust's chain of the same plugins."
    );
    println!();
    println!("| language | plugins | per event |");
    println!("| --- | --- | --- |");
    for f in figures {
        let (chain, three) = &f.chain;
        let plugins = if *three {
            "filter → enrich → route"
        } else {
            "enricher only (the one plugin built in this language)"
        };
        let basis = if *three {
            Some(&rust.chain.0)
        } else {
            rust.alone.as_ref()
        };
        println!("| {} | {plugins} | {} |", f.name, chain.show(basis));
        if let Some(alone) = &f.alone {
            println!(
                "| {} | enricher only | {} |",
                f.name,
                alone.show(Some(alone))
            );
        }
    }
    let mut failures = Vec::new();
    for f in figures {
        for (what, samples) in [
            ("no images", &f.bare),
            ("smallest images", &f.smallest),
            ("full update", &f.full),
            ("chain", &f.chain.0),
        ] {
            if let Some(first) = &samples.first_failure {
                failures.push(format!(
                    "{} {what}: {} of {} calls failed, the first {first}",
                    f.name,
                    samples.failed,
                    setup.calls / 10 + setup.calls
                ));
            }
        }
    }
    if !failures.is_empty() {
        println!();
        println!("† Failed calls (not timed; the next call ran on a new instance):");
        for failure in failures {
            println!("- {failure}");
        }
    }
    if !missing.is_empty() {
        println!();
        println!("Not built, so not measured: {}.", missing.join(", "));
    }
}

fn verdict(met: bool, goal: &str) -> String {
    format!("{goal}: {}", if met { "met" } else { "not met" })
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// A time in µs to three significant figures.
fn us(micros: f64) -> String {
    if micros < 10.0 {
        format!("{micros:.2}")
    } else if micros < 100.0 {
        format!("{micros:.1}")
    } else {
        format!("{micros:.0}")
    }
}

/// The median of `times` and their range, in ms.
fn duration(times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let show = |ms: f64| {
        if ms < 10.0 {
            format!("{ms:.2}")
        } else if ms < 1000.0 {
            format!("{ms:.0}")
        } else {
            format!("{:.1} s", ms / 1e3)
        }
    };
    let median = ms(sorted[sorted.len() / 2]);
    let unit = if median < 1000.0 { " ms" } else { "" };
    if sorted.len() == 1 {
        format!("{}{unit}", show(median))
    } else {
        format!(
            "{}{unit} ({}–{})",
            show(median),
            show(ms(sorted[0])),
            show(ms(sorted[sorted.len() - 1]))
        )
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{} KB", bytes.div_ceil(1000))
    }
}
