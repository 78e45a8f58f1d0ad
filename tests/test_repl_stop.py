"""Stopping the agent from the REPL: Ctrl-C and Esc while the model is silent, at an approval, and
pressed again and again; Esc stays the start of Alt-keys for editing. Driven in real tmux."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import assert_valid_history, rc
from tests.scripted_server import Reply, message
from tests.test_repl import repl_env, start, user_texts  # noqa: F401  (fixtures)


def _wait_for_request(server, n: int = 1, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while len(server.bodies) < n:
        assert time.monotonic() < deadline, "the request never arrived"
        time.sleep(0.02)


@pytest.mark.parametrize("key", ["C-c", "Escape"])
@pytest.mark.parametrize("stage", ["before the headers", "a silent stream"])
def test_a_stop_lands_at_once_while_the_model_is_silent(server, start, key: str, stage: str):
    silent = Reply(hold=60) if stage == "before the headers" else Reply([message("never")], silence=60, silent_after=2)
    server.add(silent, Reply([message("Back again.")]))
    term = start()
    term.type("think hard")
    term.press("Enter")
    _wait_for_request(server)
    time.sleep(0.5)  # well into the silence
    pressed = time.monotonic()
    term.press(key)
    screen = term.wait_for(r"(?m)^stopped · ", timeout=10)
    took = time.monotonic() - pressed
    print(f"\nstop after {key} {stage}: {took:.2f} s")
    assert took < 3.0, f"the stop took {took:.2f} s"  # the silence lasts 60 s; measured: under 0.5 s
    assert "error" not in screen.split("› think hard")[-1]  # a stop the user asked for is no error
    term.type("again")
    term.press("Enter")
    term.wait_for("Back again")
    assert user_texts(server.bodies[1]) == ["think hard", "again"]
    assert_valid_history(server.bodies[1]["input"])


def test_ctrl_c_pressed_many_times_stops_and_does_not_exit(server, start):
    server.add(Reply(hold=60), Reply([message("Still here.")]))
    term = start()
    term.type("think hard")
    term.press("Enter")
    _wait_for_request(server)
    time.sleep(0.3)
    for _ in range(4):  # someone hammering Ctrl-C to make it stop
        term.press("C-c")
        time.sleep(0.12)
    term.wait_for(r"(?m)^stopped · ")
    time.sleep(1.0)
    assert not term.dead()
    screen = term.screen()
    assert "bye" not in screen and screen.count("stopped · ") == 1
    term.type("hello")
    term.press("Enter")
    term.wait_for("Still here")


@pytest.mark.parametrize("key", ["C-c", "Escape"])
def test_ctrl_c_or_esc_at_an_approval_stops_the_turn(server, start, tmp_path: Path, key: str):
    target = tmp_path / "made.txt"
    server.add(Reply([rc(f"touch {target}")]), Reply([message("Fine.")]))
    term = start("--approval", "untrusted")
    term.type("make the file")
    term.press("Enter")
    term.wait_for(r"\[n\] deny")
    term.press(key)
    screen = term.wait_for(r"(?m)^stopped · ")
    assert not target.exists()
    after = screen.split("[n] deny")[-1].split("stopped")[0]
    assert "denied" not in [line.strip() for line in after.splitlines()]  # no verdict: the stop is no answer
    time.sleep(0.5)
    assert len(server.bodies) == 1  # the turn ended: no request with the denial went to the model
    term.type("ok, leave it")
    term.press("Enter")
    term.wait_for("Fine.")
    body = server.bodies[1]["input"]
    assert_valid_history(body)
    outputs = [i for i in body if i["type"] == "function_call_output"]
    assert len(outputs) == 1 and "did not run" in outputs[0]["output"]
    assert "denied" not in outputs[0]["output"]  # the model is told of a stop, not of a refusal


def test_esc_is_still_alt_for_editing_and_only_stops_a_running_agent(server, start):
    server.add(Reply([rc("sleep 3; echo slept")]), Reply([message("Slept well.")]), Reply([message("Edited fine.")]))
    term = start()
    term.type("hello world")
    term.press("Escape", "b")  # Alt-b: a word back, as ever
    term.type("big ")
    term.press("Escape")  # a lone Esc with the agent idle: nothing happens to the text
    time.sleep(1.5)  # (a key within prompt_toolkit's timeoutlen, 1 s, of it would make an Alt-key)
    term.press("Enter")
    term.wait_for("Slept well", timeout=20)
    assert user_texts(server.bodies[0]) == ["hello big world"]
    assert "stopped" not in term.screen()
    term.type("second")
    term.press("Enter")
    term.wait_for("Edited fine")
    assert user_texts(server.bodies[2])[-1] == "second"


def test_esc_while_a_command_runs_stops_it_and_keeps_typed_text_usable(server, start, workspace: Path):
    server.add(Reply([rc("sleep 30")]), Reply([message("Resumed.")]))
    term = start()
    term.type("wait a while")
    term.press("Enter")
    term.wait_for(r"run_command sleep 30")
    term.type("draft")
    term.press("Escape", "b")  # Alt-b with the agent busy: still editing, not a stop
    term.type("my ")
    time.sleep(0.8)
    assert "stopped" not in term.screen()
    term.press("C-e")
    term.press("Escape")  # a lone Esc while it works: stop
    term.wait_for(r"(?m)^stopped · ", timeout=10)
    term.press("Enter")  # the text typed meanwhile is still there and is sent
    term.wait_for("Resumed.")
    assert user_texts(server.bodies[1])[-1] == "my draft"
    assert_valid_history(server.bodies[1]["input"])


def test_esc_stops_in_vi_mode_at_an_empty_prompt(server, start):
    server.add(Reply(hold=60), Reply([message("Vi again.")]))
    term = start("--vi")
    term.type("think")
    term.press("Enter")
    _wait_for_request(server)
    time.sleep(0.3)
    term.press("Escape")
    term.wait_for(r"(?m)^stopped · ", timeout=10)
    term.press("i")  # Esc left insert mode as well; back to typing
    term.type("again")
    term.press("Enter")
    term.wait_for("Vi again.")
    assert user_texts(server.bodies[1])[-1] == "again"


def test_a_message_the_model_got_while_the_stop_landed_is_answered(server, start):
    server.add(Reply([rc("sleep 5; echo slept")]), Reply([message("Answered the follow-up.")]))
    term = start()
    term.type("run it")
    term.press("Enter")
    term.wait_for(r"run_command.*sleep 5")
    term.type("next question")
    term.press("Enter")
    term.wait_for("queued")
    term.press("C-c")
    term.wait_for("Answered the follow-up.")
    assert len(server.bodies) == 2
    body = server.bodies[1]["input"]
    assert_valid_history(body)
    last = body[-1]
    assert last["role"] == "user" and last["content"][0]["text"] == "next question"
