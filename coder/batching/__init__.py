"""Scripted refactors: one prompt, many files, one recorded session per file (`coder batch`, `coder.batch`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coder.batching.runner import Batch, TargetResult
from coder.config import Config, ConfigError
from coder.events import Usage

FILE_MARK = "{file}"


@dataclass
class BatchReport:
    """A batch's outcome: one TargetResult per target of this run (this shard), in the targets' order."""

    results: list[TargetResult]
    state_file: Path | None
    interrupted: bool = False
    rate_limited: int = 0  # 429s met (the pool slowed down for each)
    usage: Usage = field(default_factory=Usage)
    state_error: str | None = None  # the state file could not be written (so a re-run would redo work)

    @property
    def ok(self) -> bool:
        """Every target succeeded (in this run or an earlier one), and the state file says so."""
        return not self.interrupted and self.state_error is None and all(r.ok for r in self.results)

    @property
    def failed(self) -> list[TargetResult]:
        return [r for r in self.results if not r.ok and r.status != "not_started"]


def with_file_mark(template: str) -> tuple[str, bool]:
    """The prompt, with the target's path added at its end when it does not say where ({file}); whether it was."""
    if FILE_MARK in template:
        return template, False
    return f"{template.rstrip()}\n\nThe file to work on: {FILE_MARK}", True


def select(workspace: Path, *, files: Sequence[str] | None = None, globs: Sequence[str] | None = None,
           from_list: str | None = None, notes: list[str] | None = None) -> list[str]:
    """The targets (workspace-relative paths): given, matched, or listed, one name per file. `notes` gets
    what the user should hear of (matches left out)."""
    from coder.batching import targets as t

    given = [x for x in (files, globs, from_list) if x]
    if len(given) != 1:
        raise ConfigError("name the targets one way: files=..., --files GLOB..., or --from-list FILE")
    if files:
        chosen: list[str] = []
        for f in files:
            rel = t._relative(workspace, os.fspath(f), "target")
            if rel not in chosen:
                chosen.append(rel)
    elif globs:
        chosen = t.from_globs(workspace, list(globs), notes)
    else:
        chosen = t.from_list(workspace, str(from_list))
    return _one_name_each(workspace, chosen, notes)


def _one_name_each(workspace: Path, chosen: list[str], notes: list[str] | None) -> list[str]:
    """The targets with one name per file: hard links to a file already listed are left out (two sessions
    would write one file at once)."""
    seen: set[tuple[int, int]] = set()
    out, dropped = [], []
    for rel in chosen:
        try:
            st = os.stat(workspace / rel)
        except OSError:
            out.append(rel)
            continue
        if (st.st_dev, st.st_ino) in seen:
            dropped.append(rel)
            continue
        seen.add((st.st_dev, st.st_ino))
        out.append(rel)
    if dropped and notes is not None:
        notes.append(f"left out {len(dropped)} other name(s) (hard links) of files already listed: "
                     + ", ".join(dropped[:3]) + (", ..." if len(dropped) > 3 else ""))
    return out


def prepare(template: str, workspace: Path, config: Config, *, files: Sequence[str] | None = None,
            globs: Sequence[str] | None = None, from_list: str | None = None, shard: str | None = None,
            state: Path | None = None, own: Sequence[Path] = (), jobs: int | None = None, scope: str = "file",
            output_schema: dict[str, Any] | None = None,
            on_result: Callable[[TargetResult], None] | None = None) -> tuple[Batch, list[str]]:
    """A batch ready to run, checked (ConfigError, one line), for `coder batch` and `coder.batch` alike; and
    notes for the user (matches left out, a prompt without {file}). `state`: the batch's state file (None:
    none), a shard's own file beside it; `own`: more files that are never targets (the prompt file)."""
    from coder.batching.state import State, prompt_digest, shard_path
    from coder.batching.targets import parse_shard, shard as slice_of
    from coder.schemas import SchemaError, check_strict

    if output_schema is not None:
        try:
            check_strict(output_schema, "output_schema")
        except SchemaError as e:
            raise ConfigError(str(e)) from None
    notes: list[str] = []
    chosen = select(workspace, files=files, globs=globs, from_list=from_list, notes=notes)
    template, added = with_file_mark(template)
    if added:
        notes.append("the prompt has no {file}: each session's prompt ends with its target's path")
    path = shard_path(state, *parse_shard(shard)) if state is not None and shard else state
    store = State(path, state, prompt_digest(template))
    never = {os.path.realpath(p) for p in (*own, *store.family())}
    chosen = [c for c in chosen if os.path.realpath(workspace / c) not in never]  # before the shard's slice:
    if not chosen:  # every shard must slice the same list, whichever state files exist by then
        raise ConfigError("no targets left: the patterns matched only the batch's own prompt and state files")
    if shard is not None:
        chosen = slice_of(chosen, *parse_shard(shard))
    runner = Batch(template, chosen, workspace=workspace, config=config, state=store,
                   jobs=jobs if jobs is not None else (4 if scope == "file" else 1), scope=scope,
                   output_schema=output_schema,
                   on_result=on_result)
    return runner, notes


def batch(prompt: str, files: Sequence[str | os.PathLike[str]] | None = None, *, globs: Sequence[str] | None = None,
          from_list: str | None = None, workspace: str | os.PathLike[str] = ".", jobs: int | None = None,
          scope: str = "file", state: str | os.PathLike[str] | None = None, shard: str | None = None,
          output_schema: dict[str, Any] | None = None, on_result: Callable[[TargetResult], None] | None = None,
          **settings: Any) -> BatchReport:
    """Run `prompt` once per target ({file} in it becomes the target's path), `jobs` sessions at a time.

    Targets: `files`, or `globs` (** crosses folders), or `from_list` (a file with one path per line);
    `shard` ("2/4") runs the second of four slices. `scope` "file" lets each session write only its own
    target; "workspace" lets it write anywhere in the workspace, and runs one session at a time unless
    `jobs` says otherwise. `state`: a state file (relative to the current directory) that makes the batch
    resumable: targets it records as completed are skipped; None keeps no state. `settings` are coder's
    settings (model, sandbox, max_turns, max_tokens, max_cost, base_url, ...). `on_result` sees each
    target's result as it finishes, from the batch's threads; if it raises, the batch stops and the
    exception is raised once the sessions have ended. A target's failure is in its result, never raised;
    a bad argument raises ConfigError (one line). Ctrl-C stops the running sessions cleanly and returns
    the report (`interrupted`).
    """
    from dataclasses import fields

    from coder.config import Config, check_workspace, load_config, workspace_dir

    known = {f.name for f in fields(Config)} - {"sources"}
    unknown = sorted(k for k in settings if k not in known)
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r} (settings are coder's config keys: model, sandbox, "
                          "max_turns, max_tokens, max_cost, base_url, ...)")
    if settings.pop("approval", "never") != "never":
        raise ConfigError("approval: a batch has nobody to ask, so it always runs with approval never")
    root = workspace_dir(os.fspath(workspace))
    config, _notices = load_config(root, approval="never", **settings)
    check_workspace(root, config.sandbox, explicit=os.fspath(workspace) != ".")
    config.api_key()
    runner, _notes = prepare(prompt, root, config, files=[os.fspath(f) for f in files] if files else None,
                             globs=globs, from_list=from_list, shard=shard,
                             state=Path(state).expanduser().absolute() if state is not None else None, jobs=jobs,
                             scope=scope, output_schema=output_schema, on_result=on_result)
    report = run(runner)
    if runner.callback_error is not None:
        raise runner.callback_error
    return report


def run(runner: Batch, on_loaded: Callable[[Batch], None] | None = None) -> BatchReport:
    """Run a prepared batch: its state file locked, then read (so what another run wrote up to then is seen),
    `on_loaded` told, the targets run; the lock held until every session has ended."""
    runner.state.lock()
    try:
        runner.state.load()
        if on_loaded is not None:
            on_loaded(runner)
        results = runner.run()
    finally:
        runner.state.unlock()
    return BatchReport(results, runner.state.path, runner.stopping, runner.gate.limited_count, runner.progress.usage,
                       runner.state_error)
