# Sourced by the toolchain scripts whose toolchain comes from PyPI (Python, Go, Zig): the pinned
# package in a virtual environment of its own, made afresh.

# venv_install LANG VENV PIN WHAT: installs PIN (package==version) into a new VENV, saying WHAT it
# downloads; progress on stderr, stdout stays empty.
venv_install() {
    local lang="$1" venv="$2" pin="$3" what="$4"
    command -v python3 >/dev/null || {
        echo "toolchain $lang: python3 not found: install it (apt-get install python3 python3-venv)" >&2
        exit 1
    }
    echo "toolchain $lang: installing $pin from PyPI into $venv ($what)" >&2
    # --clear: a venv left by another pin or a broken install starts over.
    python3 -m venv --clear "$venv" >&2
    # pip writes its log and progress bar to stdout; both belong on stderr here. The bar is forced on
    # because pip hides it when the output is not a terminal.
    "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar on "$pin" >&2
}

# venv_current LANG VENV PIN FILE...: whether VENV holds PIN, per the stamp written by venv_done,
# and every FILE (its commands) is executable; says so when it is.
venv_current() {
    local lang="$1" venv="$2" pin="$3" file
    shift 3
    [[ "$(cat "$venv/.plant-monitor-stamp" 2>/dev/null)" == "$pin" ]] || return 1
    for file in "$@"; do
        [[ -x "$file" ]] || return 1
    done
    echo "toolchain $lang: $pin already installed" >&2
}

# venv_done VENV PIN: stamps VENV as holding PIN. Written last, so an interrupted install is redone
# rather than trusted.
venv_done() {
    echo "$2" >"$1/.plant-monitor-stamp"
}
