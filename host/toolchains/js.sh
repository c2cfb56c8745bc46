#!/usr/bin/env bash
# Installs the JavaScript plugin toolchain: npm's @bytecodealliance/componentize-js 0.23.0 (its own
# CLI, not `jco componentize`, which is broken on a fresh install and 20-30x slower per call) at
# $ROOT/js, linked as $ROOT/bin/componentize-js, where ROOT is
# ${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}. Needs Node.js 18 or later with
# npm. Idempotent: a stamp holding the pin makes a second run a no-op; a changed pin reinstalls.
# Progress goes to stderr, stdout stays empty.
set -euo pipefail

package=@bytecodealliance/componentize-js
version=0.23.0
root="${PLANT_MONITOR_TOOLCHAINS:-$HOME/.cache/plant-monitor/toolchains}"
prefix="$root/js"
stamp="$prefix/.installed"
# package.json and package-lock.json beside this script pin every transitive package too
# (`plugin toolchain js` unpacks them beside its copy of the script).
lockdir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/js"

say() { echo "toolchain js: $*" >&2; }

link="$root/bin/componentize-js"
if [[ "$(cat "$stamp" 2>/dev/null)" == "$package $version" && -x "$link" ]]; then
    say "$package $version already installed"
    exit 0
fi

for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
        say "$tool not found: install Node.js 18 or later with npm (apt-get install nodejs npm)"
        exit 1
    fi
done

say "installing $package $version from npm into $prefix (about 30 s)"
rm -rf "$prefix"
mkdir -p "$prefix" "$root/bin"
cp "$lockdir/package.json" "$lockdir/package-lock.json" "$prefix/"
# No package runs an install script; --ignore-scripts keeps it that way.
npm ci --prefix "$prefix" --ignore-scripts --no-audit --no-fund --loglevel=error >&2
ln -sfn "$prefix/node_modules/.bin/componentize-js" "$link"
echo "$package $version" >"$stamp"
say "installed $package $version; add $root/bin to PATH or let ./build.sh do it"
