//! The guest-side build steps that C, Go and Zig plugin projects call from their `build.sh`:
//! `plugin bindings` writes the canonical-ABI glue for a world, `plugin componentize` turns the
//! compiler's core module into the plugin component (see the `plant-monitor-guest` crate).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use plant_monitor_guest::{self as guest, Language};

#[derive(Debug, Args)]
pub struct BindingsArgs {
    /// The language to generate for (Zig uses the C bindings).
    #[arg(long, value_enum)]
    lang: BindingsLang,
    /// The world the plugin implements: filter-plugin, enrich-plugin or route-plugin.
    #[arg(long)]
    world: String,
    /// The folder to write them into (made if missing; files of the same name are replaced).
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BindingsLang {
    C,
    Go,
}

#[derive(Debug, Args)]
pub struct ComponentizeArgs {
    /// The core WebAssembly module (wasm32-wasip1, a reactor) the compiler made.
    module: PathBuf,
    /// The world the plugin implements: filter-plugin, enrich-plugin or route-plugin.
    #[arg(long)]
    world: String,
    /// Where to write the component.
    #[arg(short, long, value_name = "NAME.wasm")]
    output: PathBuf,
}

pub fn bindings(args: BindingsArgs) -> anyhow::Result<()> {
    let language = match args.lang {
        BindingsLang::C => Language::C,
        BindingsLang::Go => Language::Go,
    };
    guest::bindings(language, &args.world, &args.out)?;
    Ok(())
}

pub fn componentize(args: ComponentizeArgs) -> anyhow::Result<()> {
    let module = std::fs::read(&args.module)
        .with_context(|| format!("cannot read {}", args.module.display()))?;
    let component = guest::componentize(&module, &args.world)
        .with_context(|| format!("{}", args.module.display()))?;
    std::fs::write(&args.output, component)
        .with_context(|| format!("cannot write {}", args.output.display()))
}
