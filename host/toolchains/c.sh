#!/usr/bin/env bash
# Installs what a C plugin needs: Debian's clang 14 with its wasm32 linker, wasi-libc and the wasm32
# compiler runtime (apt; run as root or with sudo). Bindings and componentizing need nothing more:
# `plant-monitor plugin bindings` and `plugin componentize` do them. Zig projects use the same
# bindings but their own compiler. Idempotent: a second run only asks dpkg.
set -euo pipefail

packages=(clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "toolchain c: ${packages[*]} already installed" >&2
    exit 0
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "toolchain c: installing ${missing[*]} (apt, about 1 min)" >&2
"${sudo[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "toolchain c: installed ${missing[*]}" >&2
