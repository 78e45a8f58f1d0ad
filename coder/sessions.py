"""Sessions: every conversation recorded as it happens, and found again later.

A session is a directory under the data directory (`~/.local/share/coder/sessions/<id>/`)
holding the transcript (coder.transcript), a small `meta.json` for listing,
and the checkpoint state (coder.checkpoints: the record of each turn's changes
is in the transcript; outside git, their contents in a private object store). `Session.run` wraps `Agent.run`: a checkpoint before and
after each turn, every item and event written to the transcript, the
transcript synced at the end of the turn.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coder.agent import Agent
from coder.dirs import sessions_dir
from coder.checkpoints import CheckpointError, Checkpoints, UndoResult
from coder.config import Config
from coder.conversation import INTERRUPTED, Conversation, developer_message, user_message
from coder.instructions import sandbox_note
from coder.events import Error, Event, Notice, ReasoningDelta, RecordingFailed, TextDelta, TurnDone, Usage
from coder.transcript import Loaded, Transcript, TranscriptError, load
from sandbox.policy import Mode

if TYPE_CHECKING:
    from coder.tasks import Result

TRANSCRIPT, META = "transcript.jsonl", "meta.json"
_SKIPPED = (TextDelta, ReasoningDelta)  # the finished message is recorded instead of every piece


def new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


# A session's status, from its transcript: the last turn's end ("done", "failed", "interrupted"), "running"
# while a turn runs in a live process, "empty" when it was never given a task.
STATUSES = ("running", "done", "interrupted", "failed", "empty")
_TURN_STATUS = {"completed": "done", "interrupted": "interrupted"}  # failed, incomplete, max_turns: failed


def turn_status(turn_done_status: str) -> str:
    """What a finished turn (TurnDone.status) makes of its session."""
    return _TURN_STATUS.get(turn_done_status, "failed")


@dataclass
class SessionInfo:
    id: str
    directory: Path
    started: float
    updated: float
    project: str
    model: str
    first_prompt: str
    turns: int
    tokens: int
    status: str = "empty"  # one of STATUSES (meta.json says "running" until the process is found gone)
    outputs: int = 0  # items the model sent: a failure with none and no tokens is an empty failure
    pid: int = 0  # the process running the turn, while status is "running"
    pid_started: str = ""  # its start time, so a reused pid is not taken for it

    @property
    def hidden(self) -> bool:
        """Clutter `coder sessions` and /resume leave out unless asked: a run that failed before the model
        said anything (a refused connection, a wrong model name), or a session never given a task."""
        return self.status == "empty" or (self.status == "failed" and not self.tokens and not self.outputs)

    def to_json(self) -> dict[str, Any]:
        """The `coder sessions --json` object."""
        return {"id": self.id, "started": _iso(self.started), "updated": _iso(self.updated), "status": self.status,
                "turns": self.turns, "tokens": self.tokens, "model": self.model, "first_prompt": self.first_prompt,
                "workspace": self.project}


def _iso(t: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


@dataclass
class Listing:
    sessions: list[SessionInfo]  # newest first, the ones to show
    hidden: int  # how many were left out (SessionInfo.hidden)


def _safe_settings(config: Config) -> dict[str, Any]:
    """The settings worth keeping with a transcript; header values can carry credentials, so only names,
    and a URL's password and query values are scrubbed."""
    from coder.redact import scrub_url

    return {
        "model": config.model, "base_url": scrub_url(config.base_url), "reasoning_effort": config.reasoning_effort,
        "store": config.store, "sandbox": config.sandbox, "approval": config.approval, "network": config.network,
        "extra_headers": sorted(config.extra_headers), "extra_body": sorted(config.extra_body),
    }


class RecordingError(Exception):
    """A session that cannot be recorded at all (its folder or transcript cannot be made); one line."""


class Session:
    """One recorded conversation: the agent, its transcript, its checkpoints."""

    def __init__(self, agent: Agent, directory: Path, transcript: Transcript, info: SessionInfo,
                 auto_commit: bool = False) -> None:
        self.agent = agent
        self.directory = directory
        self.transcript = transcript
        self.info = info
        self.auto_commit = auto_commit
        self.checkpoints: Checkpoints | None = None
        self.warnings: list[str] = []
        try:
            self.checkpoints = Checkpoints(agent.workspace, info.id, directory, exclude=agent.policy.deny_read,
                                           record=self.transcript.write,
                                           others=lambda: others_here(info.id, agent.workspace),
                                           scope=lambda: agent.policy.writable_files)
        except CheckpointError as e:
            self.warnings.append(f"undo is not available in this session: {e}")
        self._later: list[str] = []  # notices from inside a tool call, shown when the turn ends
        self._checkpointing = False  # whether the running turn is being recorded for undo
        self._told_failure = False  # a failure to record has been put to the front end
        self._changed: list[str] = []  # what the last turn's checkpoint found changed (commands included)
        agent.session_id = info.id
        self._listen(agent.conversation)
        agent.tool_ctx.on_warning = self._warn
        agent.tool_ctx.recorder = self

    def _listen(self, conversation: Conversation) -> None:
        conversation.on_append = self._record_item
        conversation.on_rewrite = self._record_rewrite

    def _warn(self, message: str) -> None:
        """Something the user must hear of, from inside a tool call: shown when the turn ends."""
        self._later.append(message)

    # The tools tell the session what they are about to change (coder.tools.base.Recorder); a checkpoint
    # problem is said when the turn ends, and never stops the tool.
    def before_write(self, path: Path, content: bytes | None = None) -> None:
        self._checkpoint("before_write", path, content)

    def after_write(self, path: Path) -> None:
        self._checkpoint("after_write", path)

    def before_command(self) -> None:
        self._checkpoint("before_command")

    def after_command(self) -> None:
        self._checkpoint("after_command")

    def _checkpoint(self, what: str, *args: Any) -> None:
        if not self._checkpointing:
            return
        try:
            getattr(self.checkpoints, what)(*args)
        except CheckpointError as e:
            self._later.append(f"undo may not cover this turn fully: {e}")

    @property
    def id(self) -> str:
        return self.info.id

    # --- creating and finding ---
    @classmethod
    def create(cls, agent: Agent, auto_commit: bool = False, recorded: bool = True) -> "Session":
        """A new session; raises RecordingError (one line) when it cannot be recorded, unless `recorded`
        is False (the user chose to go on without a transcript)."""
        sid = new_id()
        directory = sessions_dir() / sid
        try:
            if recorded:
                directory.mkdir(parents=True, mode=0o700)
            transcript = Transcript(directory / TRANSCRIPT if recorded else None, secrets=secret_values(agent.config))
        except OSError as e:
            raise RecordingError(f"cannot record the session in {e.filename or directory}: {e.strerror}") from None
        now = time.time()
        transcript.write({
            "type": "header", "version": 1, "id": sid, "started": now, "project": str(agent.workspace),
            "model": agent.config.model, "settings": _safe_settings(agent.config), "instructions": agent.instructions,
            # A batch's file scope: kept on resume, so `coder resume ID` of a target writes only its target.
            **({"writable_files": [str(f) for f in agent.scope]} if agent.scope else {}),
        })
        info = SessionInfo(sid, directory, now, now, str(agent.workspace), agent.config.model, "", 0, 0)
        session = cls(agent, directory, transcript, info, auto_commit)
        session._write_meta()
        if transcript.failure:
            raise RecordingError(transcript.failure)
        if session.checkpoints is not None and agent.policy.mode is not Mode.READ_ONLY:
            try:
                session.checkpoints.prune()  # other sessions' checkpoints older than two weeks
            except CheckpointError:
                pass
        return session

    @classmethod
    def resume(cls, config: Config, directory: Path, *, model_given: bool = False, sandbox_given: bool = False,
               auto_commit: bool = False) -> "Session":
        """Reopen a session with its whole history; calls a crash left open are answered first."""
        loaded = load(directory / TRANSCRIPT)
        header = loaded.header
        workspace = Path(header["project"])
        if not workspace.is_dir():
            raise TranscriptError(f"the session's project {workspace} no longer exists")
        latest = {**header.get("settings", {}), **header, **(loaded.of_type("settings") or [{}])[-1]}
        if not model_given:
            config = config.with_overrides(model=latest.get("model") or config.model)
        if not sandbox_given and latest.get("sandbox") not in (None, "full-access"):
            config = config.with_overrides(sandbox=latest["sandbox"])  # full access is never resumed silently
        # The recorded instructions are sent as they were (the provider's cached prefix stays valid); a
        # different sandbox is told in a message appended to the conversation.
        same = config.sandbox == latest.get("sandbox", config.sandbox)
        conversation = Conversation(loaded.items())
        scope = header.get("writable_files")
        agent = Agent(config, workspace, conversation=conversation,
                      instructions=latest.get("instructions") if same or conversation.items else None,
                      writable_files=[Path(f) for f in scope] if isinstance(scope, list) and scope else None)
        if conversation.items and not same:
            agent.described_mode = Mode.parse(latest["sandbox"])
        try:
            transcript = Transcript(directory / TRANSCRIPT, secrets=secret_values(config))
        except OSError as e:
            raise RecordingError(f"cannot record the session in {directory}: {e.strerror}") from None
        info = _info_from(directory, loaded)
        session = cls(agent, directory, transcript, info, auto_commit)
        session.warnings[:0] = loaded.warnings
        conversation.close_open_calls(INTERRUPTED)  # recorded: the history is valid again
        if not same and conversation.items:
            conversation.add_message(developer_message(sandbox_note(agent.policy)))
            session.settings_changed()
        if session.checkpoints is not None:
            try:
                session.warnings += _replay(session.checkpoints, loaded)
            except CheckpointError as e:
                session.warnings.append(f"earlier turns cannot be undone: {e}")
        return session

    # --- running ---
    def run(self, prompt: str | None, images: Sequence[str | os.PathLike[str]] = ()) -> Iterator[Event]:
        """Agent.run (with its images), with a checkpoint around the turn and everything written down."""
        text = (prompt or "").strip()
        if text and not self.info.first_prompt:
            self.info.first_prompt = text.splitlines()[0][:200]
        label = turn_label(text) if text else "follow-up"
        self._running(True)
        # A read-only session changes nothing, so it writes nothing into the user's repository either.
        self._checkpointing = self.checkpoints is not None and self.agent.policy.mode is not Mode.READ_ONLY
        if self._checkpointing:
            try:
                self.checkpoints.begin_turn(label)
            except CheckpointError as e:
                yield self._recorded(Notice(f"no checkpoint for this turn: {e}"))
        done: TurnDone | None = None
        events = self.agent.run(prompt, images)
        try:
            for event in events:
                if isinstance(event, TurnDone):
                    done = event  # held back until the checkpoint is taken: "done" then means done
                    continue
                if not isinstance(event, _SKIPPED):
                    self._record_event(event)
                yield event
                if self.transcript.failure and not self._told_failure:
                    self._told_failure = True
                    question = RecordingFailed(self.transcript.failure)
                    yield question
                    if not question.going_on:
                        yield Error(f"{self.transcript.failure}; stopped here (your files are as the agent left "
                                    "them; coder resume continues from the last thing recorded)")
                        done = TurnDone(status="failed", final_text="", usage=Usage())
                        break
        finally:
            events.close()  # an interrupted turn still answers its calls, and is still undoable
            self._changed = []
            after = [self._recorded(Notice(m)) for m in self._end_turn(label)]
            if done is not None:
                done.files_changed = sorted(set(done.files_changed) | set(self._changed))
                self.info.turns += 1
                self.info.tokens += done.usage.total_tokens  # as _info_from counts them, resumed or not
                self._record_event(done)
            self._running(False, turn_status(done.status) if done is not None else "interrupted")
            self.transcript.sync()
            self._write_meta()
        yield from after
        if done is not None:
            yield done

    def run_task(self, prompt: str, images: Sequence[str | os.PathLike[str]] = (), *,
                 output_schema: dict[str, Any] | None = None,
                 on_event: Callable[[Event], None] | None = None) -> "Result":
        """Agent.run_task, recorded: the Result's files_changed then includes what commands changed."""
        from coder.tasks import collect

        with self.agent.schema_for_task(output_schema):
            return collect(self.run(prompt, images), self.id, on_event)

    def _running(self, running: bool, status: str = "") -> None:
        """The session's status in meta.json: "running" with this process's id while a turn runs (so a
        listing can tell a live turn from one a kill -9 cut off), else how the last turn ended."""
        from coder.checkpoints import _start_time

        pid = os.getpid() if running else 0
        self.info.status = "running" if running else status
        self.info.pid, self.info.pid_started = pid, _start_time(pid) if pid else ""
        if running:
            self._write_meta()

    def _end_turn(self, label: str) -> list[str]:
        later, self._later = self._later, []
        return later + self._checkpoint_after(label)

    def _checkpoint_after(self, label: str) -> list[str]:
        if not self._checkpointing:
            return []
        try:
            changed = self.checkpoints.end_turn()
        except CheckpointError as e:
            return [f"checkpoint after the turn failed: {e}"]
        self._changed = list(changed)
        if not changed:
            return []
        if not self.auto_commit or not self.checkpoints.in_git:
            return []
        mode, backend = self.agent.policy.mode, self.agent.tool_ctx.backend
        if mode is not Mode.FULL_ACCESS and not backend.isolates:
            return ["auto-commit skipped: there is no sandbox here to run the commit hooks in; commit yourself"]
        try:
            sha = self.checkpoints.auto_commit(
                f"coder: {label}", None if mode is Mode.FULL_ACCESS else self._run_in_sandbox)
        except CheckpointError as e:
            return [f"auto-commit failed: {e}"]
        return [f"committed {len(changed)} file(s) as {sha[:10]}"] if sha else []

    def _run_in_sandbox(self, argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
        """The auto-commit's `git commit`, hooks included, under the session's sandbox.

        The turn's changes could have planted what a hook runs (.husky/, .pre-commit-config.yaml),
        so hooks get no more than the model's own commands: the repository's .git becomes
        writable for the commit, but its hooks and config stay read-only.
        """
        import shlex

        from sandbox import backends, placeholders, process

        policy, backend = self.agent.policy, self.agent.tool_ctx.backend
        git_dir = self.checkpoints.git_dir
        commit_policy = replace(
            policy, writable_roots=(*policy.writable_roots, git_dir),
            protected_names=tuple(n for n in policy.protected_names if n != ".git"),
            protected_paths=(*policy.protected_paths, git_dir / "hooks", git_dir / "config", git_dir / "modules",
                             git_dir / "info"),
        )
        try:
            guard = placeholders.hold(backends.guarded_paths(backend, commit_policy),
                                      self.agent.tool_ctx.placeholder_registry)
        except placeholders.Unavailable as e:
            return 1, f"the commit was not run: {e.strerror}"
        try:
            result = process.run(shlex.join(argv), cwd=cwd, env={**self.agent.tool_ctx.env, **env}, timeout=300,
                                 wrap=lambda a: backends.wrap(backend, commit_policy, a, policy.limits))
        finally:
            problems = placeholders.release(guard)
        output = "\n".join([result.output, *problems])
        return (1 if result.exit_code is None else result.exit_code), output

    def tidy(self) -> None:
        """Remove, on a side thread, the temp files a coder killed mid-write left in the workspace."""
        if self.agent.policy.mode is Mode.READ_ONLY:
            return

        def run() -> None:
            from sandbox.paths import remove_stale_temp_files

            try:
                removed = remove_stale_temp_files(self.agent.workspace)
            except OSError:
                return
            if removed:
                names = ", ".join(str(p.relative_to(self.agent.workspace)) for p in removed[:3])
                self._warn(f"removed {len(removed)} temp file(s) an interrupted write had left: {names}"
                           + (", ..." if len(removed) > 3 else ""))

        threading.Thread(target=run, name="coder-tidy", daemon=True).start()

    def compact(self, focus: str | None = None) -> Iterator[Event]:
        """Compact the conversation now, between turns (/compact), recorded like a turn's events.

        Call it on the thread that can be interrupted from now on: a cancel after this call stops it."""
        return self._compaction(self.agent.compact(focus or None))

    def _compaction(self, events: Iterator[Event]) -> Iterator[Event]:
        if not self.agent.conversation.items:
            yield Notice("nothing to compact yet")
            return
        try:
            for event in events:
                if not isinstance(event, _SKIPPED):
                    self._record_event(event)
                yield event
        except KeyboardInterrupt:
            yield self._recorded(Error("interrupted: the conversation was not compacted"))
        finally:
            events.close()
            self.transcript.sync()

    def settings_changed(self) -> None:
        """Record the model, sandbox and instructions now in force (after /model or /sandbox), for resume."""
        agent = self.agent
        self.transcript.write({"type": "settings", "model": agent.config.model, "sandbox": agent.policy.mode.value,
                               "instructions": agent.instructions})

    def undo(self, force: bool = False) -> UndoResult:
        """Undo the last turn that changed files, and tell the model, so it does not build on edits that are gone."""
        if self.checkpoints is None:
            raise CheckpointError("undo is not available in this session")
        result = self.checkpoints.undo(force)
        if not result.refused:
            self.agent.conversation.add_user(undo_note(result))
        self.transcript.sync()
        return result

    def diff(self) -> str:
        if self.checkpoints is None:
            raise CheckpointError("diff is not available in this session")
        return self.checkpoints.diff()

    def detach(self) -> None:
        """Close the transcript; the agent goes on (into a new session, after /clear)."""
        self._write_meta()
        self.transcript.close()
        self.agent.conversation.on_append = self.agent.conversation.on_rewrite = None

    def close(self) -> None:
        self.detach()
        self.agent.close()

    # --- the transcript ---
    def _record_item(self, item: dict[str, Any], encoded: str) -> None:
        self.transcript.write_item(encoded)
        if _from_model(item):
            self.info.outputs += 1

    def _record_rewrite(self, kind: str, record: dict[str, Any]) -> None:
        self.transcript.write({"type": kind, **record})
        self.transcript.sync()

    def _record_event(self, event: Event) -> None:
        self.transcript.write({"type": "event", "event": event.to_dict()})

    def _recorded(self, event: Event) -> Event:
        self._record_event(event)
        return event

    def _write_meta(self) -> None:
        if self.transcript.path is None:
            return  # unrecorded
        self.info.updated = time.time()
        tmp = self.directory / f".{META}.tmp"
        try:
            tmp.write_text(json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.info).items()}))
            os.replace(tmp, self.directory / META)
        except OSError as e:
            self.transcript._failed(e)


def secret_values(config: Config) -> list[str]:
    """What the transcript must never hold: the API key and every sealed secret."""
    from coder import credentials

    return [credentials.get(config.api_key_env), *credentials.values()]


def _from_model(item: dict[str, Any]) -> bool:
    """An item the model sent (a message, a call, reasoning, a compaction), not one coder or the user added."""
    kind = item.get("type")
    if kind == "message":
        return item.get("role") == "assistant"
    return kind not in ("function_call_output", None)


def _transcript_status(records: list[dict[str, Any]], turns: list[dict[str, Any]]) -> str:
    """How the last turn ended; a turn that started (its first request) after the last end is running if
    the process recording it is alive, else it was cut off (kill -9, a crash)."""
    from coder.checkpoints import running_turn

    last_done = max((n for n, r in enumerate(records) if r.get("type") == "event"
                     and r["event"].get("type") == "turn.done"), default=-1)
    started = any(r.get("type") == "turn" or r.get("type") == "event" and r["event"].get("type") == "request.started"
                  for r in records[last_done + 1:])
    if started:
        return "running" if running_turn(records) else "interrupted"
    return turn_status(turns[-1].get("status", "")) if turns else "empty"


def _info_from(directory: Path, loaded: Loaded) -> SessionInfo:
    header = loaded.header
    first = next((i["content"][0]["text"] for i in loaded.items()
                  if i.get("type") == "message" and i.get("role") == "user" and i.get("content")), "")
    done = [r["event"] for r in loaded.of_type("event") if r["event"].get("type") == "turn.done"]
    tokens = sum(int((d.get("usage") or {}).get("total_tokens") or 0) for d in done)
    outputs = sum(1 for r in loaded.of_type("item") if isinstance(r.get("item"), dict) and _from_model(r["item"]))
    mtime = (directory / TRANSCRIPT).stat().st_mtime
    return SessionInfo(header["id"], directory, float(header.get("started") or mtime), mtime, header.get("project", ""),
                       header.get("model", ""), first.strip().splitlines()[0][:200] if first.strip() else "",
                       len(done), tokens, _transcript_status(loaded.records, done), outputs)


def _alive(pid: int, started: str) -> bool:
    from coder.checkpoints import _start_time

    if started:
        return _start_time(pid) == started
    try:  # no /proc to tell a reused pid apart (macOS): the pid's existence will do
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def read_info(directory: Path) -> SessionInfo | None:
    """A session's summary: meta.json, or the transcript itself when the meta is missing, broken, or from
    a coder that kept no status there."""
    try:
        data = json.loads((directory / META).read_text())
        if isinstance(data, dict) and "status" in data:
            data["directory"] = directory
            info = SessionInfo(**data)
            if info.status == "running" and not (info.pid > 0 and _alive(info.pid, info.pid_started)):
                info.status = "interrupted"  # its process is gone mid-turn
            return info
    except (OSError, ValueError, TypeError):
        pass
    try:
        return _info_from(directory, load(directory / TRANSCRIPT))
    except (TranscriptError, KeyError, OSError):
        return None


def list_sessions(project: Path | None = None) -> list[SessionInfo]:
    """Every session, newest first, each with its status; only `project`'s when given."""
    root = sessions_dir()
    if not root.is_dir():
        return []
    found = [read_info(d) for d in root.iterdir() if d.is_dir()]
    infos = [i for i in found if i is not None and (project is None or i.project == str(project))]
    return sorted(infos, key=lambda i: i.updated, reverse=True)


def listing(project: Path | None = None, *, show_all: bool = False, limit: int | None = None,
            exclude: str | None = None) -> Listing:
    """The sessions worth offering (for `coder sessions` and /resume), newest first, each with its status.

    `project`: only that workspace's (None: every project's). Runs that failed before the model said
    anything, and sessions never given a task, are left out and counted unless `show_all`. `exclude`: a
    session id to leave out silently (the one already open). `limit`: at most that many."""
    shown, hidden = [], 0
    for info in list_sessions(project):
        if info.id == exclude:
            continue
        if info.hidden and not show_all:
            hidden += 1
        elif limit is None or len(shown) < limit:
            shown.append(info)
    return Listing(shown, hidden)


def find(session_id: str | None, project: Path) -> Path:
    """The directory of session `session_id` (a unique prefix will do), or of the project's latest: the
    first `coder sessions` lists (a later run that failed before any reply does not shadow it)."""
    if session_id is None:
        recent = listing(project, limit=1).sessions or list_sessions(project)
        if not recent:
            raise TranscriptError(f"no sessions yet for {project}; start one with: coder")
        return recent[0].directory
    root = sessions_dir()
    exact = root / session_id
    if (exact / TRANSCRIPT).exists():
        return exact
    matches = [d for d in root.iterdir() if d.name.startswith(session_id)] if root.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise TranscriptError(f"no session {session_id!r}; coder sessions lists them")
    raise TranscriptError(f"{session_id!r} matches {len(matches)} sessions; give more of the id")


def open_session(config: Config, workspace: Path, *, resume: str | None = None, last: bool = False,
                 model_given: bool = False, sandbox_given: bool = False, auto_commit: bool = False,
                 recorded: bool = True) -> Session:
    """A new session in `workspace`, or (`resume` an id, or `last`) an earlier one reopened."""
    if resume is None and not last:
        session = Session.create(Agent(config, workspace), auto_commit=auto_commit, recorded=recorded)
    else:
        directory = find(resume, Path(os.path.realpath(workspace)))
        session = Session.resume(config, directory, model_given=model_given, sandbox_given=sandbox_given,
                                 auto_commit=auto_commit)
    session.tidy()
    return session


def _replay(checkpoints: Checkpoints, loaded: Loaded) -> list[str]:
    conversation = ("item", "event", "settings", "compaction", "shrink")
    return checkpoints.replay([r for r in loaded.records if r.get("type") not in conversation])


def others_here(session_id: str, project: Path) -> "Others":
    """What this project's other sessions recorded (in this folder, above or below it): the files their
    turns wrote (absolute paths), and which of them is running a command right now."""
    from coder.checkpoints import Others, claims, running_command

    others = Others()
    for info in list_sessions():
        where = Path(info.project)
        if info.id == session_id or not (where == project or where in project.parents or project in where.parents):
            continue
        try:
            records = load(info.directory / TRANSCRIPT).records
        except TranscriptError:
            continue
        for path, entries in claims(info.id, where, records).items():
            others.claims.setdefault(path, []).extend(entries)
        if running_command(records):
            others.busy.append(info.id)
    return others


def turn_label(text: str, width: int = 72) -> str:
    """A turn's name for /undo and auto-commit messages: its first line, cut at a word with "…" when long."""
    line = " ".join(text.splitlines()[0].split())
    if len(line) <= width:
        return line
    cut = line[: width - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > width // 2 else cut).rstrip(" ,;:.-") + "…"


def undo_note(result: UndoResult) -> str:
    """What the model is told after an undo: its edits of that turn are gone."""
    text = (f"[coder] The user undid your turn '{result.label}'. These files are back as they were before "
            f"it: {', '.join(result.restored) or 'none'}.")
    if result.not_restored:
        text += " Not restored: " + "; ".join(f"{p} ({why})" for p, why in result.not_restored) + "."
    if result.commit:
        text += f" Its commit {result.commit[:10]} was {'removed' if result.commit_removed else 'kept'}."
    return text + " Do not assume the changes of that turn exist; read the files again before building on them."


def undo_session(directory: Path, exclude: tuple[Path, ...] = (), force: bool = False) -> UndoResult:
    """Undo the last turn of a session that is not open here (`coder undo`); `exclude`: the deny list."""
    from coder.checkpoints import running_turn

    loaded = load(directory / TRANSCRIPT)
    if running_turn(loaded.records):
        raise CheckpointError(f"session {loaded.header['id']} is still working on a turn; undo when it is done "
                              "(/undo in that session, or here afterwards)")
    transcript = Transcript(directory / TRANSCRIPT)
    try:
        project = Path(loaded.header["project"])
        checkpoints = Checkpoints(project, loaded.header["id"], directory, exclude=exclude, record=transcript.write,
                                  others=lambda: others_here(loaded.header["id"], project))
        _replay(checkpoints, loaded)
        result = checkpoints.undo(force)
        if not result.refused:  # the model hears of it when the session is resumed, after any open call's answer
            conversation = Conversation(loaded.items())
            for call in conversation.open_calls():
                transcript.write({"type": "item", "item": {"type": "function_call_output", "call_id": call["call_id"],
                                                           "output": INTERRUPTED}})
            transcript.write({"type": "item", "item": user_message(undo_note(result))})
    finally:
        transcript.close()
    return result
