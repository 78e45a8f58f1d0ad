"""A cgroup per command for the limits rlimits cannot cover: processes as root, and total memory.

The kernel exempts root from RLIMIT_NPROC, so a fork bomb started by coder
running as root would only end at the wall-clock timeout, after exhausting the
machine; and RLIMIT_DATA counts memory per process, not for everything a
command starts. Where the cgroup v1 controllers are writable (as root), each
command gets its own group under coder's own: `pids.max` from the process
limit and `memory.limit_in_bytes` from the memory limit. The command's first
process joins before it execs; afterwards the memory group tells whether the
kernel killed something for lack of memory.
"""

from __future__ import annotations

import itertools
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PIDS_ROOT = CGROUP_ROOT / "pids"
# controller -> (the file holding the limit, the sandbox limit it takes)
CONTROLLERS = {"pids": ("pids.max", "nproc"), "memory": ("memory.limit_in_bytes", "memory")}
_counter = itertools.count()


@dataclass
class Group:
    dirs: list[Path]  # one per controller

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the group for lack of memory."""
        for d in self.dirs:
            try:
                for line in (d / "memory.oom_control").read_text().splitlines():
                    if line.startswith("oom_kill ") and int(line.split()[1]) > 0:
                        return True
            except (OSError, ValueError):
                continue
        return False


def _parent(controller: str) -> Path | None:
    """Where this process's own group of `controller` is (so a command is never moved out of it)."""
    if os.geteuid() != 0:
        return None
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, names, path = line.rstrip("\n").split(":", 2)
                if controller in names.split(","):
                    parent = CGROUP_ROOT / controller / path.lstrip("/")
                    return parent if os.access(parent, os.W_OK) else None
    except (OSError, ValueError):
        return None
    return None


def available() -> bool:
    return _parent("pids") is not None


def create(limits: dict[str, int]) -> Group | None:
    """Fresh groups holding the process and memory limits, or None where there is none to make."""
    dirs = []
    name = f"coder-{os.getpid()}-{next(_counter)}"
    for controller, (limit_file, key) in CONTROLLERS.items():
        parent = _parent(controller)
        if parent is None or not limits.get(key):
            continue
        group = parent / name
        try:
            group.mkdir()
            (group / limit_file).write_text(str(limits[key]))
        except OSError:
            _rmdir(group)
            continue
        dirs.append(group)
    return Group(dirs) if dirs else None


def join_prefix(group: Group) -> list[str]:
    """An argv prefix whose process moves itself into the groups, then execs the rest."""
    joins = " && ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}" for d in group.dirs)
    return ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh"]


def remove(group: Group | None, wait: float = 2.0) -> None:
    """Remove the groups once their tasks are gone (they are being killed)."""
    for d in group.dirs if group else []:
        _rmdir(d, wait)


def _rmdir(group: Path, wait: float = 0.0) -> None:
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
