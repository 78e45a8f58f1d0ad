"""Slash commands: the REPL's own controls, never sent to the model.

Each command is a function taking the REPL and the rest of the line; it
returns False only to end the session. Commands that change the conversation
or its settings wait until the agent is not working.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from coder.repl.app import Repl


@dataclass(frozen=True)
class Command:
    help: str
    run: Callable[["Repl", str], bool]
    idle_only: bool = False  # refused while a turn runs


def _help(repl: "Repl", arg: str) -> bool:
    table = Table.grid(padding=(0, 2))
    for name, cmd in COMMANDS.items():
        table.add_row(Text(name, style="cyan"), cmd.help)
    table.add_row(Text("!CMD", style="cyan"), "run a shell command yourself; its output is not sent to the model")
    table.add_row(Text("@path", style="cyan"), "complete a project file name (Tab completes any word)")
    repl.console.print(table)
    repl.console.print(Text(
        "Enter sends · Esc-Enter or Alt-Enter adds a line · Ctrl-X Ctrl-E opens $EDITOR · "
        "a message sent while the agent works is delivered after the running step · "
        "Ctrl-C stops the agent · Ctrl-D exits", style="dim"))
    return True


def _model(repl: "Repl", arg: str) -> bool:
    if not arg:
        repl.say(f"model: {repl.agent.config.model} (change it with /model NAME)")
        return True
    repl.agent.set_model(arg)
    repl.session.settings_changed()
    repl.say(f"model is now {arg}; the conversation goes on with it")
    return True


def _clear(repl: "Repl", arg: str) -> bool:
    repl.new_conversation()
    repl.say("new conversation: the model will not see the earlier messages")
    return True


def _tokens(repl: "Repl", arg: str) -> bool:
    u = repl.agent.usage
    lines = [
        f"input     {u.input_tokens:>12,}  (cached {u.cached_tokens:,})",
        f"output    {u.output_tokens:>12,}  (reasoning {u.reasoning_tokens:,})",
        f"context   {repl.status.context_tokens:>12,}  {repl.context_percent()}",
    ]
    if u.cost:
        lines.append(f"cost      {u.cost:>12.4f}  (as reported by the provider)")
    repl.say("\n".join(lines))
    return True


def _sandbox(repl: "Repl", arg: str) -> bool:
    from sandbox.policy import Mode

    if not arg:
        backend = repl.agent.tool_ctx.backend
        repl.say(f"sandbox: {repl.agent.policy.mode.value} · {backend.name}: {backend.detail}")
        return True
    try:
        mode = Mode.parse(arg)
    except ValueError as e:
        repl.error(str(e))
        return True
    repl.agent.set_sandbox(mode)
    repl.session.settings_changed()
    backend = repl.agent.tool_ctx.backend
    repl.say(f"sandbox is now {mode.value} ({backend.name})")
    if not backend.isolates and mode is not Mode.FULL_ACCESS:
        repl.warn_no_sandbox()
    return True


def _reasoning(repl: "Repl", arg: str) -> bool:
    show = {"on": True, "off": False}.get(arg, not repl.renderer.show_reasoning)
    repl.renderer.show_reasoning = show
    repl.say(f"reasoning summaries are {'shown' if show else 'hidden'}")
    return True


def _compact(repl: "Repl", arg: str) -> bool:
    repl.compact(arg)
    return True


def _exit(repl: "Repl", arg: str) -> bool:
    return False


def _undo(repl: "Repl", arg: str) -> bool:
    from coder.checkpoints import CheckpointError, undo_report
    from coder.repl.render import diff_text

    if arg.strip() not in ("", "--force"):
        repl.error("usage: /undo [--force]")
        return True
    try:
        result = repl.session.undo(force=arg.strip() == "--force")
    except CheckpointError as e:
        repl.error(str(e))
        return True
    if result.refused:
        repl.error(result.message.replace("--force", "/undo --force"))
        repl.console.print(diff_text(result.diff))
        return True
    repl.say("\n".join(undo_report(result)))
    return True


def _diff(repl: "Repl", arg: str) -> bool:
    from coder.checkpoints import CheckpointError
    from coder.repl.render import diff_text

    try:
        diff = repl.session.diff()
    except CheckpointError as e:
        repl.error(str(e))
        return True
    if not diff:
        repl.say("no file changes in this session yet")
    else:
        repl.console.print(diff_text(diff))
    return True


def _resume(repl: "Repl", arg: str) -> bool:
    from prompt_toolkit import prompt

    from coder.manage import ago
    from coder.sessions import Session, find, list_sessions
    from coder.transcript import TranscriptError

    try:
        if arg:
            directory = find(arg, repl.agent.workspace)
        else:
            others = [i for i in list_sessions(repl.agent.workspace) if i.id != repl.session.id][:9]
            if not others:
                repl.say("no other sessions for this project")
                return True
            for n, info in enumerate(others, 1):
                repl.say(f"  {n}. {ago(info.updated):>10}  {info.turns} turns  {info.first_prompt[:70] or '-'}")
            choice = prompt("  resume which (number, Enter to cancel): ").strip()
            if not choice.isdigit() or not 1 <= int(choice) <= len(others):
                return True
            directory = others[int(choice) - 1].directory
        session = Session.resume(repl.agent.config, directory, auto_commit=repl.session.auto_commit)
    except (TranscriptError, KeyboardInterrupt, EOFError) as e:
        if isinstance(e, TranscriptError):
            repl.error(str(e))
        return True
    repl.session.close()
    repl.switch(session)
    from coder.repl.render import show_history

    show_history(repl.console, session.agent.conversation.items)
    repl.say(f"resumed session {session.id}")
    return True


COMMANDS: dict[str, Command] = {
    "/help": Command("show the commands and keys", _help),
    "/model": Command("show or change the model: /model NAME", _model, idle_only=True),
    "/clear": Command("start a new conversation", _clear, idle_only=True),
    "/tokens": Command("tokens used and cost so far", _tokens),
    "/compact": Command("shrink the conversation to a summary now: /compact [what to keep in particular]", _compact,
                        idle_only=True),
    "/sandbox": Command("show or change the sandbox: /sandbox read-only|workspace-write|full-access", _sandbox,
                        idle_only=True),
    "/reasoning": Command("show or hide reasoning summaries: /reasoning on|off", _reasoning),
    "/diff": Command("what this session changed in your files", _diff, idle_only=True),
    "/undo": Command("put back the files the last turn changed (again: one more turn back)", _undo, idle_only=True),
    "/resume": Command("switch to an earlier session of this project: /resume [ID]", _resume, idle_only=True),
    "/exit": Command("leave (Ctrl-D does too)", _exit),
}


def run_command(repl: "Repl", line: str) -> bool:
    name, _, arg = line.strip().partition(" ")
    cmd = COMMANDS.get(name)
    if cmd is None:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]}?" if close else "; /help lists them"
        repl.error(f"unknown command {name}{hint}")
        return True
    if cmd.idle_only and repl.busy():
        repl.error(f"{name} has to wait until the agent is done (Ctrl-C stops it)")
        return True
    return cmd.run(repl, arg.strip())


def descriptions() -> dict[str, str]:
    return {name: cmd.help for name, cmd in COMMANDS.items()}
