#!/bin/sh
# Builds output-alert-enricher.wasm, a WebAssembly component for plant-monitor, from this folder:
# bindings of the enrich-plugin world into gen/, clang 14 for wasm32-wasi (a reactor: a library the
# host calls into, no main), then `plant-monitor plugin componentize`. `./build.sh test` runs the
# tests of test.c natively instead.
# Needs Debian's clang-14, lld-14, wasi-libc and libclang-rt-14-dev-wasm32:
# plant-monitor plugin toolchain c
set -eu
cd "$(dirname "$0")"
PATH="${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}/bin:$PATH"
plant_monitor="${PLANT_MONITOR:-plant-monitor}"
command -v clang-14 >/dev/null || { echo "clang-14 not found: run plant-monitor plugin toolchain c" >&2; exit 1; }
warnings="-std=c11 -Wall -Wextra -Werror"

if [ "${1:-}" = test ]; then
    mkdir -p gen
    clang-14 $warnings -O1 -o gen/test test.c -lm
    exec gen/test
fi

"$plant_monitor" plugin bindings --lang c --world enrich-plugin gen
clang-14 --target=wasm32-wasi -mexec-model=reactor $warnings -Wno-unused-parameter -Os \
    -Igen -o gen/output-alert-enricher.core.wasm plugin.c gen/enrich_plugin.c gen/enrich_plugin_component_type.o
"$plant_monitor" plugin componentize gen/output-alert-enricher.core.wasm --world enrich-plugin -o output-alert-enricher.wasm
echo "built output-alert-enricher.wasm"
