#!/bin/sh
# Install coder from this checkout so that only the `coder` command lands on your PATH.
#
# With pipx or uv on the machine, they do it (`pipx install`, `uv tool install`). Otherwise coder gets
# a virtual environment of its own in ~/.local/lib/coder/venv, and ~/.local/bin/coder links to it.
# Either way the environment's python3, pip and the rest stay off your PATH, and off the PATH of the
# commands the agent runs. Run it again to upgrade: a failed upgrade leaves the previous install in place.
# Without pipx or uv, an existing ~/.local/bin/coder that is not its own link is left alone (CODER_FORCE=1).
#
#   sh install.sh                       CODER_INSTALLER=venv|pipx|uv picks the way
#   PYTHON=python3.12 sh install.sh     the Python for the venv (3.11 or newer)
#   CODER_FORCE=1 sh install.sh         replace another ~/.local/bin/coder
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
    lib="$HOME/.local/lib/coder"
    venv="$lib/venv"  # not under ~/.local/share/coder: commands may read nothing there
    aside="$lib/venv.previous"
    bindir="$HOME/.local/bin"
    # Never replace another program's `coder`: only a link into our venv, unless CODER_FORCE=1.
    if [ -e "$bindir/coder" ] || [ -L "$bindir/coder" ]; then
        case $(readlink "$bindir/coder" 2>/dev/null || true) in
        "$venv/bin/coder") ;;
        *) [ "${CODER_FORCE:-}" = 1 ] \
            || fail "$bindir/coder exists and is not this installer's; move it away, or set CODER_FORCE=1 to replace it" ;;
        esac
    fi
    command -v "$python" >/dev/null 2>&1 || fail "$python not found; set PYTHON to a Python 3.11 or newer"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || fail "coder needs Python 3.11 or newer; $python is $("$python" -V 2>&1); set PYTHON to another"
    [ -L "$lib" ] && fail "$lib is a symbolic link; coder needs a real folder there"
    mkdir -p "$lib"
    chmod go-w "$lib"  # coder gives commands no tools from a folder others may write
    # An earlier run cut short while it had the previous install moved aside: put that one back.
    if [ -d "$aside" ]; then rm -rf "$venv"; mv "$aside" "$venv"; fi
    rm -rf "$lib"/venv.old.*  # one whose removal was cut short
    # The new venv is built where it will stay (its scripts name that path); the previous one waits aside
    # and comes back if anything fails, so ~/.local/bin/coder always leads to a working coder.
    done=
    settle() {
        [ -n "$done" ] && return
        rm -rf "$venv"
        if [ -d "$aside" ]; then mv "$aside" "$venv" && say "kept the previous installation"; fi
    }
    trap settle EXIT
    trap 'exit 130' INT TERM HUP
    [ -d "$venv" ] && mv "$venv" "$aside"
    say "installing into $venv"
    "$python" -m venv "$venv" || fail "could not make a virtual environment in $venv (python3-venv missing?)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$src" >&2 \
        || fail "pip install failed (see above)"
    "$venv/bin/coder" --version >/dev/null || fail "$venv/bin/coder does not run"
    mkdir -p "$bindir"
    ln -sfn "$venv/bin/coder" "$bindir/coder"
    done=1
    trap - EXIT INT TERM HUP
    if [ -d "$aside" ]; then mv "$aside" "$lib/venv.old.$$" && rm -rf "$lib/venv.old.$$"; fi
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
