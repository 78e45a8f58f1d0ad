"""Run one recorded session per target, N at a time, each failure kept to its own target.

Each target gets its own Agent and Session (transcript, checkpoints: `coder resume ID` and `coder undo`
work on it as on any session), with `{file}` in the prompt replaced by its path. Under scope "file"
its sandbox lets it write only that file. A rate limit one session meets slows the whole pool (a
shared coder.throttle.Gate); anything else that goes wrong (an API error after its retries, a limit,
an exception) fails that target only. `stop()` (Ctrl-C) cancels the running sessions, which end
interrupted with every call answered; targets not started stay pending.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from coder.batching.state import DONE, State
from coder.config import Config, ConfigError
from coder.events import Event, Usage, UsageReport
from coder.tasks import Result
from coder.throttle import Gate

SCOPES = ("file", "workspace")


@dataclass
class TargetResult:
    """One target's outcome: a Result's facts plus the target, and whether an earlier run had done it."""

    target: str
    # completed, failed, ..., interrupted (as turn.done); skipped: an earlier run completed it; not_started:
    # the batch was stopped before its turn came
    status: str
    session_id: str = ""
    files_changed: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    error_code: str | None = None
    seconds: float = 0.0
    final_text: str = ""
    output: Any = None

    @property
    def ok(self) -> bool:
        return self.status in (DONE, "skipped")

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        usage = asdict(self.usage)
        return {"target": self.target, "status": self.status, "session_id": self.session_id or None,
                "files_changed": self.files_changed, "usage": usage, "error": self.error,
                "error_code": self.error_code, "seconds": round(self.seconds, 2)}


@dataclass
class Progress:
    """What a display shows while the batch runs; read from the display's thread, written under `lock`."""

    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    running: dict[str, float] = field(default_factory=dict)  # target: when it started
    usage: Usage = field(default_factory=Usage)
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Batch:
    def __init__(self, template: str, targets: list[str], *, workspace: Path, config: Config, state: State,
                 jobs: int = 4, scope: str = "file", output_schema: dict[str, Any] | None = None,
                 on_result: Callable[[TargetResult], None] | None = None) -> None:
        if scope not in SCOPES:
            raise ConfigError(f"scope must be file or workspace, got {scope!r}")
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        if scope == "file" and config.sandbox == "full-access":
            raise ConfigError("--scope file needs the sandbox to keep each session to its own file, and the sandbox "
                              f"is full-access ({config.source('sandbox').where or config.source('sandbox').kind}): "
                              "use --scope workspace, or another sandbox")
        from coder.instructions import agents_text
        from coder.pricing import require_price
        from coder.sessions import secret_values

        require_price(config)  # once, here, rather than as every target's failure
        self.template = template
        self.targets = targets
        self.workspace = workspace
        self.config = replace(config, approval="never")  # nobody to ask: a refusal is the tool's output
        self.state = state
        self.jobs = jobs
        self.scope = scope
        self.output_schema = output_schema
        self.on_result = on_result
        self.gate = Gate()
        self.secrets = [s for s in secret_values(config) if s and len(s) >= 8]  # never in a result or the state
        # The project's AGENTS.md as it is now, for every session: one session's target (or, under --scope
        # workspace, its write) must not become the next sessions' instructions.
        self.notes = agents_text(workspace)
        self.callback_error: BaseException | None = None  # what on_result raised: it stops the batch
        self.state_error: str | None = None  # the first failure to write the state file
        self.progress = Progress(total=len(targets))
        self.results: list[TargetResult] = []
        self._stopping = threading.Event()
        self._agents: dict[str, Any] = {}  # target: its running agent (to cancel on stop)
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Stop the batch: running sessions are cancelled (they end interrupted), no new one starts."""
        self._stopping.set()
        with self._lock:
            agents = list(self._agents.values())
        for agent in agents:
            agent.cancel()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> list[TargetResult]:
        """Every target not done by an earlier run, `jobs` at a time; the results in the targets' order."""
        todo = []
        for target in self.targets:
            if self.state.done(target):
                record = self.state.targets[target]
                self._finish(TargetResult(target, "skipped", record.get("session", ""),
                                          list(record.get("files_changed") or [])), record=False)
            else:
                todo.append(target)
        if todo:
            import openai  # noqa: F401  once, here: in the first worker it would hold up every other one
        pool = ThreadPoolExecutor(max_workers=min(self.jobs, max(1, len(todo))), thread_name_prefix="coder-batch")
        futures: list[Any] = []
        try:
            for target in todo:
                futures.append(pool.submit(self._one, target))
            _wait(futures)
        except KeyboardInterrupt:
            self.stop()
        finally:
            while True:  # however often Ctrl-C is pressed: the sessions end cleanly, then the batch
                try:
                    if self.stopping:
                        self.stop()  # again: a target submitted while the first stop ran is cancelled too
                    _wait(futures)
                    pool.shutdown(wait=True)
                    break
                except KeyboardInterrupt:
                    self._stopping.set()
        order = {t: i for i, t in enumerate(self.targets)}
        return sorted(self.results, key=lambda r: order[r.target])

    def _one(self, target: str) -> None:
        if self.stopping:  # not started: its record stays as it was (none, or an earlier run's)
            self._finish(TargetResult(target, "not_started"), record=False)
            return
        started = time.monotonic()
        with self.progress.lock:
            self.progress.running[target] = started
        try:
            result = self._session(target)
        except Exception as e:  # whatever it was (a bug of coder's, say), it is this target's failure only
            result = Result("failed", error=_one_line(e), error_code="error")
        self._finish(TargetResult(target, result.status, session_id=result.session_id,
                                  files_changed=result.files_changed, usage=result.usage, error=result.error,
                                  error_code=result.error_code, seconds=time.monotonic() - started,
                                  final_text=result.final_text, output=result.output))

    def _session(self, target: str) -> Result:
        from coder.agent import Agent
        from coder.sessions import RecordingError, Session

        path = self.workspace / target
        if self.scope == "file" and not path.is_file():
            return Result("failed", error=f"{target} does not exist (under --scope file a target must be a file)",
                          error_code="not_found")
        try:
            agent = Agent(self.config, self.workspace, writable_files=[path] if self.scope == "file" else None,
                          gate=self.gate, project_notes=self.notes)
        except ConfigError as e:
            return Result("failed", error=str(e), error_code="config")
        try:
            if self.output_schema is not None:
                agent.set_output_schema(self.output_schema)
            try:
                session = Session.create(agent)
            except RecordingError as e:
                return Result("failed", error=str(e), error_code="recording")
            with self._lock:
                self._agents[target] = agent
            self._record(target, status="running", session=session.id)
            try:
                def watch(event: Event) -> None:
                    if self.stopping:  # a stop that came before this run began (the run clears a cancel)
                        agent.cancel()
                    if isinstance(event, UsageReport):
                        with self.progress.lock:
                            self.progress.usage.add(event.request)

                if self.stopping:
                    return Result("interrupted", session_id=session.id)
                return session.run_task(self.template.replace("{file}", target), on_event=watch)
            except Exception as e:  # after the session began: the failure keeps its id, for coder resume
                return Result("failed", session_id=session.id, error=_one_line(e), error_code="error")
            finally:
                with self._lock:
                    self._agents.pop(target, None)
                session.close()
        finally:
            agent.close()

    def _finish(self, result: TargetResult, record: bool = True) -> None:
        if result.error:
            for secret in self.secrets:  # an endpoint may quote the key back in its error
                result.error = result.error.replace(secret, "[REDACTED]")
        if record:
            self._record(result.target, status=result.status, session=result.session_id,
                         files_changed=result.files_changed, error=result.error,
                         tokens=result.usage.total_tokens, cost=result.usage.cost)
        with self.progress.lock:
            self.progress.running.pop(result.target, None)
            if result.status == "skipped":
                self.progress.skipped += 1
            elif result.status == "not_started":
                pass
            elif result.ok:
                self.progress.done += 1
            else:
                self.progress.failed += 1
        with self._lock:
            self.results.append(result)
        if self.on_result is not None and self.callback_error is None:
            try:
                self.on_result(result)
            except BaseException as e:  # a closed pipe, a script's bug: the batch stops, the error is kept
                self.callback_error = e
                self.stop()


    def _record(self, target: str, **fields: Any) -> None:
        """A target's record in the state file; a failure to write it does not stop the batch, but the report
        says the batch is no longer resumable (state_error)."""
        try:
            self.state.record(target, **fields)
        except OSError as e:
            with self._lock:
                self.state_error = self.state_error or (f"the state file {self.state.path} could not be written "
                                                        f"({e.strerror}): a re-run would not know what this one did")


def _one_line(e: Exception) -> str:
    """An unexpected exception as a target's reason: its type and its first line."""
    first = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _wait(futures: list[Any]) -> None:
    """Until every future is done; in short waits, so that Ctrl-C reaches the main thread."""
    for future in futures:
        while True:
            try:
                future.result(timeout=0.2)
                break
            except TimeoutError:
                continue
