"""Running ripgrep: the engine behind search_file, list_dir and glob_files.

rg comes from the `ripgrep` wheel installed next to coder, so it is looked up in
the installation's scripts directory first and on PATH only as a last resort:
a user without rg on PATH still gets working search tools. Output is streamed
line by line with a deadline, so a huge tree can neither hang a tool nor fill
memory.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from coder.tools.base import ToolError
from sandbox.env import scrub
from sandbox.paths import denied_by
from sandbox.policy import Policy

# Respect .gitignore/.ignore even outside a git repository, show hidden files
# (.github/, .env.example), never descend into version-control internals.
IGNORE_FLAGS: tuple[str, ...] = (
    "--hidden",
    "--glob",
    "!.git",
    "--glob",
    "!.hg",
    "--glob",
    "!.svn",
    "--no-require-git",
)
VCS_NAMES: frozenset[str] = frozenset({".git", ".hg", ".svn"})

MAX_LINE_BYTES = 64 * 1024  # a longer stdout line is cut (rg output is normally short)
MAX_STDERR_BYTES = 8 * 1024

_EXE = "rg.exe" if os.name == "nt" else "rg"


def _candidates() -> list[Path]:
    from coder.dirs import install_path

    dirs: list[str | None] = [
        install_path("scripts"),
        install_path("scripts", f"{os.name}_user"),
        str(Path(sys.executable).parent),
    ]
    return [Path(d) / _EXE for d in dirs if d]


@functools.cache
def find_rg() -> str:
    """The rg binary of coder's installation, else one on PATH."""
    for cand in _candidates():
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which("rg")
    if found:
        return found
    raise ToolError("ripgrep (rg) was not found in coder's installation; reinstall coder")


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]{}\\!" else c for c in text)


def deny_globs(policy: Policy, cwd: Path) -> list[str]:
    """`--glob !/x` exclusions for deny-listed paths inside the tree rg walks from `cwd`.

    rg anchors override globs at its working directory, so the exclusions are
    written relative to `cwd`.
    """
    out: list[str] = []
    for denied in policy.deny_read:
        try:
            rel = denied.relative_to(cwd)
        except ValueError:
            continue
        if rel.parts:
            out += ["--glob", "!/" + _glob_escape(rel.as_posix())]
    return out


def base_args(policy: Policy, cwd: Path, globs: Sequence[str] = ()) -> list[str]:
    """Flags every tool passes: ignore handling, no colour, the model's globs, then the deny-list
    exclusions (rg lets a later glob override an earlier one, so ours come last).

    The exclusions only spare rg the walk: a glob can be outwitted, so every path rg reports
    is checked again with `allowed`.
    """
    model = [arg for g in globs for arg in ("--glob", g)]
    return [*IGNORE_FLAGS, "--color", "never", *model, *deny_globs(policy, cwd)]


def allowed(policy: Policy, path: str) -> bool:
    """Whether a path rg reported may be shown (rg walks without following links: paths are real)."""
    return denied_by(policy, path) is None


def strip_prefix(line: str, root: Path) -> str:
    """Make an absolute path at the start of an rg output line relative to `root`."""
    prefix = str(root).rstrip(os.sep) + os.sep
    return line[len(prefix) :] if line.startswith(prefix) else line


class RgStream:
    """A running rg whose stdout is read line by line; use as a context manager.

    Leaving the block early kills rg. A stdout line longer than `max_line_bytes`
    is cut there. After the block: `returncode`, `stderr` (first few KiB) and
    `timed_out` (killed by the deadline or by `cancel`).
    """

    def __init__(
        self,
        args: Sequence[str],
        cwd: Path,
        timeout: float = 30,
        cancel: threading.Event | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.argv = [find_rg(), "--no-config", *args]
        self.max_line_bytes = max_line_bytes
        self.cwd = cwd
        self.timeout = timeout
        self.cancel = cancel
        self.returncode: int | None = None
        self.stderr = ""
        self.timed_out = False
        self._err = bytearray()
        self._done = threading.Event()
        self._eof = False
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> "RgStream":
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=scrub(os.environ),  # rg needs HOME for the global gitignore, never a secret
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for target in (self._drain_stderr, self._watch):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read(4096), b""):
            room = MAX_STDERR_BYTES - len(self._err)
            if room > 0:
                self._err += chunk[:room]

    def _watch(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not self._done.wait(0.05):
            expired = time.monotonic() >= deadline
            if expired or (self.cancel is not None and self.cancel.is_set()):
                if self.proc.poll() is None:
                    self.timed_out = True
                    self.proc.kill()
                return

    def __iter__(self) -> Iterator[str]:
        out = self.proc.stdout
        assert out is not None
        while True:
            raw = out.readline(self.max_line_bytes)
            if not raw:
                self._eof = True
                return
            if not raw.endswith(b"\n"):  # over-long line: drop its rest
                while (more := out.readline(MAX_LINE_BYTES)) and not more.endswith(b"\n"):
                    pass
            yield raw.decode("utf-8", errors="replace").rstrip("\r\n")

    def __exit__(self, *exc: object) -> None:
        if not self._eof and self.proc.poll() is None:
            # The caller stopped reading early (or failed): rg is not needed any more.
            self.proc.kill()
        self.returncode = self.proc.wait()
        self._done.set()
        for t in self._threads:
            t.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr = self._err.decode("utf-8", errors="replace")


@dataclass
class RgResult:
    lines: list[str] = field(default_factory=list)  # the first `max_lines` stdout lines
    total: int = 0  # every stdout line seen
    returncode: int | None = None
    stderr: str = ""
    timed_out: bool = False


def run_rg(
    args: Sequence[str],
    cwd: Path,
    timeout: float = 30,
    max_lines: int = 1000,
    cancel: threading.Event | None = None,
    keep: Callable[[str], bool] | None = None,
) -> RgResult:
    """Run rg to completion, keeping only the first `max_lines` lines (that `keep` accepts) but counting all."""
    res = RgResult()
    with RgStream(args, cwd, timeout, cancel) as stream:
        for line in stream:
            if keep is not None and not keep(line):
                continue
            res.total += 1
            if len(res.lines) < max_lines:
                res.lines.append(line)
    res.returncode, res.stderr, res.timed_out = stream.returncode, stream.stderr, stream.timed_out
    return res
