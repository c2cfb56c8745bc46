#!/bin/sh
# Builds output-alert-enricher.wasm, a WebAssembly component for plant-monitor, from the Go package in this folder.
# `plant-monitor plugin bindings` writes the generated Go glue into gen/ (a module named wit_component
# whose main package calls this package's enrich function), Go compiles the two for wasip1 into a
# core module, and `plant-monitor plugin componentize` makes that the component. Offline: the Go
# runtime support the glue imports comes with the bindings, so no module proxy is asked.
set -eu
cd "$(dirname "$0")"
PATH="${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}/bin:$PATH"
plant_monitor="${PLANT_MONITOR:-plant-monitor}"
command -v go >/dev/null || { echo "go not found: run plant-monitor plugin toolchain go" >&2; exit 1; }
command -v "$plant_monitor" >/dev/null || { echo "$plant_monitor not found: put plant-monitor on PATH or set PLANT_MONITOR" >&2; exit 1; }

rm -rf gen
"$plant_monitor" plugin bindings --lang go --world enrich-plugin gen
# The generated main package imports this folder's package as
# wit_component/export_plant_monitor_plugin_enrich, the module path go.mod declares; a workspace
# joins the two modules, so the source stays here (no copy; errors name these files) and
# `go test` here needs no bindings. The replace points the glue's runtime import at gen/go-pkg.
cat >gen/go.work <<'WORK'
go 1.27.1

use (
	.
	..
)

replace go.bytecodealliance.org/pkg => ./go-pkg
WORK
# -checklinkname=0: the runtime support reaches into Go's runtime (runtime.sbrk) by go:linkname.
# -s -w: no symbol table or DWARF (Go's own tracebacks still name functions); -trimpath: no local
# paths in the module. GOFLAGS is cleared because a workspace refuses a -mod=mod from outside.
GOWORK="$PWD/gen/go.work" GOFLAGS= GOPROXY=off GOTOOLCHAIN=local GOOS=wasip1 GOARCH=wasm \
    go build -buildmode=c-shared -trimpath -ldflags='-s -w -checklinkname=0' -o gen/core.wasm wit_component
"$plant_monitor" plugin componentize gen/core.wasm --world enrich-plugin -o output-alert-enricher.wasm
echo "built output-alert-enricher.wasm"
