"""The agent loop: request, replay, dispatch tool calls, repeat until the model is done.

`Agent.run(prompt)` is a generator of typed events (coder.events). Front ends
iterate it and render; the loop itself knows nothing about terminals. Closing
the generator or a KeyboardInterrupt ends the run with every open call
answered, so the conversation is always valid for the next message.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generator

from coder import dirs
from coder.approvals import Approvals, sandbox_denial
from coder.client import Failure, ResponsesClient
from coder.config import Config, ConfigError
from coder.conversation import Conversation
from coder.events import (
    ApprovalRequest,
    Error,
    Event,
    FollowUpDelivered,
    MessageDone,
    ReasoningDelta,
    RequestStarted,
    Retrying,
    RunStarted,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnDone,
    Usage,
    UsageReport,
)
from coder.instructions import build_instructions, environment_context
from coder.tools import TOOLS, ToolResult, call_tool, parse_arguments, schemas
from coder.tools.base import ToolContext
from sandbox.backends import Backend
from sandbox.policy import Mode, Policy, default_deny_read, make_private_temp_dir

INTERRUPTED = "Interrupted by the user before this call finished; it may not have run."
RETRYABLE_STREAM_ERRORS = ("rate_limit", "server_error", "overloaded", "timeout", "unavailable")
POLL_INTERVAL = (0.25, 2.0)  # background mode: first and largest wait between polls


class StreamFault(Exception):
    """The stream ended badly (no final event, or an `error` event)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass
class ResponseResult:
    status: str = "completed"
    output: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    response_id: str | None = None


def _message_text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts = content or []
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict) and p.get("type") == "output_text")


class Agent:
    def __init__(
        self,
        config: Config,
        workspace: Path | str,
        *,
        policy: Policy | None = None,
        client: ResponsesClient | None = None,
        conversation: Conversation | None = None,
        instructions: str | None = None,
    ) -> None:
        self.config = config
        self.workspace = Path(os.path.realpath(workspace))
        if config.tool_choice not in ("auto", "required", "none") and config.tool_choice not in TOOLS:
            raise ConfigError(
                f"tool_choice must be auto, required, none or a tool name ({', '.join(TOOLS)}), "
                f"got {config.tool_choice!r}"
            )
        if config.background and config.zdr:
            raise ConfigError(
                "background mode needs store=true, which Zero Data Retention forbids "
                f"(set store = true; codex models like {config.model} are always ZDR)"
            )
        self._owned_temp: Path | None = None
        if policy is None:
            self._owned_temp = make_private_temp_dir()
            policy = Policy.for_workspace(
                self.workspace, Mode.parse(config.sandbox), network=config.network, temp_dir=self._owned_temp,
                deny_read=deny_list(config, self.workspace),
                limits=config.sandbox_limits(),
            )
        self.policy = policy
        self.client = client or ResponsesClient(config)
        self.conversation = conversation or Conversation()
        self.instructions = instructions if instructions is not None else build_instructions(policy)
        self.tools = schemas()
        self.approvals = Approvals(config.approval or "never")
        self.usage = Usage()
        self.cancel_event = threading.Event()
        self.tool_ctx = ToolContext(
            policy=policy,
            env=self._child_env(),
            cancel=self.cancel_event,
            default_timeout=config.command_timeout,
            registry=dirs.state_dir() / "placeholders",
            backend_choice=config.sandbox_backend,
        )

    def _child_env(self) -> dict[str, str]:
        from coder import credentials

        env = credentials.child_environment(self.config.api_key_env, self.config.env_passthrough)
        if self.policy.temp_dir:
            env["TMPDIR"] = str(self.policy.temp_dir)
        return env

    # --- controls usable from another thread (a front end's UI thread) ---
    def queue(self, text: str) -> None:
        """A follow-up for the model, delivered after the running calls' outputs."""
        self.conversation.queue(text)

    def cancel(self) -> None:
        """Stop the current run: running commands are killed, a response being streamed is dropped."""
        self.cancel_event.set()
        self.client.abort()

    # --- settings a front end may change between turns ---
    def set_model(self, model: str) -> None:
        self.config = replace(self.config, model=model)
        self.client.config = self.config

    def set_sandbox(self, mode: Mode) -> None:
        """Switch the sandbox mode; the backend is chosen again and the instructions follow."""
        p = self.policy
        self.policy = Policy.for_workspace(
            p.workspace, mode, network=self.config.network, temp_dir=p.temp_dir, deny_read=p.deny_read,
            limits=p.limits,
        )
        self.tool_ctx = replace(self.tool_ctx, policy=self.policy, backend=None)
        self.instructions = build_instructions(self.policy)

    def reset(self) -> None:
        """Start a new conversation (same settings)."""
        self.conversation = Conversation()
        self.usage = Usage()

    def close(self) -> None:
        if self._owned_temp is not None:
            shutil.rmtree(self._owned_temp, ignore_errors=True)
            self._owned_temp = None

    def started_event(self) -> RunStarted:
        return RunStarted(
            model=self.config.model,
            workspace=str(self.workspace),
            sandbox={
                "mode": self.policy.mode.value,
                "backend": self.tool_ctx.backend.name,
                "detail": self.tool_ctx.backend.detail,
                "network": self.policy.network,
            },
            store=not self.config.zdr,
        )

    # --- the loop ---
    def run(self, prompt: str | None) -> Iterator[Event]:
        self.cancel_event.clear()
        self.conversation.close_open_calls(INTERRUPTED)  # a resumed, cut-off turn
        if prompt:
            # The first message of a conversation also says where and when it is.
            context = environment_context(self.policy) if not self.conversation.items else None
            self.conversation.add_user(prompt, context)
        for text in self.conversation.deliver_queued():  # follow-ups that came after the last request
            yield FollowUpDelivered(text)
        run_usage = Usage()
        final_text, status = "", "completed"
        try:
            for turn in range(1, self.config.max_turns + 1):
                yield RequestStarted(turn)
                result = yield from self._request()
                if result.status == "failed":
                    yield Error(result.error or "the response failed")
                    status = "failed"
                    break
                self.conversation.add_output(result.output)
                run_usage.add(result.usage)
                self.usage.add(result.usage)
                yield UsageReport(request=result.usage, total=replace(self.usage))
                for item in result.output:
                    if item.get("type") == "message" and item.get("role", "assistant") == "assistant":
                        final_text = _message_text(item)
                        yield MessageDone(final_text)
                calls = [i for i in result.output if i.get("type") == "function_call"]
                if result.status != "completed":
                    self.conversation.close_open_calls(f"Not run: the response ended with status {result.status}.")
                    yield Error(result.error or f"the response ended with status {result.status}")
                    status = result.status
                    break
                if calls:
                    final_text = ""
                    yield from self._run_calls(calls)
                delivered = self.conversation.deliver_queued()
                for text in delivered:
                    yield FollowUpDelivered(text)
                if not calls and not delivered:
                    break
            else:
                yield Error(f"stopped after {self.config.max_turns} model requests (max_turns)")
                status = "max_turns"
        except KeyboardInterrupt:
            status = "interrupted"
            yield Error("interrupted")
        finally:
            self.cancel_event.set()  # stops any command still running in a worker
            self.conversation.close_open_calls(INTERRUPTED)
        yield TurnDone(status=status, final_text=final_text, usage=run_usage)

    def _check_cancel(self) -> None:
        if self.cancel_event.is_set():
            raise KeyboardInterrupt

    def _sleep(self, seconds: float) -> None:
        if self.cancel_event.wait(seconds):
            raise KeyboardInterrupt

    def _request(self) -> Generator[Event, None, ResponseResult]:
        body = self.client.request_body(
            self.conversation.items, self.tools, self.instructions, background=self.config.background
        )
        attempt = 0
        while True:
            self._check_cancel()
            try:
                if self.config.background:
                    return (yield from self._background(body))
                return (yield from self._stream_once(body))
            except (KeyboardInterrupt, ConfigError):
                raise
            except Exception as exc:
                self._check_cancel()  # the stream was closed under us on purpose
                failure = exc.failure if isinstance(exc, StreamFault) else self.client.classify(exc)
            attempt += 1
            if not failure.retryable or attempt > self.config.max_retries:
                return ResponseResult(status="failed", error=failure.message)
            delay = failure.retry_after
            if delay is None:
                delay = min(20.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
            yield Retrying(attempt=attempt, delay=round(delay, 2), reason=failure.message)
            self._sleep(delay)

    def _stream_once(self, body: dict[str, Any]) -> Generator[Event, None, ResponseResult]:
        done_items: list[dict[str, Any]] = []
        final: dict[str, Any] | None = None
        events = self.client.stream(body)
        try:
            for ev in events:
                self._check_cancel()
                kind = ev.get("type")
                if kind == "response.output_text.delta":
                    yield TextDelta(ev.get("delta", ""))
                elif kind == "response.reasoning_summary_text.delta":
                    yield ReasoningDelta(ev.get("delta", ""))
                elif kind == "response.output_item.done":
                    done_items.append(ev["item"])
                elif kind in ("response.completed", "response.incomplete", "response.failed"):
                    final = ev.get("response") or {}
                    break
                elif kind == "error":
                    code = str(ev.get("code") or (ev.get("error") or {}).get("code") or "")
                    msg = ev.get("message") or (ev.get("error") or {}).get("message") or "unknown error"
                    retryable = any(s in code for s in RETRYABLE_STREAM_ERRORS)
                    raise StreamFault(Failure(f"stream error {code}: {msg}".replace("  ", " "), retryable))
        finally:
            events.close()
        if final is None:
            raise StreamFault(Failure("the stream ended before response.completed", True))
        return self._result(final, done_items)

    def _result(self, response: dict[str, Any], done_items: list[dict[str, Any]]) -> ResponseResult:
        status = response.get("status") or "completed"
        output = response.get("output") or done_items
        error = None
        if status == "failed":
            err = response.get("error") or {}
            error = f"the response failed: {err.get('code', '')} {err.get('message', '')}".strip()
        elif status == "incomplete":
            reason = (response.get("incomplete_details") or {}).get("reason", "unknown reason")
            error = f"the response is incomplete: {reason}"
        result = ResponseResult(status, list(output), Usage.from_response(response.get("usage")), None, response.get("id"))
        if status == "failed":
            result.output, result.error = [], error
        elif status != "completed":
            result.error = error
        return result

    def _background(self, body: dict[str, Any]) -> Generator[Event, None, ResponseResult]:
        response = self.client.create_background(body)
        rid = response.get("id")
        wait, failures = POLL_INTERVAL[0], 0
        try:
            while response.get("status") in ("queued", "in_progress"):
                self._sleep(wait)
                wait = min(POLL_INTERVAL[1], wait * 1.5)
                try:
                    response = self.client.retrieve(rid)
                    failures = 0
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    failure = self.client.classify(exc)
                    failures += 1
                    if not failure.retryable or failures > self.config.max_retries:
                        raise
                    yield Retrying(attempt=failures, delay=wait, reason=failure.message)
        except KeyboardInterrupt:
            try:
                self.client.cancel(rid)
            except Exception:
                pass
            raise
        if response.get("status") == "cancelled":
            return ResponseResult(status="failed", error="the background response was cancelled")
        return self._result(response, [])

    def _run_calls(self, calls: list[dict[str, Any]]) -> Iterator[Event]:
        """Run calls in order; consecutive read-only calls run concurrently."""
        batches: list[list[dict[str, Any]]] = []
        for call in calls:
            tool = TOOLS.get(call.get("name", ""))
            parallel = tool is not None and tool.read_only
            if parallel and batches and batches[-1][0].get("_parallel"):
                batches[-1].append({**call, "_parallel": True})
            else:
                batches.append([{**call, "_parallel": parallel}])
        for batch in batches:
            self._check_cancel()
            for call in batch:
                yield ToolCallStarted(call["call_id"], call.get("name", ""), call.get("arguments", ""), _summary(call))
            if len(batch) == 1 and batch[0].get("name") == "run_command" and self.approvals.policy != "never":
                results = [(yield from self._run_with_approval(batch[0]))]
            elif len(batch) == 1:
                results = [self._execute(batch[0])]
            else:
                with ThreadPoolExecutor(max_workers=min(8, len(batch))) as pool:
                    results = list(pool.map(self._execute, batch))
            for call, (result, duration) in zip(batch, results):
                self.conversation.add_call_output(call["call_id"], result.output)
                yield ToolCallFinished(call["call_id"], call.get("name", ""), result.ok, result.output, duration, result.diff)

    def _execute(self, call: dict[str, Any], ctx: ToolContext | None = None) -> tuple[ToolResult, float]:
        start = time.monotonic()
        result = call_tool(ctx or self.tool_ctx, call.get("name", ""), call.get("arguments", ""))
        return result, round(time.monotonic() - start, 3)

    def _unsandboxed(self) -> ToolContext:
        policy = replace(self.policy, mode=Mode.FULL_ACCESS)
        return replace(self.tool_ctx, policy=policy, backend=Backend("unsandboxed", "approved by the user"))

    def _ask(self, call: dict[str, Any], command: str, reason: str, escalate: bool) -> Generator[Event, None, ApprovalRequest]:
        request = ApprovalRequest(call["call_id"], command, reason, escalate=escalate)
        yield request
        if request.approved and request.always:
            self.approvals.trust(command)
        return request

    def _run_with_approval(self, call: dict[str, Any]) -> Generator[Event, None, tuple[ToolResult, float]]:
        """run_command under an approval policy.

        Asks first when the policy is `untrusted`, or for every command when this
        machine has no sandbox at all; under `on-request`, offers to re-run
        outside the sandbox a command the sandbox blocked.
        """
        command = _summary(call)
        approvals = self.approvals
        backend = self.tool_ctx.backend
        no_sandbox = not backend.isolates and self.policy.mode is not Mode.FULL_ACCESS
        if no_sandbox or approvals.ask_first(command):
            if not approvals.is_trusted(command):
                reason = (f"no sandbox is available here ({backend.detail}); it would run without isolation"
                          if no_sandbox else "not on the read-only allow list")
                request = yield from self._ask(call, command, reason, escalate=no_sandbox)
                if not request.approved:
                    return ToolResult(f"The user denied this command; it did not run.{_note(request)}", False), 0.0
            if no_sandbox:
                return self._execute(call, self._unsandboxed())
        if approvals.may_escalate() and backend.isolates and approvals.is_trusted(command):
            return self._execute(call, self._unsandboxed())
        result, duration = self._execute(call)
        denial = sandbox_denial(result.output) if result.ok and not result.output.startswith("Exit code: 0") else None
        if not (approvals.may_escalate() and backend.isolates and denial):
            return result, duration
        request = yield from self._ask(call, command, f"the sandbox blocked it: {denial}", escalate=True)
        if not request.approved:
            declined = f"{result.output}\nThe user declined to re-run this command outside the sandbox.{_note(request)}"
            return ToolResult(declined, result.ok), duration
        rerun, more = self._execute(call, self._unsandboxed())
        return ToolResult(f"Re-run outside the sandbox with the user's approval.\n{rerun.output}", rerun.ok, rerun.diff), duration + more


def _note(request: ApprovalRequest) -> str:
    return f" Their note: {request.note}" if request.note else ""


def deny_list(config: Config, workspace: Path) -> tuple[Path, ...]:
    """What nothing may read: the built-in list and the config's `deny_read` (~ is home, relative is the workspace)."""
    extra = (Path(p).expanduser() for p in config.deny_read)
    return (default_deny_read(Path.home()) + dirs.private()
            + tuple(p if p.is_absolute() else workspace / p for p in extra))


def _summary(call: dict[str, Any]) -> str:
    tool = TOOLS.get(call.get("name", ""))
    try:
        args = parse_arguments(call.get("arguments", ""))
    except ValueError:
        return ""
    if tool is None or not isinstance(args, dict):
        return ""
    value = args.get(tool.key_arg)
    return str(value) if value is not None else ""
