//! The layering the design promises: bottom up, domain model → config → store → lease (beside it
//! capture, the `wal` capture leader's loop) → plugins → pipeline → feed → sinks → api →
//! service/cli, and nothing names a layer above it (a downstream part is woken through a channel the
//! wiring hands in instead). Between crates the compiler sees to it:
//! `plant-monitor-core` (domain, config), `plant-monitor-store` and `plant-monitor-plugins` cannot name
//! the host crate that depends on them, and the store and the plugins depend on the core alone. Within a crate this test does, on the source: every `crate::MODULE` path counts,
//! in `use` lines and inline alike, so a new upward dependency fails CI with the line that brought it in.

use std::path::{Path, PathBuf};

use plant_monitor_tests::repo;

/// The top-level modules of the host crate, each with its layer: a module may name only modules of a
/// lower layer. Modules that share a layer stand beside each other and may not name one another either.
/// `config`, `domain`, `store` and `plugins` are the lower crates, re-exported.
const HOST: &[(&str, u32)] = &[
    ("domain", 0),
    ("config", 1),
    ("store", 2),
    ("telemetry", 2),
    ("lease", 3),
    ("capture", 4),
    ("plugins", 4),
    ("pipeline", 5),
    ("feed", 6),
    ("sinks", 7),
    ("backfill", 7),
    ("tail", 7),
    ("retention", 7),
    ("api", 8),
    ("service", 9),
    ("cli", 10),
];

/// The top-level modules of `plant-monitor-core`.
const CORE: &[(&str, u32)] = &[("domain", 0), ("config", 1)];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`None` for the crate root files).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).expect("inside src");
    let first = relative.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_owned();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

/// Every module a line names through a `crate::` path, outside comments.
fn named_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut named = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let word: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let braced = after.starts_with('{');
        if braced {
            let inner = after[1..].split('}').next().unwrap_or("");
            named.extend(inner.split(',').filter_map(|path| {
                let first = path.trim().split("::").next()?.trim();
                (!first.is_empty()).then(|| first.to_owned())
            }));
        } else if !word.is_empty() {
            named.push(word);
        }
        rest = after;
    }
    named
}

/// Every line of the crate in `src` that names a module of a layer above or beside its own.
fn against_the_layers(src: &Path, layers: &[(&str, u32)]) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let layer = |module: &str| layers.iter().find(|(name, _)| *name == module).map(|l| l.1);
    let mut broken = Vec::new();
    for file in &files {
        let Some(module) = module_of(src, file) else {
            continue;
        };
        let Some(own) = layer(&module) else {
            broken.push(format!(
                "{}: module `{module}` has no place in the layers; give it one",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("readable source");
        for (number, line) in text.lines().enumerate() {
            for named in named_modules(line) {
                // Macros exported at the crate root and items that are not modules are not layers.
                let Some(theirs) = layer(&named) else {
                    continue;
                };
                if named != module && theirs >= own {
                    broken.push(format!(
                        "{}:{}: `{module}` (layer {own}) names `{named}` (layer {theirs}): {}",
                        file.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    broken
}

#[test]
fn no_module_of_the_host_names_a_module_of_a_layer_above_or_beside_it() {
    let broken = against_the_layers(&repo().join("host/src"), HOST);
    assert!(
        broken.is_empty(),
        "against the layers:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_domain_model_names_nothing_of_the_configuration() {
    let broken = against_the_layers(&repo().join("crates/core/src"), CORE);
    assert!(
        broken.is_empty(),
        "against the layers:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_check_sees_use_lines_braced_lists_and_inline_paths() {
    assert_eq!(named_modules("use crate::store::Store;"), ["store"]);
    assert_eq!(
        named_modules("use crate::{config, store::Fence};"),
        ["config", "store"]
    );
    assert_eq!(
        named_modules("    let x = crate::feed::run(crate::api::x);"),
        ["feed", "api"]
    );
    assert!(named_modules("// see crate::api").is_empty());
}
