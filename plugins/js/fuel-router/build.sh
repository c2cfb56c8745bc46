#!/bin/sh
# Builds fuel-router.wasm, a WebAssembly component for plant-monitor, from plugin.js and what it imports.
# Needs componentize-js: plant-monitor plugin toolchain js
set -eu
cd "$(dirname "$0")"
PATH="${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}/bin:$PATH"
if ! command -v componentize-js >/dev/null 2>&1; then
    echo "componentize-js not found: run plant-monitor plugin toolchain js" >&2
    exit 1
fi
# Every WASI feature off: the host offers no files, network or environment, and without them the
# component imports nothing but plant-monitor's `host` (console.log, Date.now and Math.random go too).
componentize-js plugin.js --wit wit --world-name route-plugin \
    --disable stdio random clocks http fetch-event --out fuel-router.wasm "$@"
echo "built fuel-router.wasm"
