"""A pids cgroup per command, for the one case rlimits cannot cover: root.

The kernel exempts root from RLIMIT_NPROC, so a fork bomb started by coder
running as root would only end at the wall-clock timeout, after exhausting the
machine. Where the cgroup v1 pids controller is writable, each command gets its
own group with `pids.max`; the command's first process joins it before it execs.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

PIDS_ROOT = Path("/sys/fs/cgroup/pids")
_counter = itertools.count()


def available() -> bool:
    return os.geteuid() == 0 and (PIDS_ROOT / "cgroup.procs").exists() and os.access(PIDS_ROOT, os.W_OK)


def create(max_pids: int) -> Path | None:
    """A fresh pids cgroup limited to `max_pids` tasks, or None where there is none to make."""
    if not available():
        return None
    group = PIDS_ROOT / f"coder-{os.getpid()}-{next(_counter)}"
    try:
        group.mkdir()
        (group / "pids.max").write_text(str(max_pids))
    except OSError:
        remove(group)
        return None
    return group


def join_prefix(group: Path) -> list[str]:
    """An argv prefix whose process moves itself into `group`, then execs the rest."""
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs")]


def remove(group: Path | None, wait: float = 2.0) -> None:
    """Remove the group once its tasks are gone (they are being killed)."""
    if group is None:
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return  # an empty group left behind costs nothing; never hang a tool on it
            time.sleep(0.02)
