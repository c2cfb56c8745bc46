//! Rebuilds the binary when a file is added to or removed from `templates/` or `toolchains/`:
//! `include_dir!` embeds those folders, but cargo by itself tracks only the files that existed when
//! it last compiled them.

fn main() {
    println!("cargo:rerun-if-changed=templates");
    println!("cargo:rerun-if-changed=toolchains");
}
