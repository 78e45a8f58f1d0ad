"""agent.cancel() from another thread (the REPL's UI thread) while the model is silent: the request in flight
ends at once whatever it waits for (a connect, a TLS handshake, the headers, a silent stream, a poll), the run
ends as interrupted (not as an error), the history stays valid, and the next run on the same agent (and the
same connection pool) works."""

from __future__ import annotations

import threading
import time

import pytest

from coder.agent import Agent
from coder.config import Config
from tests.core.conftest import assert_valid_history, events_of, run
from tests.scripted_server import Reply, SilentServer, backlog_full, call, message
from tests.test_repl import repl_env, start  # noqa: F401  (the tmux harness, as fixtures)

STOP_AFTER = 0.3  # seconds after the endpoint got the request
BOUND = 2.0  # the issue asks for 0.5 s; a busy 2-core machine gets room (the measured figure is printed)
QUIET = 8.0  # how long the endpoint stays silent: far past BOUND, short enough that today's code fails in time


def stopped_run(agent, prompt: str, when=lambda: True, twice: bool = False):
    """Run, cancelling from another thread STOP_AFTER s after `when()` holds; the events and the seconds
    from the cancel to the end of the run."""
    cancelled: list[float] = []
    done = threading.Event()

    def stop() -> None:
        if not wait_for(lambda: when() or done.is_set(), 10) or done.is_set():
            return
        if done.wait(STOP_AFTER):
            return
        cancelled.append(time.monotonic())
        agent.cancel()
        if twice:
            agent.cancel()

    stopper = threading.Thread(target=stop)
    stopper.start()
    try:
        events = run(agent, prompt)
    finally:
        done.set()
        stopper.join()
    assert cancelled, "the run ended before the stop"
    took = time.monotonic() - cancelled[0]
    print(f"\nstop to end of run: {took:.3f} s")
    return events, took


def wait_for(predicate, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def assert_interrupted(events) -> None:
    assert events[-1].type == "turn.done" and events[-1].status == "interrupted"
    assert events_of(events, "error") == []  # a stop the user asked for is no error


def assert_next_run_works(server, agent) -> None:
    events = run(agent, "again")
    assert events[-1].ok and events[-1].final_text == "back again"
    assert events_of(events, "retrying") == []  # no dead pooled connection was tried first
    assert_valid_history(server.bodies[-1]["input"])


@pytest.mark.parametrize("quiet, where", [
    (dict(hold=QUIET), "headers"),  # the response headers held back
    (dict(silence=QUIET, silent_after=0), "stream"),  # headers sent, then nothing
    (dict(silence=QUIET, silent_after=2), "stream"),  # a few events, then a long think
], ids=["before-headers", "silent-stream", "mid-stream"])
def test_a_stop_while_the_model_is_silent_ends_the_run_at_once(server, make_agent, quiet, where):
    server.add(Reply([message("never shown")], **quiet), Reply([message("back again")]))
    agent = make_agent()
    events, took = stopped_run(agent, "think hard", when=lambda: len(server.bodies) == 1)
    assert took < BOUND
    assert_interrupted(events)
    assert wait_for(lambda: server.hangups == [where])  # the endpoint saw the connection go
    assert_next_run_works(server, agent)
    assert [b["input"][0]["content"][0]["text"] for b in server.bodies] == ["think hard", "think hard"]


def test_a_stop_while_connecting_ends_the_run_at_once(server, make_agent):
    """A connect that hangs (the endpoint's listen queue is full: the SYN goes unanswered, as behind a dead
    route) has no socket to shut down yet; the stop lands all the same, and the request left behind never
    goes out, not even once the endpoint accepts again."""
    server.add(Reply([message("back again")]))
    agent = make_agent(timeout=QUIET)  # today's code gives up connecting only then
    assert agent.client.openai  # built beforehand (importing openai takes a while): the stop comes mid-connect
    with backlog_full(server):
        events, took = stopped_run(agent, "think hard")
        assert server.requests == []
    assert took < BOUND
    assert_interrupted(events)
    assert_next_run_works(server, agent)
    assert wait_for(lambda: not [t for t in threading.enumerate() if t.name == "coder-request"], QUIET + 2)
    assert [b["input"][0]["content"][0]["text"] for b in server.bodies] == ["think hard"]
    assert len(server.bodies) == 1


def test_a_connect_that_hangs_times_out_on_its_own_clock(server, make_agent, monkeypatch):
    """Connecting (TCP and TLS) has a timeout of its own, far shorter than a request's (a model may think
    for minutes before its first byte; a SYN is answered at once or not at all), and says so."""
    monkeypatch.setattr("coder.client.CONNECT_TIMEOUT", 0.5)
    agent = make_agent(max_retries=0)
    assert agent.client.openai  # the client (and its import) is built before the clock starts
    with backlog_full(server):
        started = time.monotonic()
        events = run(agent, "hello")
        took = time.monotonic() - started
    assert took < BOUND
    assert events[-1].status == "failed"
    assert [e.message.split(";")[0] for e in events_of(events, "error")] == ["connecting timed out after 0.5 s"]


def test_a_stop_during_a_tls_handshake_ends_the_run_at_once(workspace, api_key):
    """An https endpoint that accepts and never answers the ClientHello: the handshake is dropped at the stop
    (the endpoint sees the connection go), and the same client stops a second one as well."""
    silent = SilentServer()
    agent = Agent(Config(base_url=f"https://127.0.0.1:{silent.port}/v1", model="gpt-5.3-codex", max_retries=3,
                         timeout=QUIET), workspace)
    try:
        for n, prompt in enumerate(["think hard", "again"], 1):
            hello = lambda: len(silent.received) == n and silent.received[-1][:1] == b"\x16"  # noqa: E731
            events, took = stopped_run(agent, prompt, when=hello)
            assert took < BOUND
            assert_interrupted(events)
            assert wait_for(lambda: silent.hangups == n)  # dropped, not left to time out
        assert_valid_history(agent.conversation.items)
        assert len(silent.received) == 2
    finally:
        agent.close()
        silent.close()


def test_a_second_cancel_is_harmless(server, make_agent):
    server.add(Reply([message("never shown")], hold=QUIET), Reply([message("back again")]))
    agent = make_agent()
    events, took = stopped_run(agent, "think hard", when=lambda: len(server.bodies) == 1, twice=True)
    assert took < BOUND
    assert_interrupted(events)
    agent.cancel()  # and once more between runs
    assert_next_run_works(server, agent)


def test_a_stop_during_a_long_retry_after_pause(server, make_agent):
    server.add(Reply(http_status=500, headers={"Retry-After": "30"}), Reply([message("back again")]))
    agent = make_agent(max_retry_wait=60)
    events, took = stopped_run(agent, "go", when=lambda: len(server.bodies) == 1)
    assert took < BOUND
    assert [e.delay for e in events_of(events, "retrying")] == [30]
    assert_interrupted(events)
    assert len(server.bodies) == 1  # the retry never went out
    assert_next_run_works(server, agent)


def test_a_stop_after_tool_calls_leaves_every_call_answered(server, make_agent):
    first = call("run_command", {"command": "echo hi", "timeout_seconds": None, "workdir": None})
    server.add(Reply([first]), Reply([message("never shown")], silence=QUIET), Reply([message("back again")]))
    agent = make_agent()
    events, took = stopped_run(agent, "go", when=lambda: len(server.bodies) == 2)
    assert took < BOUND
    assert_interrupted(events)
    assert [e.call_id for e in events_of(events, "tool.finished")] == [first["call_id"]]
    assert_valid_history(server.bodies[1]["input"])
    assert_next_run_works(server, agent)
    outputs = [i for i in server.bodies[-1]["input"] if i["type"] == "function_call_output"]
    assert [o["call_id"] for o in outputs] == [first["call_id"]]


def test_a_stop_during_a_slow_background_poll(server, make_agent):
    server.add(Reply([message("never")], polls=1000, poll_delay=QUIET), Reply([message("back again")]))
    agent = make_agent(model="gpt-4.1", store=True, background=True)
    polls = lambda: [r for r in server.requests if r["method"] == "GET"]  # noqa: E731
    events, took = stopped_run(agent, "long task", when=lambda: len(polls()) == 1)
    assert took < BOUND
    assert_interrupted(events)
    assert events_of(events, "retrying") == []
    assert len(server.cancelled) == 1  # the endpoint was told to stop the response
    assert wait_for(lambda: "poll" in server.hangups)
    assert_next_run_works(server, agent)


def test_ctrl_c_in_the_repl_while_the_model_is_silent_stops_at_once(server, start):
    """The installed REPL in tmux: its agent runs on a worker thread and Ctrl-C cancels from the UI thread."""
    from tests.test_repl import user_texts

    server.add(Reply([message("never shown")], silence=QUIET), Reply([message("back again")]))
    term = start()
    term.type("think hard")
    term.press("Enter")
    assert wait_for(lambda: len(server.bodies) == 1, 15)
    time.sleep(STOP_AFTER)
    pressed = time.monotonic()
    term.press("C-c")
    term.wait_for(r"\bstopped\b", timeout=QUIET + 5)
    took = time.monotonic() - pressed
    print(f"\nCtrl-C to 'stopped' on the screen: {took:.3f} s")
    assert took < BOUND
    assert "error" not in term.screen().lower()
    assert wait_for(lambda: server.hangups == ["stream"])
    term.type("again")
    term.press("Enter")
    term.wait_for("back again")
    assert_valid_history(server.bodies[1]["input"])
    assert user_texts(server.bodies[1]) == ["think hard", "again"]
