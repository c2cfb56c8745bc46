#!/usr/bin/env bash
# Installs the Python plugin toolchain: PyPI's componentize-py (pinned) in a virtual environment at
# $ROOT/python, linked as $ROOT/bin/componentize-py, where ROOT is
# ${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}. Needs python3 (3.9 or later) with
# its venv module. Idempotent: a stamp holding the pin makes a second run a no-op; a changed pin
# reinstalls. Progress goes to stderr, stdout stays empty.
set -euo pipefail

package=componentize-py
version=0.25.1
root="${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}"
venv="$root/python"
stamp="$venv/.plant-monitor-stamp"
pin="$package==$version"

# The stamp is written last, so an interrupted install is redone rather than trusted.
if [[ -f "$stamp" && "$(cat "$stamp")" == "$pin" && -x "$venv/bin/$package" && -x "$root/bin/$package" ]]; then
    echo "toolchain python: $package $version already installed" >&2
    exit 0
fi

command -v python3 >/dev/null || { echo "toolchain python: python3 not found: install it (apt-get install python3 python3-venv)" >&2; exit 1; }
echo "toolchain python: installing $package $version from PyPI into ${venv} (a 17 MB wheel, about 10 s)" >&2
# --clear: a venv left by another pin or a broken install starts over.
python3 -m venv --clear "$venv" >&2
# pip writes its log and progress bar to stdout; both belong on stderr here. The bar is forced on
# because pip hides it when the output is not a terminal.
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar on "$pin" >&2
mkdir -p "$root/bin"
ln -sfn "../python/bin/$package" "$root/bin/$package"
"$root/bin/$package" --version >&2
echo "$pin" >"$stamp"
echo "toolchain python: $package $version installed; put $root/bin on PATH" >&2
