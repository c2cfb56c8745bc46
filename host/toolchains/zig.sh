#!/usr/bin/env bash
# Installs the Zig plugin toolchain: PyPI's ziglang (pinned; the Zig compiler, wheel-packaged) in a
# virtual environment at $ROOT/zig, with a wrapper $ROOT/bin/zig, where ROOT is
# ${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}. Needs python3 with its venv
# module. Bindings and componentizing need nothing more: `plant-monitor plugin bindings` and
# `plugin componentize` do them. Idempotent: a stamp holding the pin makes a second run a no-op; a
# changed pin reinstalls. Progress goes to stderr, stdout stays empty.
set -euo pipefail
# shellcheck source=lib/venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/venv.sh"

package=ziglang
version=0.17.0
root="${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}"
venv="$root/zig"
pin="$package==$version"

venv_current zig "$venv" "$pin" "$venv/bin/python" "$root/bin/zig" && exit 0

venv_install zig "$venv" "$pin" "a 101 MB wheel, about 20 s"
mkdir -p "$root/bin"
# The wheel ships no `zig` script, only the module; a wrapper (not a symlink) keeps the venv's
# python, so the command works without activating anything.
cat >"$root/bin/zig" <<WRAPPER
#!/bin/sh
exec "$venv/bin/python" -m ziglang "\$@"
WRAPPER
chmod +x "$root/bin/zig"
echo "toolchain zig: zig $("$root/bin/zig" version)" >&2
# Zig builds its translate-c tool and wasi-libc on first use, into its global cache (~/.cache/zig):
# done here, with the flags every build.sh uses, so a project's first build takes seconds.
echo "toolchain zig: building translate-c and wasi-libc into Zig's cache (once, 1-4 min)" >&2
warm="$(mktemp -d)"
trap 'rm -rf "$warm"' EXIT
printf '#include <stdint.h>\n#include <stdbool.h>\n#include <stddef.h>\n' >"$warm/warm.h"
"$root/bin/zig" translate-c -target wasm32-wasi -lc "$warm/warm.h" >/dev/null
echo 'export fn warm() void {}' >"$warm/warm.zig"
printf 'int warm_c(void) { return 0; }\n' >"$warm/warm.c"
"$root/bin/zig" build-exe -target wasm32-wasi -mexec-model=reactor -fno-entry -O ReleaseSmall -lc \
    "$warm/warm.c" -Mroot="$warm/warm.zig" -femit-bin="$warm/warm.wasm" --cache-dir "$warm/cache" >&2
venv_done "$venv" "$pin"
echo "toolchain zig: $package $version installed; put $root/bin on PATH" >&2
