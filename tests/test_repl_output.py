"""What the REPL prints: failed commands with their exit code and last lines, /last, reasoning and
commentary, tool lines that fit, the bottom bar at 60 and 80 columns, resume, and output order.
Driven in real tmux against the scripted endpoint."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.conftest import CODER, rc, write
from tests.scripted_server import Reply, call, message, reasoning, usage
from tests.test_repl import Terminal, repl_env, start, trust, user_texts  # noqa: F401  (fixtures)

RED = r"\x1b\[(?:[0-9;]*;)?(?:31|91)(?:;[0-9;]*)?m"
DIM = r"\x1b\[(?:[0-9;]*;)?2(?:;[0-9;]*)?m"


def line_with(screen: str, text: str) -> str:
    return next(line for line in screen.splitlines() if text in line)


def test_a_failed_command_shows_red_with_its_exit_code_and_last_lines(server, start):
    server.add(Reply([rc("echo first; seq 1 30; echo 'boom: it broke' >&2; exit 3")]),
               Reply([rc("echo fine")]), Reply([message("It failed with exit 3.")]))
    term = start()
    term.type("run it")
    term.press("Enter")
    screen = term.wait_for(r"completed ·")
    line = line_with(screen, "✗ run_command")
    assert "exit 3" in line and "✓" not in line
    assert re.search(r"│ boom: it broke", screen) and re.search(r"│ 30\b", screen)  # the last lines, not the first
    assert "│ first" not in screen
    assert re.search(r"more line\(s\); /last 1?\s*shows the whole output|/last shows the whole output", screen)
    colored = term.screen(escapes=True)
    assert re.search(RED + r"\s*✗", colored), "the failed call is not red"
    assert "✓ run_command echo fine" in screen  # the next call worked: green, as before
    term.type("/last 2")
    term.press("Enter")
    screen = term.wait_for(r"(?s)── run_command .*exit 3.*Exit code: 3.*boom: it broke")
    shown = screen.split("/last 2")[-1]
    assert "Exit code: 3" in shown and "first" in shown and "boom: it broke" in shown  # everything the model read
    term.type("/last")
    term.press("Enter")
    term.wait_for(r"── run_command echo fine · ok · exit 0")
    term.type("/last 9")
    term.press("Enter")
    term.wait_for(r"only 2 tool call\(s\) to show")
    term.type("/help")
    term.press("Enter")
    term.wait_for(r"/last\s+the whole output of the last tool call")


def test_reasoning_is_rendered_and_commentary_is_set_apart(server, start, workspace: Path):
    (workspace / "app.py").write_text("x = 1\n")
    server.add(Reply([reasoning("**Planning the fix**\n\nI will read `app.py` first."), message("Let me look first."),
                      call("read_file", {"path": "app.py"})]),
               Reply([message("The final answer is here.")]))
    term = start()
    term.type("look")
    term.press("Enter")
    screen = term.wait_for(r"completed ·")
    assert "Planning the fix" in screen and "**" not in screen and "`app.py`" not in screen
    colored = term.screen(escapes=True)
    commentary = line_with(colored, "Let me look first.")
    answer = line_with(colored, "The final answer is here.")
    assert re.search(DIM, commentary), f"commentary is not set apart: {commentary!r}"
    assert not re.search(DIM, answer), f"the answer is dim: {answer!r}"


def test_tool_lines_say_the_path_once_and_a_failed_edit_reads_whole(server, start, workspace: Path):
    (workspace / "app.py").write_text("def f():\n    return 1\n")
    server.add(Reply([call("edit_file", {"path": "app.py", "old_string": "return 2", "new_string": "x"}),
                      call("edit_file", {"path": "app.py", "old_string": "return 1", "new_string": "return 2"}),
                      write("notes.md", "a\nb\n")]),
               Reply([message("Edited.")]))
    term = start()
    term.type("edit it")
    term.press("Enter")
    screen = term.wait_for(r"completed ·")
    failed = line_with(screen, "✗ edit_file")
    assert re.search(r"old_string was not found in app\.py.* · \d+\.\d\ds$", failed.rstrip()), failed
    assert ": ·" not in failed
    edited = line_with(screen, "✓ edit_file")
    assert edited.count("app.py") == 1 and "replaced 1 occurrence" in edited
    created = line_with(screen, "✓ write_file")
    assert created.count("notes.md") == 1 and "created" in created
    assert "+++ b/app.py" not in screen and "--- a/app.py" not in screen  # the line above names the file
    assert "+    return 2" in screen


def test_a_long_command_line_fits_the_terminal(server, start):
    long = "echo " + " ".join(f"word{i}" for i in range(60)) + "; exit 1"
    server.add(Reply([rc(long)]), Reply([message("ok")]))
    term = start()
    term.type("go")
    term.press("Enter")
    screen = term.wait_for(r"completed ·")
    line = line_with(screen, "✗ run_command")
    assert line.rstrip().endswith("s") and "exit 1" in line and len(line.rstrip()) <= 120
    assert re.search(r"· \d+\.\d\ds$", line.rstrip())


def test_shell_output_comes_after_its_echo(server, start):
    term = start()
    term.type("!printf 'out-%s\\n' 1 2 3")
    term.press("Enter")
    screen = term.wait_for(r"out-3")
    assert screen.index("› !printf") < screen.index("out-1")
    term.type("!false")
    term.press("Enter")
    screen = term.wait_for(r"exit 1")
    assert screen.index("› !false") < screen.index("exit 1")


def test_a_message_queued_while_an_answer_streams_waits_for_a_break(server, start):
    paragraphs = "\n\n".join(f"Paragraph {n} of the answer." for n in range(1, 7))
    server.add(Reply([message(paragraphs)], event_delay=0.08), Reply([message("Got the follow-up.")]))
    term = start()
    term.type("explain")
    term.press("Enter")
    term.wait_for("Paragraph 1 of the answer")
    term.type("and one more thing")
    term.press("Enter")
    screen = term.wait_for("Got the follow-up")
    echo = screen.index("› and one more thing")
    assert echo > screen.index("Paragraph 6 of the answer"), "the queued message was printed inside the answer"
    assert screen.index("queued:") > echo
    assert user_texts(server.bodies[1])[-1] == "and one more thing"


def test_notices_are_shown(server, start, repo: Path):
    server.add(Reply([write("app.py", "print('v2')\n")]), Reply([message("Changed it.")]))
    term = start("--auto-commit")
    term.type("change it")
    term.press("Enter")
    screen = term.wait_for(r"completed ·")
    assert re.search(r"note: committed 1 file\(s\) as [0-9a-f]{10}", screen)


@pytest.mark.parametrize("width", [60, 80])
def test_the_bottom_bar_keeps_its_end_at_narrow_widths(server, repl_env, workspace: Path, width: int):
    server.add(Reply([message("hello")], usage=usage(12_345, 678)))
    trust(repl_env, workspace)
    term = Terminal([str(CODER)], repl_env, workspace, width=width, height=30)
    try:
        term.wait_for(r"(?m)^›")
        term.type("hi")
        term.press("Enter")
        term.wait_for(r"completed")
        time.sleep(0.5)
        bar = [line for line in term.screen().splitlines() if line.strip()][-1]
        assert "gpt-5.3-codex" in bar, bar
        assert re.search(r"(13k|13,023 tokens) \(5%( of 272k)?\)", bar), bar  # the figure people look for, whole
        assert not bar.rstrip().endswith("…"), bar
        assert len(bar.rstrip()) <= width
    finally:
        term.close()


def test_resume_renders_the_tail_and_restores_the_usage(server, start, workspace: Path):
    answer = "# Summary\n\nThe plan:\n\n- first item\n- second item\n\n```\ncode line\n```"
    server.add(Reply([message(answer)], usage=usage(5000, 300)), Reply([message("Still here.")]))
    term = start()
    term.type("plan it")
    term.press("Enter")
    term.wait_for(r"completed ·")
    term.wait_for(r"context 5,300 tokens")
    term.press("C-d")
    sid = re.search(r"coder resume (\S+)", term.wait_for(r"coder resume \S+")).group(1)
    again = start("resume", sid)
    screen = again.wait_for(r"context 5,300 tokens")  # as the transcript left it, not an estimate or 0
    recap = screen.split("› plan it")[1].split("resumed session")[0]
    assert "- first item" not in recap and "# Summary" not in recap  # rendered, not raw Markdown
    lines = [line.strip() for line in recap.splitlines() if line.strip()]
    assert "Summary" in lines and "code line" in lines
    assert any(line.endswith("first item") for line in lines) and any(line.endswith("second item") for line in lines)
    again.type("/tokens")
    again.press("Enter")
    again.wait_for(r"input\s+5,000")


def test_undo_labels_end_at_a_word(server, start, repo: Path):
    long = "please rename the configuration loader so that it reads environment variables first and then files"
    server.add(Reply([write("app.py", "print('v2')\n")]), Reply([message("Done.")]))
    term = start()
    term.type(long)
    term.press("Enter")
    term.wait_for(r"completed ·")
    term.type("/undo")
    term.press("Enter")
    screen = term.wait_for(r"undid '")
    label = re.search(r"undid '([^']*)'", screen.replace("\n", "")).group(1)
    assert label.endswith("…") and long.startswith(label[:-1].rstrip()), label
    assert long[len(label[:-1].rstrip())] == " ", f"cut mid-word: {label!r}"


# --- hints under errors: chosen by the failure's status and code, never by its wording ---

WRONG_KIND = ("the endpoint did not answer with an event stream: POST http://localhost:8/models-gw/v1/responses "
              "(base_url from $OPENAI_BASE_URL) sent '{\"id\":\"x\",\"object\":\"response\"}'")


@pytest.mark.parametrize("kwargs, says, never", [
    # a reply that is no event stream is never retried: sending again fails the same way
    (dict(message=WRONG_KIND, code="unexpected_reply"), "/v1", "send your message again"),
    # a 404 whose URL happens to say "model" is about the endpoint, not the model list
    (dict(message="HTTP 404: Not Found; tried POST http://localhost:8/models-gw/v1/responses", status=404),
     "base_url", "/model lists"),
    (dict(message="HTTP 404: The model `gpt-x` does not exist", status=404, code="model_not_found"),
     "/model lists the models", "send your message again"),
    (dict(message="HTTP 400: Your input exceeds the context window of this model.", status=400,
          code="context_length_exceeded"), "/compact", "send your message again"),
    (dict(message="HTTP 401: Incorrect API key provided", status=401), "check the API key", "send"),
    (dict(message="HTTP 429: Rate limit reached", status=429, code="rate_limit_exceeded"), "send your message again",
     "API key"),
    (dict(message="HTTP 503: upstream connect error", status=503), "send your message again", "network"),
    (dict(message="connection error: [Errno 111] Connection refused; tried POST http://h/v1/responses",
          code="connection_error"), "check the network", "/model"),
    (dict(message="the request timed out after 600 s; tried POST http://h/v1/responses", code="timeout"),
     "send your message again", "/model"),
    (dict(message="stopped after 100 model requests (max_turns)", code="max_turns"), "continue", "send"),
])
def test_an_error_hint_comes_from_the_failures_status_and_code(kwargs, says, never):
    from coder.events import Error
    from coder.repl.render import error_hint

    hint = error_hint(Error(**kwargs))
    assert says in hint and never not in hint, hint


@pytest.mark.parametrize("kwargs", [
    dict(message="HTTP 400: the model cannot connect to this tool: not found", status=400, code="invalid_value"),
    dict(message="the response failed: model not found, context window, api key, connection error"),
])
def test_an_error_without_a_fitting_hint_gets_none_whatever_its_words(kwargs):
    from coder.events import Error
    from coder.repl.render import error_hint

    assert error_hint(Error(**kwargs)) == ""


def test_the_bar_drops_a_word_before_it_drops_the_cost():
    from coder.repl.toolbar import toolbar_text

    bar = toolbar_text(60, model="gpt-5.3-codex", mode="workspace-write", backend="landlock", network=False,
                       tokens=152_000, window=272_000, cost="$1.2345")
    assert bar == " gpt-5.3-codex · workspace-write · 152k (56%) · $1.2345"


def test_streamed_paragraphs_stay_apart_as_in_the_whole_message():
    from rich.console import Console

    from coder.repl.render import MarkdownStream

    console = Console(record=True, width=60, color_system=None)
    stream = MarkdownStream(console)
    for piece in ("First para", "graph.\n\nSecond paragraph.\n", "\n# Heading\n\nThird.", ""):
        stream.feed(piece)
    stream.finish()
    lines = [line.strip() for line in console.export_text().splitlines()]
    assert lines == ["First paragraph.", "", "Second paragraph.", "", "Heading", "", "Third."]
