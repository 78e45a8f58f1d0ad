#!/bin/sh
# Install coder from this checkout so that only the `coder` command lands on your PATH.
#
# With pipx or uv on the machine, they do it (`pipx install`, `uv tool install`). Otherwise coder gets
# a virtual environment of its own in ~/.local/lib/coder/venv, and ~/.local/bin/coder links to it.
# Either way the environment's python3, pip and the rest stay off your PATH, and off the PATH of the
# commands the agent runs. Run it again to upgrade.
#
#   sh install.sh                       CODER_INSTALLER=venv|pipx|uv picks the way
#   PYTHON=python3.12 sh install.sh     the Python for the venv (3.11 or newer)
set -eu

src=$(cd "$(dirname "$0")" && pwd)
say() { printf 'install.sh: %s\n' "$*" >&2; }
fail() { say "error: $*"; exit 1; }

[ -f "$src/pyproject.toml" ] || fail "run me from a coder checkout ($src has no pyproject.toml)"
how=${CODER_INSTALLER:-}
if [ -z "$how" ]; then
    if command -v pipx >/dev/null 2>&1; then how=pipx
    elif command -v uv >/dev/null 2>&1; then how=uv
    else how=venv
    fi
fi

case $how in
pipx)
    pipx install --force "$src" >&2 || fail "pipx install failed (see above)"
    bindir=$(pipx environment --value PIPX_BIN_DIR 2>/dev/null || echo "$HOME/.local/bin")
    ;;
uv)
    uv tool install --force --reinstall "$src" >&2 || fail "uv tool install failed (see above)"
    bindir=$(uv tool dir --bin 2>/dev/null || echo "$HOME/.local/bin")
    ;;
venv)
    python=${PYTHON:-python3}
    command -v "$python" >/dev/null 2>&1 || fail "$python not found; set PYTHON to a Python 3.11 or newer"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || fail "coder needs Python 3.11 or newer; $python is $("$python" -V 2>&1); set PYTHON to another"
    venv="$HOME/.local/lib/coder/venv"  # not under ~/.local/share/coder: commands may read nothing there
    bindir="$HOME/.local/bin"
    say "installing into $venv"
    "$python" -m venv --clear "$venv" || fail "could not make a virtual environment in $venv (python3-venv missing?)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$src" >&2 \
        || fail "pip install failed (see above)"
    mkdir -p "$bindir"
    ln -sfn "$venv/bin/coder" "$bindir/coder"
    ;;
*)
    fail "CODER_INSTALLER=$how: choose venv, pipx or uv"
    ;;
esac

"$bindir/coder" --version >/dev/null || fail "$bindir/coder does not run"
say "installed $("$bindir/coder" --version) as $bindir/coder (with $how)"
case ":$PATH:" in
*":$bindir:"*) ;;
*) say "$bindir is not on your PATH; add it, e.g. in ~/.profile:  export PATH=\"$bindir:\$PATH\"" ;;
esac
case ":$PATH:" in
*":$HOME/.coder/bin:"*)
    say "~/.coder/bin (an older install's virtual environment) is on your PATH: it shadows python3 and pip;"
    say "take it out of PATH and remove ~/.coder" ;;
esac
