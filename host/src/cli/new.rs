//! `plant-monitor plugin new NAME --lang LANG --role ROLE`: a ready plugin project from templates
//! embedded in the binary (the source with the role's function filled in as a working example, one
//! build command, `./build.sh`, a README, a manifest, a sample event and tests of its own), and
//! `plugin new --list`: the languages and whether their toolchain is installed here.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use crate::plugins::Role;

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's name: its folder, its component `NAME.wasm` and its manifest `NAME.toml`.
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// The language of the project.
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// What the plugin does: filter, enrich or route.
    #[arg(long, value_enum, default_value = "filter")]
    role: NewRole,
    /// Show the languages and whether their toolchain is installed here.
    #[arg(long)]
    list: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lang {
    Rust,
    C,
    Js,
    Python,
    Go,
    Zig,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum NewRole {
    Filter,
    Enrich,
    Route,
}

impl NewRole {
    fn role(self) -> Role {
        match self {
            NewRole::Filter => Role::Filter,
            NewRole::Enrich => Role::Enrich,
            NewRole::Route => Role::Route,
        }
    }
}

/// The WIT package every plugin implements, as the host was built from it.
const WIT: &str = include_str!("../../../wit/plugin.wit");

/// One file of a template: its path in the project, its text (with `{{…}}` placeholders), and
/// whether it is a program to run.
struct TemplateFile {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

const RUST: &[TemplateFile] = &[
    TemplateFile {
        path: "Cargo.toml",
        text: include_str!("../../templates/rust/Cargo.toml.template"),
        executable: false,
    },
    // The example plugins' lock file, so a new project builds with the same, tested versions.
    TemplateFile {
        path: "Cargo.lock",
        text: include_str!("../../templates/rust/Cargo.lock.template"),
        executable: false,
    },
    TemplateFile {
        path: "build.sh",
        text: include_str!("../../templates/rust/build.sh.template"),
        executable: true,
    },
    TemplateFile {
        path: "README.md",
        text: include_str!("../../templates/rust/README.md.template"),
        executable: false,
    },
];

/// Each role's source, and the manifest `[config]` its example reads.
fn rust_source(role: Role) -> (&'static str, &'static str) {
    match role {
        Role::Filter => (
            include_str!("../../templates/rust/src/filter.rs.template"),
            "[config]\n# Plants below this many megawatts are dropped.\nmin_capacity_mw = \"50\"",
        ),
        Role::Enrich => (
            include_str!("../../templates/rust/src/enrich.rs.template"),
            "[config]\n# From this many megawatts up a plant is labelled size=large.\nlarge_mw = \"1000\"",
        ),
        Role::Route => (
            include_str!("../../templates/rust/src/route.rs.template"),
            "[config]\n# A configured sink: events about operational plants go there.\nsink = \"green\"",
        ),
    }
}

/// An event as a plugin receives it: an update of a plant, for `plugin run --event`.
const SAMPLE_EVENT: &str = r#"{
  "seq": 1042,
  "kind": "updated",
  "plant_id": "7b0c2a52-0d1e-4a7e-9f3b-1d2e3f4a5b6c",
  "region": "us-west",
  "before": {"id": "7b0c2a52-0d1e-4a7e-9f3b-1d2e3f4a5b6c", "name": "Grand Coulee", "region": "us-west",
             "fuel": "hydro", "capacity_mw": 6809.0, "output_mw": 5120.5, "status": "operational",
             "latitude": 47.96, "longitude": -118.98, "attributes": {"operator": "USBR"}, "version": 2,
             "created_at": "2026-11-22T10:00:00.000Z", "updated_at": "2026-11-22T10:00:00.000Z"},
  "after": {"id": "7b0c2a52-0d1e-4a7e-9f3b-1d2e3f4a5b6c", "name": "Grand Coulee", "region": "us-west",
            "fuel": "hydro", "capacity_mw": 6809.0, "output_mw": 7000.0, "status": "operational",
            "latitude": 47.96, "longitude": -118.98, "attributes": {"operator": "USBR"}, "version": 3,
            "created_at": "2026-11-22T10:00:00.000Z", "updated_at": "2026-11-22T10:00:01.123Z"},
  "changed_fields": ["output_mw"],
  "committed_at": "2026-11-22T10:00:01.123Z",
  "labels": {}
}
"#;

pub fn run(args: NewArgs) -> anyhow::Result<()> {
    if args.list {
        return list();
    }
    let name = args.name.context("a plugin name is required")?;
    if !is_plugin_name(&name) {
        bail!(
            "{name:?} is not a plugin name: 1 to 64 of a-z, 0-9, - and _, starting with a letter"
        );
    }
    if args.lang != Lang::Rust {
        bail!(
            "there is no {} template yet; `plant-monitor plugin new --list` shows the languages",
            lang_name(args.lang)
        );
    }
    let dir = PathBuf::from(&name);
    // create_dir, not create_dir_all: an existing folder is refused, never written into.
    std::fs::create_dir(&dir)
        .with_context(|| format!("cannot make the project folder {}", dir.display()))?;
    let role = args.role.role();
    let (source, config) = rust_source(role);
    let fill = |text: &str| {
        text.replace("{{name}}", &name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{role}}", role.as_str())
            .replace("{{manifest}}", config)
    };
    for file in RUST {
        write(&dir.join(file.path), &fill(file.text), file.executable)?;
    }
    write(&dir.join("src/lib.rs"), &fill(source), false)?;
    write(&dir.join("wit/plugin.wit"), WIT, false)?;
    write(
        &dir.join(format!("{name}.toml")),
        &fill(include_str!("../../templates/rust/plugin.toml.template")),
        false,
    )?;
    write(&dir.join("sample-event.json"), SAMPLE_EVENT, false)?;
    super::plugin::print(&format!(
        "made {name}/, a {} plugin in Rust: cd {name} && ./build.sh && plant-monitor plugin run {name}.wasm --event sample-event.json",
        role.as_str()
    ))
}

fn write(path: &Path, text: &str, executable: bool) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot make {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    Ok(())
}

/// A name that is a valid file stem and Cargo package name everywhere.
fn is_plugin_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && (name.chars())
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::C => "C",
        Lang::Js => "JavaScript",
        Lang::Python => "Python",
        Lang::Go => "Go",
        Lang::Zig => "Zig",
    }
}

/// Each language, whether `plugin new` has its template, and what of its toolchain is installed.
fn list() -> anyhow::Result<()> {
    for lang in Lang::value_variants() {
        let (template, toolchain) = match lang {
            Lang::Rust => ("template", rust_toolchain()),
            _ => ("no template yet", String::from("-")),
        };
        super::plugin::print(&format!(
            "{:<8} {:<11} {:<16} {toolchain}",
            lang.to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default(),
            lang_name(*lang),
            template
        ))?;
    }
    Ok(())
}

/// Whether cargo and the wasm32-wasip2 target are installed.
fn rust_toolchain() -> String {
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match targets {
        Ok(output)
            if String::from_utf8_lossy(&output.stdout)
                .lines()
                .any(|t| t == "wasm32-wasip2") =>
        {
            "installed (cargo, wasm32-wasip2)".into()
        }
        Ok(_) => "missing the wasm32-wasip2 target: rustup target add wasm32-wasip2".into(),
        Err(_) => "missing: rustup is not on PATH (https://rustup.rs)".into(),
    }
}
