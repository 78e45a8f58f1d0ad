"""`--completion-window`: background mode with background_options, as the OpenAI client sends it, polled to the
end; and the shared back-off a batch's agents use (coder.throttle.Gate)."""

from __future__ import annotations

import threading
import time

from coder.throttle import Gate
from tests.core.conftest import run
from tests.scripted_server import Reply, message


def test_a_completion_window_goes_in_background_options_and_is_polled(server, make_agent):
    server.add(Reply([message("done later")], polls=2))
    agent = make_agent(model="gpt-4.1", store=True, background=True, completion_window="2h")
    events = run(agent, "a long task")
    assert events[-1].ok and events[-1].final_text == "done later"
    body = server.bodies[0]
    assert body["background"] is True and "stream" not in body
    assert body["background_options"] == {"completion_window": "2h", "continuation_id": agent.session_id[:64]}
    polls = [r for r in server.requests if r["method"] == "GET"]
    assert len(polls) == 3  # two answered in_progress, then the final state


def test_no_background_options_without_a_window_or_without_background(server, make_agent):
    server.add(Reply([message("a")]), Reply([message("b")]))
    run(make_agent(model="gpt-4.1", store=True, background=True), "x")
    run(make_agent(model="gpt-4.1", completion_window="8h"), "y")  # not background: the window means nothing
    assert [("background_options" in b, b.get("stream")) for b in server.bodies] == [(False, None), (False, True)]


def test_a_rate_limit_in_a_pool_pauses_every_agent_and_costs_no_retry(server, make_agent):
    """Five 429s in a row against max_retries = 1: with a gate the request waits them out and succeeds."""
    gate = Gate()
    for _ in range(5):
        server.add(Reply(http_status=429, headers={"Retry-After": "0.05"},
                         error={"error": {"message": "slow down", "type": "rate_limit_error",
                                          "code": "rate_limit_exceeded"}}))
    server.add(Reply([message("through")]))
    agent = make_agent(model="gpt-4.1", max_retries=1)
    agent.gate = gate
    events = run(agent, "x")
    assert events[-1].ok and events[-1].final_text == "through"
    assert gate.limited_count == 5
    assert [e.type for e in events].count("retrying") == 5


def test_without_a_gate_the_same_storm_fails_after_max_retries(server, make_agent):
    for _ in range(5):
        server.add(Reply(http_status=429, headers={"Retry-After": "0.05"},
                         error={"error": {"message": "slow down", "type": "rate_limit_error"}}))
    events = run(make_agent(model="gpt-4.1", max_retries=1), "x")
    assert events[-1].status == "failed"
    assert len(server.bodies) == 2


def test_the_gate_holds_other_threads_until_the_pause_ends():
    gate = Gate()
    pause = gate.limited(0.3, cap=10)
    assert 0.25 <= pause <= 0.3 + 1e-6
    waited: list[float] = []
    t = threading.Thread(target=lambda: waited.append(gate.wait(threading.Event())))
    started = time.monotonic()
    t.start()
    t.join(5)
    assert waited and time.monotonic() - started >= 0.25
    gate.passed()
    assert gate.wait(threading.Event()) == 0.0  # the pause is over: nobody waits


def test_a_stop_ends_a_wait_at_the_gate():
    gate = Gate()
    gate.limited(30, cap=60)
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    started = time.monotonic()
    try:
        gate.wait(cancel)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the wait did not end with the stop")
    assert time.monotonic() - started < 10


def test_one_wave_of_429s_is_one_strike_however_many_sessions_met_it():
    """Eight sessions limited during the same pause double it once, not eight times, and never past the cap."""
    gate = Gate()
    pauses = [gate.limited(None, cap=4.0) for _ in range(8)]
    assert max(pauses) <= 1.2 and gate.limited_count == 8  # first strike: about FIRST_PAUSE (1 s, +-20 %)
    gate._until = 0.0  # that pause is over: the next 429 is a new wave
    assert 1.6 <= gate.limited(None, cap=4.0) <= 2.4
    for _ in range(6):
        gate._until = 0.0
        assert gate.limited(None, cap=4.0) <= 4.0  # jitter within the cap
