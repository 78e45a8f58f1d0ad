"""The commands users of other agents expect: /status, /approvals, /model with a list, /cost, /init;
images in a message; a bell when a long turn ends. Driven in real tmux against the scripted endpoint."""

from __future__ import annotations

import re
import struct
import time
import zlib
from pathlib import Path


from tests.conftest import coder, rc, write
from tests.scripted_server import Reply, message, usage
from tests.test_repl import repl_env, start, user_texts  # noqa: F401  (fixtures)


def png(path: Path, width: int = 2, height: int = 1) -> Path:
    """A real (tiny) PNG file."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_status_names_model_sandbox_approvals_context_session_and_config_files(server, start, repl_env,
                                                                                 workspace: Path):
    user_config = Path(repl_env["XDG_CONFIG_HOME"]) / "coder" / "config.toml"
    user_config.parent.mkdir(parents=True)
    user_config.write_text('reasoning_effort = "low"\n')
    (workspace / ".coder").mkdir()
    project_config = workspace / ".coder" / "config.toml"
    project_config.write_text("command_timeout = 60\n")
    server.add(Reply([message("hi")], usage=usage(2000, 100)))
    term = start()
    term.type("hello")
    term.press("Enter")
    term.wait_for("completed ·")
    term.type("/status")
    term.press("Enter")
    # Not "config files": the completion menu's description of /status says that too, before Enter lands.
    screen = term.wait_for(re.escape(str(project_config)))
    shown = " ".join(screen.split("› /status")[-1].split())
    assert "model gpt-5.3-codex · reasoning effort low" in shown
    assert re.search(r"sandbox workspace-write · \w+", shown)
    assert "approvals on-request" in shown
    assert "context 2,100 tokens of 272,000 (1%)" in shown
    assert re.search(r"session \d{8}-\d{6}-[0-9a-f]{6}", shown)
    assert str(user_config) in shown and str(project_config) in shown
    assert server.base_url in shown  # the endpoint, and where it was set
    term.press("C-d")
    sid = re.search(r"coder resume (\S+)", term.wait_for(r"coder resume \S+")).group(1)
    assert f"session {sid}" in shown


def test_approvals_mode_changes_when_the_agent_asks(server, start, tmp_path: Path):
    made = tmp_path / "made.txt"
    server.add(Reply([rc(f"touch {made}")]), Reply([message("Made it.")]))
    term = start()
    term.type("/approvals")
    term.press("Enter")
    term.wait_for(r"approvals: on-request")
    term.type("/approvals sometimes")
    term.press("Enter")
    term.wait_for(r"approvals must be one of never, on-request, untrusted, not 'sometimes'")
    term.type("/approvals untrusted")
    term.press("Enter")
    term.wait_for(r"approvals are now untrusted")
    term.type("make it")
    term.press("Enter")
    term.wait_for(r"\[n\] deny")  # on-request would have run it in the sandbox without asking
    assert not made.exists()
    term.type("y")
    term.press("Enter")
    term.wait_for("Made it.")


def test_model_offers_the_endpoints_list_and_takes_a_number(server, start):
    server.models = ["house-model-large", "house-model-small", "text-embedding-3-small"]
    server.add(Reply([message("small here")]))
    term = start()
    term.type("/model")
    term.press("Enter")
    screen = term.wait_for(r"(?s)from the endpoint.*house-model-small.*model \(number or name, Enter keeps it\)")
    assert "text-embedding" not in screen  # not a model to chat with
    number = re.search(r"(\d+)\. house-model-small", screen).group(1)
    term.type(number)
    term.press("Enter")
    term.wait_for("model is now house-model-small")
    term.type("hi")
    term.press("Enter")
    term.wait_for("small here")
    assert server.bodies[0]["model"] == "house-model-small"


def test_model_falls_back_to_a_built_in_list(server, start):
    term = start()  # the scripted endpoint has no /models here: 404
    term.type("/model")
    term.press("Enter")
    screen = term.wait_for(r"(?s)built-in list.*gpt-5\.4.*model \(number or name, Enter keeps it\)")
    assert "1. gpt-5.3-codex  (current)" in screen and "gpt-5.4" in screen
    term.press("Enter")  # keeps it
    time.sleep(0.3)
    term.type("/model gpt-5.1")
    term.press("Enter")
    term.wait_for("model is now gpt-5.1")


def test_cost_in_dollars_or_unknown(server, start):
    server.add(Reply([message("pricey")], usage=usage(1_000_000, 100_000)))
    term = start()
    term.type("go")
    term.press("Enter")
    term.wait_for(r"completed ·.*\$3\.1500")  # 1M in at $1.75, 100k out at $14 (list prices, gpt-5.3-codex)
    term.type("/cost")
    term.press("Enter")
    term.wait_for(r"this session: \$3\.1500")
    term.type("/model house-model")
    term.press("Enter")
    server.add(Reply([message("unpriced")], usage=usage(1000, 10)))
    term.type("again")
    term.press("Enter")
    term.wait_for("unpriced")
    term.type("/cost")
    term.press("Enter")
    term.wait_for(r"this session: at least \$3\.1500; unknown for house-model")


def test_init_asks_the_agent_for_agents_md_once(server, start, workspace: Path):
    server.add(Reply([write("AGENTS.md", "# Agents\n\nRun the tests with make test.\n")]),
               Reply([message("Wrote AGENTS.md.")]))
    term = start()
    term.type("/init")
    term.press("Enter")
    term.wait_for("Wrote AGENTS.md")
    assert (workspace / "AGENTS.md").read_text().startswith("# Agents")
    [prompt] = user_texts(server.bodies[0])
    assert "AGENTS.md" in prompt and "Survey this repository" in prompt
    term.type("/init")
    term.press("Enter")
    term.wait_for(r"AGENTS\.md already exists; edit it")
    assert len(server.bodies) == 2


def test_an_image_path_in_a_message_is_sent_as_an_image(server, start, workspace: Path):
    png(workspace / "shot.png")
    (workspace / "fake.png").write_text("not really an image\n")
    server.add(Reply([message("A red pixel.")]), Reply([message("Same pixel.")]))
    term = start()
    term.type("what is in @shot.png?")
    term.press("Enter")
    term.wait_for("A red pixel")
    content = server.bodies[0]["input"][0]["content"]
    assert content[0] == {"type": "input_text", "text": "what is in @shot.png?"}
    assert content[1]["type"] == "input_image" and content[1]["image_url"].startswith("data:image/png;base64,")
    term.type(f"and {workspace / 'shot.png'} again")  # a plain path works too
    term.press("Enter")
    term.wait_for("Same pixel")
    assert [p["type"] for p in server.bodies[1]["input"][-1]["content"]] == ["input_text", "input_image"]
    term.type("look at @missing.png")
    term.press("Enter")
    term.wait_for(r"missing\.png: no such file; nothing was sent")
    term.type("look at @fake.png")
    term.press("Enter")
    term.wait_for(r"fake\.png: .*images can be PNG, JPEG, GIF or WebP; nothing was sent")
    term.type("a picture named logo.png is in the docs")  # mentioned, not there: plain text
    server.add(Reply([message("Noted.")]))
    term.press("Enter")
    term.wait_for("Noted.")
    assert [p["type"] for p in server.bodies[2]["input"][-1]["content"]] == ["input_text"]
    assert len(server.bodies) == 3


def _bell(term) -> bool:
    return term._tmux("display-message", "-p", "-t", "0", "#{window_bell_flag}").strip() == "1"


def test_a_long_turn_rings_the_bell_when_it_ends(server, start, repl_env):
    config = Path(repl_env["XDG_CONFIG_HOME"]) / "coder" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("notify_after = 2\n")
    server.add(Reply([message("quick")]), Reply([message("slow")], delay=3))
    term = start()
    term.type("quick one")
    term.press("Enter")
    term.wait_for("quick")
    term.wait_for("completed ·")
    time.sleep(0.3)
    assert not _bell(term)  # a short turn: no bell
    term.type("slow one")
    term.press("Enter")
    term.wait_for(r"slow\s*\n(.|\n)*completed ·", timeout=30)
    time.sleep(0.3)
    assert _bell(term)


def test_resume_lists_status_and_hides_runs_that_failed_before_any_reply(server, start, repl_env, workspace: Path):
    server.add(Reply([message("It works.")]))
    assert coder("exec", "make it work", env=repl_env, cwd=workspace).returncode == 0
    server.add(Reply(http_status=400, error={"error": {"message": "The model 'nope' does not exist",
                                                        "type": "invalid_request_error", "code": "model_not_found"}}))
    assert coder("exec", "-m", "nope", "this one fails", env=repl_env, cwd=workspace).returncode == 1
    term = start()
    term.type("/resume")
    term.press("Enter")
    # (what a command prints reaches the screen a moment after its question may: wait for both)
    screen = term.wait_for(r"(?s)› /resume\s*\n.*not shown.*resume which")
    listed = screen.split("› /resume")[-1]
    assert re.search(r"1\. .*done\s+1 turns\s+make it work", listed)
    assert "this one fails" not in listed
    assert "1 run(s) that failed before any reply, or were never used, not shown (/resume --all shows them)" in listed
    term.press("Enter")  # cancel
    term.type("/resume --all")
    term.press("Enter")
    screen = term.wait_for(r"(?s)› /resume --all\s*\n.*this one fails.*resume which")
    listed = screen.split("› /resume --all")[-1]
    assert re.search(r"failed\s+1 turns\s+this one fails", listed) and "make it work" in listed
    number = re.search(r"(\d)\. .*make it work", listed).group(1)
    term.type(number)
    term.press("Enter")
    term.wait_for(r"resumed session")
    assert "It works." in term.screen().split("› /resume --all")[-1]


def test_notification_settings_and_sequences(monkeypatch):
    from types import SimpleNamespace

    from coder.repl import notify

    assert notify.settings(SimpleNamespace()) == ("bell", 30.0)  # a config without the keys: the defaults
    assert notify.settings(SimpleNamespace(notify="osc9", notify_after=5)) == ("osc9", 5.0)
    assert notify.settings(SimpleNamespace(notify="off", notify_after="soon")) == ("off", 30.0)
    assert notify.sequence("bell", "x") == "\a" and notify.sequence("off", "x") == ""
    monkeypatch.delenv("TMUX", raising=False)
    assert notify.sequence("osc9", "coder: completed\x1b[31m after 40s") == "\x1b]9;coder: completed[31m after 40s\x07"
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    assert notify.sequence("osc9", "done") == "\x1bPtmux;\x1b\x1b]9;done\x07\x1b\\"  # passed through tmux


def test_status_shows_base_url_without_its_password_or_query_values(start, repl_env):
    env = {**repl_env, "OPENAI_BASE_URL": "http://me:hunter2pw@127.0.0.1:9/v1?key=QSECRET"}
    term = start(env=env)
    term.type("/status")
    term.press("Enter")
    screen = term.wait_for(r"config files")
    shown = " ".join(screen.split("› /status")[-1].split())
    assert "endpoint http://me:***@127.0.0.1:9/v1?key=*** (base_url from $OPENAI_BASE_URL)" in shown
    assert "hunter2pw" not in screen and "QSECRET" not in screen


def test_ctrl_c_during_a_slow_command_cancels_it_and_the_session_goes_on(server, start):
    server.models, server.models_delay = ["gpt-5.4"], 4.0  # the picker's list is slow to come
    term = start()
    term.type("/model")
    term.press("Enter")
    time.sleep(0.6)
    term.press("C-c")
    term.wait_for("cancelled")
    server.models_delay = 0.0
    term.type("/status")
    term.press("Enter")
    term.wait_for(r"model\s+gpt-5\.3-codex")  # the session is still there, and answers


def test_bad_arguments_are_refused_and_help_shows_every_word(server, start):
    term = start()
    term.type("/model gpt 5")
    term.press("Enter")
    term.wait_for("a model name has no spaces")
    term.type("/reasoning maybe")
    term.press("Enter")
    term.wait_for("use /reasoning on, /reasoning off")
    term.type("/help")
    term.press("Enter")
    term.wait_for(r"/compact \[what to keep in particular\]")
    term.type("/status")
    term.press("Enter")
    term.wait_for(r"model\s+gpt-5\.3-codex")  # unchanged
