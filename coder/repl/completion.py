"""Completion for the prompt: slash commands, and project files after `@` or on Tab.

The file list comes from `git ls-files` (tracked and untracked, ignores
respected) or, outside git, from ripgrep's ignore-aware walk. It is built on a
background thread and refreshed at most every REFRESH seconds, and matching
runs in prompt_toolkit's completion thread, so typing never waits for it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

REFRESH = 30.0
MAX_FILES = 200_000
MAX_SHOWN = 50


def _list_files(workspace: Path) -> list[str]:
    from coder.git import GitError, Repository

    try:
        repo = Repository.find(workspace)
        if repo is not None:
            return sorted(set(repo.names("ls-files", "-z", "--cached", "--others", "--exclude-standard",
                                         cwd=workspace)))[:MAX_FILES]
    except GitError:
        pass
    from coder.tools.rg import find_rg
    from sandbox.env import scrub

    try:
        r = subprocess.run([find_rg(), "--no-config", "--files", "--hidden", "--glob", "!.git"], cwd=workspace,
                           env=scrub(os.environ), capture_output=True, timeout=20)
    except Exception:  # no rg, a timeout: no completions rather than a broken prompt
        return []
    return sorted(r.stdout.decode(errors="replace").splitlines())[:MAX_FILES]


class ProjectFiles:
    """The project's file list, kept fresh in the background."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.files: list[str] = []
        self._loaded_at = 0.0
        self._loading = False
        self._lock = threading.Lock()
        self.ready = threading.Event()  # set once the first list is in

    def refresh(self) -> None:
        with self._lock:
            if self._loading or time.monotonic() - self._loaded_at < REFRESH:
                return
            self._loading = True
        threading.Thread(target=self._load, name="coder-file-list", daemon=True).start()

    def _load(self) -> None:
        files = _list_files(self.workspace)
        with self._lock:
            self.files, self._loaded_at, self._loading = files, time.monotonic(), False
        self.ready.set()


def rank(query: str, files: Iterable[str], limit: int = MAX_SHOWN) -> list[str]:
    """Files matching `query`: name matches first, then path substrings, then in-order letters."""
    q = query.lower()
    scored: list[tuple[int, int, str]] = []
    for path in files:
        low = path.lower()
        name = low.rsplit("/", 1)[-1]
        if name.startswith(q):
            score = 0
        elif q in name:
            score = 1
        elif q in low:
            score = 2
        elif _subsequence(q, low):
            score = 3
        else:
            continue
        scored.append((score, len(path), path))
    scored.sort()
    return [p for _, _, p in scored[:limit]]


def _subsequence(q: str, text: str) -> bool:
    it = iter(text)
    return all(c in it for c in q)


class CoderCompleter(Completer):
    def __init__(self, commands: Mapping[str, str], files: ProjectFiles) -> None:
        self.commands = commands  # "/name" -> one-line help
        self.files = files

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        before = document.text_before_cursor
        if before.startswith("/") and " " not in before:
            for name, help_text in self.commands.items():
                if name.startswith(before):
                    yield Completion(name, start_position=-len(before), display_meta=help_text)
            return
        word = document.get_word_before_cursor(WORD=True)
        if word.startswith("@"):
            query = word[1:]
        elif complete_event.completion_requested and word:
            query = word
        else:
            return
        self.files.refresh()
        self.files.ready.wait(5)  # the first list may still be loading; this is the completion thread
        for path in rank(query, self.files.files):
            yield Completion(path, start_position=-len(query), display=path)
