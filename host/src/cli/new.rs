//! `plant-monitor plugin new NAME --lang LANG --role ROLE`: a ready plugin project from templates
//! embedded in the binary (the source with the role's function filled in as a working example, one
//! build command, `./build.sh`, a README, a manifest, a sample event and tests of its own), and
//! `plugin new --list`: the languages and whether their toolchain is installed here.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use include_dir::{Dir, include_dir};

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

/// Every language's project files: `LANG/common/` for every role and `LANG/ROLE/` for one role's
/// source; `manifest/ROLE` and `shared/` are written for every language. Each file ends in
/// `.template`, which is dropped; `{{name}}`, `{{ident}}` (the name with `_` for `-`), `{{role}}`,
/// `{{world}}` and `{{world_ident}}` (e.g. `filter-plugin`, `filter_plugin`) are filled in, in
/// paths and text.
static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The toolchain installers, one `LANG.sh` each, run by `plugin toolchain`.
static TOOLCHAINS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/toolchains");

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
    let Some(lang_dir) = TEMPLATES.get_dir(args.lang.key()) else {
        bail!(
            "there is no {} template yet; `plant-monitor plugin new --list` shows the languages",
            args.lang.name()
        );
    };
    let role = args.role.role();
    let dir = PathBuf::from(&name);
    // create_dir, not create_dir_all: an existing folder is refused, never written into.
    std::fs::create_dir(&dir)
        .with_context(|| format!("cannot make the project folder {}", dir.display()))?;
    let fill = |text: &str| {
        text.replace("{{name}}", &name)
            .replace("{{ident}}", &name.replace('-', "_"))
            .replace("{{role}}", role.as_str())
            .replace("{{world}}", &format!("{}-plugin", role.as_str()))
            .replace("{{world_ident}}", &format!("{}_plugin", role.as_str()))
    };
    for part in [
        lang_dir.path().join("common"),
        lang_dir.path().join(role.as_str()),
        PathBuf::from("shared"),
    ] {
        let part = TEMPLATES
            .get_dir(&part)
            .with_context(|| format!("the templates lack {}", part.display()))?;
        for file in files(part) {
            let relative = file.path().strip_prefix(part.path()).unwrap_or(file.path());
            let relative = relative.to_string_lossy();
            let relative = fill(relative.strip_suffix(".template").unwrap_or(&relative));
            let text = file
                .contents_utf8()
                .with_context(|| format!("template {} is not UTF-8", file.path().display()))?;
            write(&dir.join(&relative), &fill(text), relative.ends_with(".sh"))?;
        }
    }
    let manifest = Path::new("manifest").join(format!("{}.toml.template", role.as_str()));
    let manifest = TEMPLATES
        .get_file(&manifest)
        .and_then(|file| file.contents_utf8())
        .with_context(|| format!("the templates lack {}", manifest.display()))?;
    write(&dir.join(format!("{name}.toml")), &fill(manifest), false)?;
    write(&dir.join("wit/plugin.wit"), plant_monitor_guest::WIT, false)?;
    super::plugin::print(&format!(
        "made {name}/, a {} {} plugin: cd {name} && ./build.sh && plant-monitor plugin run {name}.wasm --event sample-event.json",
        args.lang.name(),
        role.as_str()
    ))
}

/// The files under `dir`, at any depth.
fn files<'a>(dir: &'a Dir<'a>) -> Vec<&'a include_dir::File<'a>> {
    let mut found: Vec<_> = dir.files().collect();
    for sub in dir.dirs() {
        found.extend(files(sub));
    }
    found
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

impl Lang {
    /// The spelling on the command line, and the templates' and toolchain scripts' folder name.
    fn key(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Js => "js",
            Lang::Python => "python",
            Lang::Go => "go",
            Lang::Zig => "zig",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::C => "C",
            Lang::Js => "JavaScript",
            Lang::Python => "Python",
            Lang::Go => "Go",
            Lang::Zig => "Zig",
        }
    }

    /// What of the language's toolchain is installed here, or how to install it.
    fn toolchain(self) -> String {
        let tools: &[&str] = match self {
            Lang::Rust => return rust_toolchain(),
            Lang::C => &["clang-14", "wasm-ld-14"],
            Lang::Js => &["componentize-js"],
            Lang::Python => &["componentize-py"],
            Lang::Go => &["go"],
            Lang::Zig => &["zig"],
        };
        let missing: Vec<_> = tools
            .iter()
            .filter(|tool| find_tool(tool).is_none())
            .collect();
        if missing.is_empty() {
            format!("installed ({})", tools.join(", "))
        } else {
            format!(
                "missing {}: plant-monitor plugin toolchain {}",
                missing
                    .iter()
                    .map(|tool| tool.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.key()
            )
        }
    }
}

/// Where the toolchain scripts put their commands: `$PLANT_MONITOR_TOOLCHAINS/bin`, by default
/// `~/.cache/plant-monitor/toolchains/bin`. Each project's `build.sh` looks there first too.
fn toolchains_bin() -> Option<PathBuf> {
    let root = match std::env::var_os("PLANT_MONITOR_TOOLCHAINS") {
        Some(root) => PathBuf::from(root),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/plant-monitor/toolchains"),
    };
    Some(root.join("bin"))
}

/// `tool` in the toolchains' folder, else on `PATH`.
fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    toolchains_bin()
        .into_iter()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// Each language, whether `plugin new` has its template, and what of its toolchain is installed.
fn list() -> anyhow::Result<()> {
    for lang in Lang::value_variants() {
        let template = if TEMPLATES.get_dir(lang.key()).is_some() {
            "template"
        } else {
            "no template yet"
        };
        super::plugin::print(&format!(
            "{:<8} {:<11} {:<16} {}",
            lang.key(),
            lang.name(),
            template,
            lang.toolchain()
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
        Ok(_) => "missing the wasm32-wasip2 target: plant-monitor plugin toolchain rust".into(),
        Err(_) => "missing: rustup is not on PATH (https://rustup.rs)".into(),
    }
}

#[derive(Debug, Args)]
pub struct ToolchainArgs {
    /// The languages whose toolchain to install.
    #[arg(value_enum, required = true)]
    langs: Vec<Lang>,
}

/// `plugin toolchain LANG…`: runs the installers embedded in this binary (the same scripts as the
/// repository's `scripts/toolchain`), each idempotent, showing their progress as they go.
pub fn toolchain(args: ToolchainArgs) -> anyhow::Result<()> {
    // The scripts may read files beside them (lock files), so they run from a folder of their own.
    let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
    TOOLCHAINS
        .extract(dir.path())
        .context("cannot unpack the toolchain scripts")?;
    for lang in args.langs {
        let script = dir.path().join(format!("{}.sh", lang.key()));
        let status = Command::new("bash")
            .arg(&script)
            .status()
            .context("cannot run bash")?;
        if !status.success() {
            bail!("installing the {} toolchain failed ({status})", lang.name());
        }
    }
    Ok(())
}
