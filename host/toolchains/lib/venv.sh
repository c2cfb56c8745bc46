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
