#!/usr/bin/env bash
# Installs what a Rust plugin needs beyond cargo: the wasm32-wasip2 target (rustup). The crates a
# project uses (wit-bindgen, pinned by its Cargo.lock) come from crates.io at its first build.
# Idempotent: a second run only asks rustup.
set -euo pipefail

command -v rustup >/dev/null || { echo "toolchain rust: rustup is required (https://rustup.rs)" >&2; exit 1; }
if rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "toolchain rust: wasm32-wasip2 target already installed" >&2
else
    echo "toolchain rust: installing the wasm32-wasip2 target (rustup, about 30 s)" >&2
    rustup target add wasm32-wasip2
fi
