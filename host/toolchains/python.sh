#!/usr/bin/env bash
# Installs the Python plugin toolchain: PyPI's componentize-py (pinned) in a virtual environment at
# $ROOT/python, linked as $ROOT/bin/componentize-py, where ROOT is
# ${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}. Needs python3 (3.9 or later) with
# its venv module. Idempotent: a stamp holding the pin makes a second run a no-op; a changed pin
# reinstalls. Progress goes to stderr, stdout stays empty.
set -euo pipefail
# shellcheck source=lib/venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/venv.sh"

package=componentize-py
version=0.25.1
root="${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}"
venv="$root/python"
pin="$package==$version"

venv_current python "$venv" "$pin" "$venv/bin/$package" "$root/bin/$package" && exit 0

venv_install python "$venv" "$pin" "a 17 MB wheel, about 10 s"
mkdir -p "$root/bin"
ln -sfn "../python/bin/$package" "$root/bin/$package"
"$root/bin/$package" --version >&2
venv_done "$venv" "$pin"
echo "toolchain python: $package $version installed; put $root/bin on PATH" >&2
