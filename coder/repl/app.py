"""The interactive session: a prompt that stays usable while the agent works.

The main thread only reads input. Each turn runs on its own thread, iterating
the agent's events and printing them above the prompt. A message sent while a
turn runs is queued on the agent, which delivers it after the outputs of the
calls that are running. An approval the agent asks for wakes the prompt (its
text is kept), is answered with a one-key menu, and the prompt comes back.
"""

from __future__ import annotations

import os
import queue
import sys
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application.current import get_app
from prompt_toolkit.completion import ThreadedCompleter
from prompt_toolkit.filters import Condition, has_completions
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings
from rich.console import Console
from rich.text import Text

from coder import fmt
from coder.agent import Agent
from coder.approvals import prefix
from coder.events import ApprovalRequest, Event, FollowUpDelivered, RecordingFailed, TurnDone, Usage
from coder.repl import commands, notify
from coder.repl.ask import STOP, choose
from coder.repl.completion import CoderCompleter, ProjectFiles
from coder.repl.render import Renderer, Status
from coder.repl.resume import recap, restore_usage
from coder.repl.toolbar import toolbar_text
from coder.sessions import Session

WAKE = "\0coder-wake"  # what the prompt returns when an approval needs the terminal
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
EXIT_WINDOW = 3.0  # seconds in which a second Ctrl-C at an empty prompt exits
STOP_GRACE = 1.5  # seconds after a stop in which more Ctrl-C presses count as part of it, not as "exit"
ESC_WAIT = 0.05  # seconds a lone Esc waits for the rest of an Alt-key sequence (prompt_toolkit: 0.5)
# While the agent works, Esc (which also starts Alt-keys) stops it after this long without a next key;
# otherwise prompt_toolkit's own 1 s holds (vi mode keeps it always, for its own multi-key commands).
ESC_STOP_WAIT, KEY_WAIT = 0.35, 1.0


class Repl:
    def __init__(self, session: Session, console: Console, history: Path, *, vi: bool = False) -> None:
        self.session = session
        self.console = console
        self.status = Status(context_tokens=session.agent.context_tokens())
        self.renderer = Renderer(console, self.status, price=self._price)
        self.pending: queue.Queue[tuple[ApprovalRequest, threading.Event]] = queue.Queue()
        self.turn: threading.Thread | None = None
        self.turn_lock = threading.Lock()  # "is a turn running" vs "queue this message"
        self.saved_input = ""
        self.last_interrupt = 0.0
        self.stopping = 0.0  # when the user asked the running turn to stop (0: not asked)
        self.stopped_at = 0.0  # when the last stop the user asked for landed
        self._preloaded = False
        self._patch: Any = None  # patch_stdout while the session runs
        self.files = ProjectFiles(session.agent.workspace)
        history.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # what you type is yours alone
        os.close(os.open(history, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(history, 0o600)
        self.prompt: PromptSession = PromptSession(
            message=self._prompt_message,
            history=FileHistory(str(history)),
            multiline=True,
            key_bindings=self._keys(),
            completer=ThreadedCompleter(CoderCompleter(commands.descriptions(), self.files)),
            complete_while_typing=True,
            enable_open_in_editor=True,
            vi_mode=vi,
            bottom_toolbar=self._toolbar,
            refresh_interval=0.25,
            erase_when_done=True,  # the status line must not freeze into the scrollback; we echo the input

            prompt_continuation=lambda width, line, wrap: "… ".rjust(width),
        )
        self.prompt.app.ttimeoutlen = ESC_WAIT  # Esc alone is read as Esc at once; Alt-keys still arrive whole
        if session.agent.conversation.items:
            restore_usage(session, self.status, self._cost)

    @property
    def agent(self) -> Agent:
        return self.session.agent

    # --- what the prompt shows ---
    def _prompt_message(self) -> FormattedText:
        parts: list[tuple[str, str]] = []
        with self.status.lock:
            running, activity, since, queued = self.status.running, self.status.activity, self.status.since, self.status.queued
        if running:
            frame = SPINNER[int(time.monotonic() * 10) % len(SPINNER)]
            line = f"{frame} {activity or 'working'} · {time.monotonic() - since:.0f}s"
            if queued:
                line += f" · {queued} message{'s' if queued > 1 else ''} queued"
            parts.append(("fg:ansiyellow", line + ("\n" if self.stopping else "  (Esc or Ctrl-C stops)\n")))
        parts.append(("bold", "› "))
        return FormattedText(parts)

    def context_percent(self) -> str:
        window = self.agent.window
        return f"({self.status.context_tokens / window:.0%} of {window // 1000}k)" if window else ""

    def _toolbar(self) -> FormattedText:
        agent = self.agent
        try:
            width = get_app().output.get_size().columns
        except Exception:
            width = self.console.width
        text = toolbar_text(
            width, model=agent.config.model, mode=agent.policy.mode.value, backend=agent.tool_ctx.backend.name,
            network=agent.policy.network, tokens=self.status.context_tokens, window=agent.window,
            cost=fmt.cost(self.status.cost) if self.status.cost else "")
        return FormattedText([("", text)])

    def _keys(self) -> KeyBindings:
        kb = KeyBindings()
        busy = Condition(self.busy)

        @kb.add("enter")
        def _(event) -> None:  # Enter sends; with a completion picked, it takes the completion first
            buf = event.current_buffer
            if buf.complete_state and buf.complete_state.current_completion:
                buf.apply_completion(buf.complete_state.current_completion)
                return
            buf.validate_and_handle()

        @kb.add("escape", "enter")
        def _(event) -> None:
            event.current_buffer.insert_text("\n")

        @kb.add("c-c")
        def _(event) -> None:  # while the agent works: stop it; else with text: clear it; else exit (twice)
            buf = event.current_buffer
            if self.busy() and not buf.text:
                self.stop()
            elif buf.text:
                buf.reset()
            else:
                event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

        # Esc stops the agent only while it works; at other times it is the start of an Alt-key as ever.
        # In vi mode Esc leaves insert mode, so there it stops the agent only at an empty prompt.
        @kb.add("escape", filter=busy & ~has_completions
                & Condition(lambda: not self.vi or not get_app().current_buffer.text))
        def _(event) -> None:
            self.stop()
            if self.vi:  # and what Esc does in vi: leave insert mode
                from prompt_toolkit.key_binding.vi_state import InputMode

                event.app.vi_state.input_mode = InputMode.NAVIGATION

        return kb

    # --- output helpers used by the commands ---
    def say(self, text: str) -> None:
        self.console.print(Text(text))

    def error(self, text: str) -> None:
        self.console.print(Text(text, style="red"))

    def warn_no_sandbox(self) -> None:
        detail = self.agent.tool_ctx.backend.detail
        self.console.print(Text(
            f"warning: no sandbox is available here ({detail}). Every command will be shown to you "
            "and runs only if you say yes, without isolation. Install bubblewrap or enable Landlock "
            "and user namespaces to change that.", style="bold red"))

    def busy(self) -> bool:
        """A turn is running (its thread may linger a moment after it said it was done)."""
        return self.status.running

    def new_conversation(self) -> None:
        self.session.detach()
        self.agent.reset()
        self.switch(Session.create(self.agent, auto_commit=self.session.auto_commit))

    def switch(self, session: Session) -> None:
        """Make `session` the current one (after /clear or /resume)."""
        self.session = session
        self.renderer.calls.clear()
        with self.status.lock:
            self.status.context_tokens = session.agent.context_tokens()
            self.status.total = session.agent.usage
            self.status.cost, self.status.unpriced = 0.0, set()
        if session.agent.conversation.items:
            restore_usage(session, self.status, self._cost)
        for warning in session.warnings:
            self.console.print(Text(f"warning: {warning}", style="yellow"))

    def _cost(self, model: str, usage: Usage) -> float | None:
        from coder import pricing

        return pricing.cost(model, usage, self.agent.config)

    def _price(self, usage: Usage) -> tuple[str, float | None]:
        """A request's cost with the model now in force (each request is priced as it is reported)."""
        model = self.agent.config.model
        return model, self._cost(model, usage)

    # --- the main loop ---
    def run(self) -> int:
        self._take_terminal()
        try:
            return self._loop()
        finally:
            self._release_terminal()

    def _loop(self) -> int:
        self.banner()
        while True:
            try:
                self._answer_approvals()
            except KeyboardInterrupt:  # outside a prompt, Ctrl-C is the terminal's: it stops, never leaves
                self._interrupted()
            try:
                text = self.prompt.prompt(default=self.saved_input, pre_run=self._after_first_paint)
            except KeyboardInterrupt:
                if self._interrupted():
                    break
                continue
            except EOFError:
                break
            self.saved_input = ""
            if text == WAKE:
                continue
            self.last_interrupt = 0.0
            try:
                if not self.handle(text):
                    break
            except KeyboardInterrupt:  # a slow command (/model's list, /undo, /diff) given up on
                self.console.print(Text("cancelled", style="yellow"))
        self.shutdown()
        return 0

    def banner(self) -> None:
        from coder import __version__

        agent = self.agent
        backend = agent.tool_ctx.backend
        self.console.print(Text.assemble(
            (f"coder {__version__}", "bold"),
            f" · {agent.config.model} · sandbox {agent.policy.mode.value} ({backend.name}) · {agent.workspace}",
        ))
        self.console.print(Text("Type a message for the agent · /help for commands · Esc or Ctrl-C stops it · "
                                "Ctrl-D exits", style="dim"))
        if not backend.isolates and agent.policy.mode.value != "full-access":
            self.warn_no_sandbox()
        if agent.conversation.items:
            recap(self.console, agent.conversation.items)
            self.console.print(Text(f"resumed session {self.session.id}; the model sees all of it", style="dim"))
        for warning in self.session.warnings:
            self.console.print(Text(f"warning: {warning}", style="yellow"))

    def _after_first_paint(self) -> None:
        """Load what the first message needs while the user types (start-up stays short)."""
        if self._preloaded:
            return
        self._preloaded = True

        def load() -> None:
            try:
                import openai  # noqa: F401
                import rich.markdown  # noqa: F401
            except Exception:
                pass
            self.files.refresh()

        threading.Thread(target=load, name="coder-preload", daemon=True).start()

    @property
    def vi(self) -> bool:
        from prompt_toolkit.enums import EditingMode

        return self.prompt.editing_mode == EditingMode.VI

    def stop(self) -> None:
        """Esc or Ctrl-C while the agent works: stop it. Pressing again while it stops changes nothing."""
        if not self.busy():
            return
        if not self.stopping:
            self.stopping = time.monotonic()
            self.status.set("stopping")
        self.agent.cancel()  # a second call is harmless, and helps if the first came too early

    def _interrupted(self) -> bool:
        """Ctrl-C on an empty prompt with the agent idle: exit on the second press. True means exit."""
        if self.busy():
            self.stop()
            return False
        now = time.monotonic()
        if now - self.stopped_at < STOP_GRACE:
            return False  # one more press of the burst that stopped the agent: not a wish to leave
        if now - self.last_interrupt < EXIT_WINDOW:
            return True
        self.last_interrupt = now
        self.console.print(Text("press Ctrl-C again to exit (or Ctrl-D)", style="dim"))
        return False

    def handle(self, text: str) -> bool:
        """One submitted input; False ends the session."""
        stripped = text.strip()
        if not stripped:
            return True
        echo = Text("› ", style="bold") + Text(text.rstrip("\n").replace("\n", "\n  "), style="bold")
        if stripped.startswith("/"):
            self.console.print(echo)
            return commands.run_command(self, stripped)
        if stripped.startswith("!"):
            self.console.print(echo)
            self.shell(stripped[1:].strip())
            return True
        self.send(text, echo)
        return True

    def send(self, text: str, echo: Text | None = None, images: list[Path] | None = None) -> None:
        """A message for the model: a new turn, or, while one runs, queued for the running one."""
        from coder.repl.images import ImageError, attached

        if images is None:
            try:
                images = attached(text, self.agent.workspace)
            except ImageError as e:
                if echo is not None:
                    self.renderer.later(echo)
                self.error(f"{e}; nothing was sent")
                return
        with self.turn_lock:
            if self.busy():
                if images:
                    if echo is not None:
                        self.renderer.later(echo)
                    self.error("an image can go only with a new message: send it when the agent is done")
                    return
                self.agent.queue(text)
                with self.status.lock:
                    self.status.queued += 1
                queued = Text("queued: it goes to the model right after the running step", style="magenta")
                self.renderer.later(*(l for l in (echo, queued) if l is not None))
                return
            if echo is not None:
                self.console.print(echo)
            for path in images:
                self.console.print(Text(f"  image: {self._shown(path)}", style="dim"))
            self._working(True)
            self.status.set("thinking")
            self.turn = threading.Thread(target=self._turn, args=(text, images), name="coder-turn", daemon=True)
            self.turn.start()

    def _shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.agent.workspace))
        except ValueError:
            return str(path)

    def compact(self, focus: str) -> None:
        """/compact: on the turn thread, so the prompt stays live and Ctrl-C stops it."""
        with self.turn_lock:
            self._working(True)
            self.status.set("compacting the conversation")
            events = self.session.compact(focus)  # from here on, Ctrl-C stops it
            self.turn = threading.Thread(target=self._compaction, args=(events,), name="coder-compact", daemon=True)
            self.turn.start()

    def _compaction(self, events: Iterator[Event]) -> None:
        try:
            for event in events:
                self.renderer(event)
        except Exception as e:  # a bug must not kill the session
            self.console.print(Text(f"error: {type(e).__name__}: {e}", style="bold red"))
        with self.turn_lock:
            if not self.agent.conversation.has_queued():
                self._idle()
                return
            self.turn = threading.Thread(target=self._turn, args=(None,), name="coder-turn", daemon=True)
            self.turn.start()  # what was typed meanwhile goes to the model now

    def _run(self, prompt: str | None, images: list[Path]) -> Iterator[Event]:
        if images:
            return self.session.run(prompt, images=[str(p) for p in images])
        return self.session.run(prompt)

    def _turn(self, prompt: str | None, images: list[Path] | None = None) -> None:
        started = time.monotonic()
        done: TurnDone | None = None
        try:
            while True:
                unanswered = False  # a follow-up the model got while the stop was landing, so never answered
                for event in self._run(prompt, images or []):
                    if isinstance(event, (ApprovalRequest, RecordingFailed)):
                        self._ask(event)
                    else:
                        if isinstance(event, TurnDone):
                            done = event
                        elif isinstance(event, FollowUpDelivered) and self.stopping:
                            unanswered = True
                        self.renderer(event)
                with self.turn_lock:
                    answer_it = unanswered and done is not None and done.status == "interrupted"
                    if not answer_it and not self.agent.conversation.has_queued():
                        self._idle()  # under the lock: a message sent from now on starts a new turn
                        break
                    if answer_it:  # the user spoke after stopping: that message starts the next request
                        self.stopped_at = time.monotonic()
                        self._working(True)
                        self.status.set("thinking")
                prompt, images = None, None  # a follow-up arrived as the turn ended: it starts the next request
        except Exception as e:  # a bug must not kill the session or leave the history invalid
            self.agent.conversation.close_open_calls("Interrupted by an internal error.")
            self.renderer.flush()
            self.console.print(Text(f"error: {type(e).__name__}: {e}", style="bold red"))
            with self.turn_lock:
                self._idle()
            return
        self._notify(time.monotonic() - started, done)

    def _notify(self, took: float, done: TurnDone | None) -> None:
        """A long turn ended while the user was (maybe) elsewhere: ring, as configured."""
        how, after = notify.settings(self.agent.config)
        if how == "off" or took < after or done is None or done.status == "interrupted":
            return
        notify.notify(how, f"coder: {done.status} after {took:.0f}s")

    def _working(self, running: bool) -> None:
        """A turn starts or ends: the status, and how long a lone Esc waits before it counts as a stop."""
        self.stopping = 0.0
        self.status.running = running
        self.prompt.app.timeoutlen = ESC_STOP_WAIT if running and not self.vi else KEY_WAIT

    def _idle(self) -> None:
        if self.stopping:
            self.stopped_at = time.monotonic()
        self._working(False)
        self.status.queued = 0
        self.status.set("")
        app = self.prompt.app
        if app.is_running:
            app.invalidate()

    # --- approvals: asked on the turn thread, answered on the main thread ---
    def _ask(self, request: ApprovalRequest | RecordingFailed) -> None:
        done = threading.Event()
        self.pending.put((request, done))
        while not done.wait(0.1):
            if self.agent.cancel_event.is_set():  # stopped or leaving: nobody will answer (no means no)
                if isinstance(request, ApprovalRequest):
                    request.deny()
                return
            self._wake()

    def _wake(self) -> None:
        app = self.prompt.app
        loop = app.loop
        if app.is_running and loop is not None:
            try:
                loop.call_soon_threadsafe(self._exit_prompt)
            except RuntimeError:  # the prompt closed meanwhile; the next one answers first
                pass

    def _exit_prompt(self) -> None:
        app = self.prompt.app
        if app.is_running and not app.is_done:
            self.saved_input = app.current_buffer.text
            app.exit(result=WAKE)

    def _answer_approvals(self) -> None:
        while True:
            try:
                request, done = self.pending.get_nowait()
            except queue.Empty:
                return
            try:
                if isinstance(request, RecordingFailed):
                    self._recording_menu(request)
                elif request.approved is None:  # not already given up on by a stopped turn
                    self._approval_menu(request)
            finally:
                done.set()

    def _recording_menu(self, failure: RecordingFailed) -> None:
        self.console.print(Text(f"{failure.message}.", style="bold red"))
        if choose("  Go on without recording (what follows cannot be resumed)? [y] yes  "
                  "[n] no, stop the turn, then Enter: ", "yn") == "y":
            failure.go_on()

    def _approval_menu(self, request: ApprovalRequest) -> None:
        where = "outside the sandbox" if request.escalate else "in the sandbox"
        self.console.print(Text.assemble(("approval needed: ", "bold yellow"), f"run {where}? ({request.reason})"))
        self.console.print(Text(f"  $ {request.command}", style="bold"))
        pre = prefix(request.command)
        choice = choose(
            f"  [y] run once   [a] always allow `{pre}` this session   [n] deny   [d] deny with a note, "
            "then Enter (Ctrl-C stops the turn): ", "yand", interrupt=STOP)
        if choice == STOP:  # not an answer to the question: the user wants the whole turn to stop
            request.deny()
            self.stop()
            self.console.print(Text("  stopping the turn; the command did not run", style="yellow"))
            return
        if choice == "y":
            request.approve()
        elif choice == "a":
            request.approve(always=True)
        elif choice == "d":
            from prompt_toolkit import prompt

            try:
                note = prompt("  note for the model: ")
            except (KeyboardInterrupt, EOFError):
                note = ""
            request.deny(note.strip())
        else:
            request.deny()
        verdict = {"y": "approved once", "a": f"approved: `{pre}` allowed for this session"}.get(choice, "denied")
        self.console.print(Text(f"  {verdict}", style="green" if choice in "ya" else "red"))

    # --- the rest ---
    def shell(self, command: str) -> None:
        """`!cmd`: the user's own command, in their shell, on their terminal; the model never sees it."""
        if not command:
            self.error("type a command after !, e.g. !git status")
            return
        from coder import credentials

        self._release_terminal()  # what was printed so far (the echo) reaches the terminal before the command
        try:
            # The user's own command, as in their own shell: it gets the environment coder started with.
            code = subprocess.run(["bash", "-c", command], cwd=self.agent.workspace,
                                  env=credentials.user_environment()).returncode
        except KeyboardInterrupt:
            code = 130
        except OSError as e:
            code = None
            self._take_terminal()
            self.error(f"cannot run it: {e.strerror}")
            return
        self._take_terminal()
        if code:
            self.console.print(Text(f"exit {code}", style="dim"))

    def _release_terminal(self) -> None:
        """Stop routing output through prompt_toolkit (flushing what is queued), so a child writes after it."""
        if self._patch is not None:
            self._patch.__exit__(None, None, None)
            self._patch = None
        sys.stdout.flush()

    def _take_terminal(self) -> None:
        from prompt_toolkit.patch_stdout import patch_stdout

        if self._patch is None:
            self._patch = patch_stdout(raw=True)
            self._patch.__enter__()

    def shutdown(self) -> None:
        if self.turn is not None and self.turn.is_alive():
            self.agent.cancel()
            while not self.pending.empty():  # nobody is left to answer: no means no
                request, done = self.pending.get_nowait()
                if isinstance(request, ApprovalRequest):
                    request.deny()
                done.set()
            assert self.turn is not None
            self.turn.join(10)
        self.session.close()
        if self.session.transcript.path is None or self.session.transcript.failure:
            self.console.print(Text("bye · this session was not recorded to the end: it cannot be resumed", style="dim"))
        else:
            self.console.print(Text(f"bye · resume this session with: coder resume {self.session.id}", style="dim"))


def history_path(workspace: Path) -> Path:
    """One history per project, named so a person can tell which is which."""
    import hashlib

    from coder.dirs import history_dir

    digest = hashlib.sha256(str(workspace).encode()).hexdigest()[:12]
    return history_dir() / f"{workspace.name or 'root'}-{digest}"
