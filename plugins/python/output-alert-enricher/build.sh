#!/bin/sh
# Builds output-alert-enricher.wasm, a WebAssembly component for plant-monitor, from app.py and the modules it
# imports. componentize-py bundles a whole Python interpreter, hence about 18 MB and 10-20 s.
set -eu
cd "$(dirname "$0")"
PATH="${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}/bin:$PATH"
command -v componentize-py >/dev/null || {
    echo "componentize-py not found: run plant-monitor plugin toolchain python" >&2
    exit 1
}
# -d/-w pick the interface and the world (before the subcommand); `app` is the module app.py.
componentize-py --quiet -d wit -w enrich-plugin componentize app -o output-alert-enricher.wasm
# The interpreter inside compiles app.py and its modules into __pycache__/ here while it builds;
# that bytecode (CPython 3.14's) is of no use outside the component.
rm -rf __pycache__
echo "built output-alert-enricher.wasm"
