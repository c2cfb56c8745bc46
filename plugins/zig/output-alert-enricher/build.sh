#!/bin/sh
# Builds output-alert-enricher.wasm, a WebAssembly component for plant-monitor, from src/.
# Needs Zig (plant-monitor plugin toolchain zig) and plant-monitor itself, which writes the
# bindings and makes the component. Extra arguments go to `zig build-exe` (e.g. -O Debug).
set -eu
cd "$(dirname "$0")"
PATH="${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}/bin:$PATH"
if ! command -v zig >/dev/null 2>&1; then
    echo "zig not found: run plant-monitor plugin toolchain zig" >&2
    exit 1
fi
plant_monitor="${PLANT_MONITOR:-plant-monitor}"
# The canonical-ABI glue, in C (gen/enrich_plugin.h, .c, _component_type.o), from the WIT the host was built from;
# Zig 0.17 has no @cImport, so translate-c turns the header into the `bindings` module.
rm -rf gen
"$plant_monitor" plugin bindings --lang c --world enrich-plugin gen
zig translate-c -target wasm32-wasi -lc gen/enrich_plugin.h >gen/enrich_plugin.zig
# A reactor (no main; the host calls the exports), with wasi-libc for malloc/free. The flags
# before -Mroot belong to the root module: the glue (C source and the component-type object the
# glue links in) and its header's folder.
zig build-exe -target wasm32-wasi -mexec-model=reactor -fno-entry -O ReleaseSmall -lc "$@" \
    -I gen gen/enrich_plugin.c gen/enrich_plugin_component_type.o \
    --dep bindings -Mroot=src/plugin.zig -Mbindings=gen/enrich_plugin.zig -femit-bin=gen/core.wasm
# Embeds the world's component type and adapts wasi-libc's WASI preview 1 imports, if any.
"$plant_monitor" plugin componentize gen/core.wasm --world enrich-plugin -o output-alert-enricher.wasm
echo "built output-alert-enricher.wasm"
