"""Slash commands: the REPL's own controls, never sent to the model.

Each command is a function taking the REPL and the rest of the line; it
returns False only to end the session. Commands that change the conversation
or its settings wait until the agent is not working.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
        table.add_row(Text(name, style="cyan"), Text(cmd.help))  # not markup: `[FOCUS]` is text
    table.add_row(Text("!CMD", style="cyan"), "run a shell command yourself; its output is not sent to the model")
    table.add_row(Text("@path", style="cyan"), "complete a project file name (Tab completes any word); "
                  "an image path (PNG, JPEG, GIF, WebP) or @shot.png is sent as an image")
    repl.console.print(table)
    repl.console.print(Text(
        "Enter sends · Esc-Enter or Alt-Enter adds a line · Ctrl-X Ctrl-E opens $EDITOR · "
        "a message sent while the agent works is delivered after the running step · "
        "Esc or Ctrl-C stops the agent · Ctrl-D exits", style="dim"))
    return True


def _model(repl: "Repl", arg: str) -> bool:
    if " " in arg or len(arg) > 200:
        repl.error("a model name has no spaces, e.g. /model gpt-5.4")
        return True
    if not arg:
        arg = _pick_model(repl)
        if not arg or arg == repl.agent.config.model:
            return True
    repl.agent.set_model(arg)
    repl.session.settings_changed()
    repl.say(f"model is now {arg}; the conversation goes on with it")
    return True


def _pick_model(repl: "Repl") -> str:
    """The models to choose from, numbered; a number or a name picks one, Enter keeps the current one."""
    from prompt_toolkit import prompt

    from coder.repl.models import choices

    current = repl.agent.config.model
    names, origin = choices(repl.agent.client, current)
    repl.say(f"model: {current} · pick another ({origin}), or type any name:")
    for n, name in enumerate(names, 1):
        repl.console.print(Text(f"  {n:>2}. {name}" + ("  (current)" if name == current else ""),
                                style="bold" if name == current else ""))
    try:
        answer = prompt("  model (number or name, Enter keeps it): ").strip()
    except (KeyboardInterrupt, EOFError):
        return ""
    if answer.isdigit():
        if not 1 <= int(answer) <= len(names):
            repl.error(f"no model {answer} in the list")
            return ""
        return names[int(answer) - 1]
    if answer and (" " in answer or len(answer) > 200):
        repl.error("a model name has no spaces")
        return ""
    return answer


def _clear(repl: "Repl", arg: str) -> bool:
    repl.new_conversation()
    repl.say("new conversation: the model will not see the earlier messages")
    return True


def _tokens(repl: "Repl", arg: str) -> bool:
    from coder import fmt

    u = repl.agent.usage
    width = max(len(fmt.tokens(n)) for n in (u.input_tokens, u.output_tokens, repl.status.context_tokens))
    lines = [
        f"input     {fmt.tokens(u.input_tokens):>{width}}  (cached {fmt.tokens(u.cached_tokens)})",
        f"output    {fmt.tokens(u.output_tokens):>{width}}  (reasoning {fmt.tokens(u.reasoning_tokens)})",
        f"context   {fmt.tokens(repl.status.context_tokens):>{width}}  {repl.context_percent()}",
        f"cost      {_cost_text(repl)}",
    ]
    repl.say("\n".join(lines))
    return True


def _cost_text(repl: "Repl") -> str:
    from coder import fmt

    status = repl.status
    missing = ", ".join(sorted(status.unpriced))
    if not missing:
        return f"{fmt.cost(status.cost)} (at list prices unless the provider reported a cost; [prices] overrides)"
    if status.cost:
        return f"at least {fmt.cost(status.cost)}; unknown for {missing} (add [prices.\"MODEL\"] to your config)"
    return f"unknown: no price for {missing} (add [prices.\"{missing.split(',')[0]}\"] input, cached_input, " \
           "output in USD per 1M tokens to your config)"


def _cost(repl: "Repl", arg: str) -> bool:
    from coder import fmt

    u = repl.agent.usage
    repl.say(f"this session: {_cost_text(repl)}\n"
             f"  {fmt.usage(u, None)}")
    return True


def _status(repl: "Repl", arg: str) -> bool:
    agent, session = repl.agent, repl.session
    config = agent.config
    backend = agent.tool_ctx.backend
    window = agent.window
    context = f"{repl.status.context_tokens:,} tokens" + (f" of {window:,} ({repl.status.context_tokens / window:.0%})"
                                                           if window else " (window unknown)")
    rows = [
        ("model", config.model + (f" · reasoning effort {config.reasoning_effort}"
                                  if config.reasoning_effort else "")),
        ("endpoint", _endpoint(config)),
        ("sandbox", f"{agent.policy.mode.value} · {backend.name}: {backend.detail}"
                    + (" · network on" if agent.policy.network else " · network off")),
        ("approvals", f"{agent.approvals.policy}" + (f" · always allowed: {', '.join(sorted(agent.approvals.trusted))}"
                                                     if agent.approvals.trusted else "")),
        ("context", context),
        ("usage", f"{agent.usage.total_tokens:,} tokens · {_cost_text(repl)}"),
        ("session", session.id if session.transcript.path else f"{session.id} (not recorded: no resume)"),
        *([("transcript", str(session.transcript.path))] if session.transcript.path else []),
        ("workspace", str(agent.workspace)),
        ("config files", ", ".join(str(p) for p in _config_files(repl)) or "none (built-in defaults)"),
    ]
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # a long path wraps whole rather than losing its end
    for name, value in rows:
        table.add_row(Text(name, style="cyan"), Text(value))
    repl.console.print(table)
    return True


def _endpoint(config: Any) -> str:
    from coder import config as settings
    from coder.redact import scrub_url

    if not config.base_url:
        return "https://api.openai.com/v1 (the default endpoint)"
    origin = getattr(settings, "base_url_origin", None)
    url = scrub_url(config.base_url)  # no password or query value on screen
    return f"{url} ({origin(config)})" if origin else url


def _config_files(repl: "Repl") -> list[object]:
    """The config files in force: those the settings came from, and the user's and project's if they exist."""
    from pathlib import Path

    from coder.dirs import config_dir

    found: list[Path] = []
    for source in (getattr(repl.agent.config, "sources", None) or {}).values():
        if getattr(source, "kind", "") in ("user", "project") and source.where:
            path = Path(source.where)
            if path not in found:
                found.append(path)
    for path in (config_dir() / "config.toml", repl.agent.workspace / ".coder" / "config.toml"):
        if path.is_file() and path not in found:
            found.append(path)
    return found


def _approvals(repl: "Repl", arg: str) -> bool:
    from coder.approvals import POLICIES

    explain = {"never": "nothing is asked; what the sandbox refuses stays refused",
               "on-request": "a command the sandbox blocked may be re-run outside it if you say yes",
               "untrusted": "every command that is not a plain read-only one needs your yes first"}
    if not arg:
        current = repl.agent.approvals.policy
        repl.say(f"approvals: {current} ({explain.get(current, '')})\n"
                 + "\n".join(f"  /approvals {p:<11} {explain[p]}" for p in POLICIES))
        return True
    if arg not in POLICIES:
        repl.error(f"approvals must be one of {', '.join(POLICIES)}, not {arg!r}")
        return True
    repl.agent.approvals.policy = arg  # commands allowed "always" stay allowed
    repl.say(f"approvals are now {arg} for this session: {explain[arg]}")
    return True


def _last(repl: "Repl", arg: str) -> bool:
    from coder.repl.toolcalls import full_output

    calls = list(repl.renderer.calls)
    if arg and not (arg.isdigit() and int(arg) >= 1):
        repl.error("usage: /last [N] (N: the Nth tool call from the end, 1 is the last)")
        return True
    number = int(arg or 1)
    if not calls:
        repl.say("no tool call yet in this conversation")
        return True
    if number > len(calls):
        repl.error(f"only {len(calls)} tool call(s) to show; /last {len(calls)} is the oldest")
        return True
    for part in full_output(calls[-number], number):
        repl.console.print(part)
    return True


def _init(repl: "Repl", arg: str) -> bool:
    from coder.instructions import AGENTS_FILE
    from coder.manage import INIT_PROMPT

    target = repl.agent.workspace / AGENTS_FILE
    if target.exists():
        repl.error(f"{target} already exists; edit it, or remove it to have a new one written")
        return True
    if repl.agent.policy.mode.value == "read-only":
        repl.error(f"the sandbox is read-only: the agent cannot write {AGENTS_FILE} "
                   "(/sandbox workspace-write, then /init)")
        return True
    repl.say(f"asking the agent to survey the project and write {AGENTS_FILE} (the instructions coder reads "
             "in every session here)")
    repl.send(INIT_PROMPT, images=[])
    return True


def _sandbox(repl: "Repl", arg: str) -> bool:
    from sandbox.policy import Mode

    if not arg:
        backend = repl.agent.tool_ctx.backend
        repl.say(f"sandbox: {repl.agent.policy.mode.value} · {backend.name}: {backend.detail}")
        return True
    from coder.config import ConfigError

    try:
        mode = Mode.parse(arg)
        repl.agent.set_sandbox(mode)
    except (ValueError, ConfigError) as e:  # a bad word, or a batch session's target that is gone
        repl.error(str(e))
        return True
    repl.session.settings_changed()
    backend = repl.agent.tool_ctx.backend
    repl.say(f"sandbox is now {mode.value} ({backend.name})")
    if not backend.isolates and mode is not Mode.FULL_ACCESS:
        repl.warn_no_sandbox()
    return True


def _reasoning(repl: "Repl", arg: str) -> bool:
    if arg not in ("", "on", "off"):
        repl.error("use /reasoning on, /reasoning off, or /reasoning to switch")
        return True
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


STATUS_STYLE = {"done": "green", "failed": "red", "interrupted": "yellow", "running": "cyan", "empty": "dim"}


def _resume(repl: "Repl", arg: str) -> bool:
    from prompt_toolkit import prompt

    from coder.manage import ago
    from coder.repl.toolcalls import clip
    from coder.sessions import Session, find, listing
    from coder.transcript import TranscriptError

    show_all = arg == "--all"
    try:
        if arg and not show_all:
            directory = find(arg, repl.agent.workspace)
        else:
            found = listing(repl.agent.workspace, show_all=show_all, limit=9, exclude=repl.session.id)
            others = found.sessions
            hidden = (f"{found.hidden} run(s) that failed before any reply, or were never used, not shown "
                      "(/resume --all shows them)") if found.hidden else ""
            if not others:
                repl.say("no other sessions for this project" + (f"; {hidden}" if hidden else ""))
                return True
            width = max(20, repl.console.width - 44)
            for n, info in enumerate(others, 1):
                status = getattr(info, "status", "")
                line = Text(f"  {n}. {ago(info.updated):>10}  ")
                line.append(f"{status:<11}", style=STATUS_STYLE.get(status, ""))
                line.append(f" {info.turns:>3} turns  {clip(info.first_prompt, width) or '-'}")
                repl.console.print(line, no_wrap=True, overflow="ellipsis")
            if hidden:
                repl.console.print(Text(f"  {hidden}", style="dim"))
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
    from coder.repl.resume import recap

    recap(repl.console, session.agent.conversation.items)
    repl.say(f"resumed session {session.id}")
    return True


COMMANDS: dict[str, Command] = {
    "/help": Command("show the commands and keys", _help),
    "/status": Command("model, sandbox, approvals, context, session and config files", _status),
    "/model": Command("change the model: pick from a list, or /model NAME", _model, idle_only=True),
    "/approvals": Command("when to ask before a command runs: /approvals never|on-request|untrusted", _approvals,
                          idle_only=True),
    "/last": Command("the whole output of the last tool call: /last [N] for the Nth from the end", _last),
    "/init": Command("have the agent write an AGENTS.md with this project's instructions", _init, idle_only=True),
    "/clear": Command("start a new conversation", _clear, idle_only=True),
    "/tokens": Command("tokens used and cost so far", _tokens),
    "/cost": Command("what this session cost so far", _cost),
    "/compact": Command("shrink the conversation to a summary now: /compact [what to keep in particular]", _compact,
                        idle_only=True),
    "/sandbox": Command("show or change the sandbox: /sandbox read-only|workspace-write|full-access", _sandbox,
                        idle_only=True),
    "/reasoning": Command("show or hide reasoning summaries: /reasoning on|off", _reasoning),
    "/diff": Command("what this session changed in your files", _diff, idle_only=True),
    "/undo": Command("put back the files the last turn changed (again: one more turn back)", _undo, idle_only=True),
    "/resume": Command("switch to an earlier session of this project: /resume [ID|--all]", _resume,
                       idle_only=True),
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
