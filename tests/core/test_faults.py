"""Faults: retries with backoff and Retry-After, broken streams, 4xx, failed/incomplete, background mode."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from coder.agent import Agent
import pytest

from coder.config import Config, ConfigError
from tests.core.conftest import assert_valid_history, events_of, run
from tests.scripted_server import Reply, call, message

FAST = {"max_retries": 3}


def test_429_is_retried_honouring_retry_after(server, make_agent):
    server.add(
        Reply(http_status=429, headers={"Retry-After": "0.2"}, error={"error": {"message": "slow down"}}),
        Reply([message("ok")]),
    )
    events = run(make_agent(**FAST), "hi")
    retries = events_of(events, "retrying")
    assert len(retries) == 1 and retries[0].delay == 0.2 and "HTTP 429: slow down" in retries[0].reason
    assert len(server.bodies) == 2 and server.bodies[0] == server.bodies[1]
    assert events[-1].ok and events[-1].final_text == "ok"


def test_5xx_is_retried_with_backoff_then_gives_up(server, make_agent):
    server.add(*[Reply(http_status=503, error={"error": {"message": "overloaded"}}) for _ in range(3)])
    events = run(make_agent(max_retries=2), "hi")
    assert len(server.bodies) == 3
    assert [r.attempt for r in events_of(events, "retrying")] == [1, 2]
    assert events[-1].status == "failed"
    assert "HTTP 503: overloaded" in events_of(events, "error")[0].message


def test_4xx_is_reported_and_ends_the_run(server, make_agent):
    server.add(Reply(http_status=400, error={"error": {"message": "Invalid 'input[3]': bad item"}}))
    events = run(make_agent(**FAST), "hi")
    assert len(server.bodies) == 1
    assert events[-1].status == "failed"
    assert events_of(events, "error")[0].message == "HTTP 400: Invalid 'input[3]': bad item"


def test_connection_refused_is_retried_then_reported(workspace, api_key):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    agent = Agent(Config(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1), workspace)
    events = run(agent, "hi")
    agent.close()
    assert len(events_of(events, "retrying")) == 1
    assert events[-1].status == "failed" and "connection error" in events_of(events, "error")[0].message


def test_broken_stream_is_retried_and_no_tool_runs_twice(server, make_agent, workspace: Path):
    c = call("run_command", {"command": "echo ran >> log.txt", "timeout_seconds": None, "workdir": None})
    server.add(
        Reply([c]),
        Reply([message("partial text that will be lost")], cut_after=6),  # connection dropped mid-stream
        Reply([message("x")], end_early=3),  # stream ends cleanly but without response.completed
        Reply([message("done")]),
    )
    events = run(make_agent(**FAST), "append a line")
    assert (workspace / "log.txt").read_text() == "ran\n"
    assert len(server.bodies) == 4
    assert server.bodies[1] == server.bodies[2] == server.bodies[3]
    assert len(events_of(events, "retrying")) == 2
    assert events[-1].ok and events[-1].final_text == "done"
    assert_valid_history(server.bodies[3]["input"])


def test_stream_error_event(server, make_agent):
    server.add(
        Reply([message("x")], stream_error={"code": "server_error", "message": "boom"}),
        Reply([message("ok")]),
        Reply([message("x")], stream_error={"code": "invalid_prompt", "message": "nope"}),
    )
    agent = make_agent(**FAST)
    first = run(agent, "one")
    assert first[-1].ok and len(events_of(first, "retrying")) == 1
    second = run(agent, "two")
    assert second[-1].status == "failed" and "nope" in events_of(second, "error")[0].message


def test_failed_and_incomplete_are_reported_not_success(server, make_agent, workspace: Path):
    (workspace / "a.txt").write_text("a\n")
    server.add(Reply([message("x")], status="failed", error={"code": "server_error", "message": "model crashed"}))
    failed = run(make_agent(**FAST), "one")
    assert failed[-1].status == "failed" and "model crashed" in events_of(failed, "error")[0].message

    c = call("read_file", {"path": "a.txt"})
    server.add(Reply([message("cut"), c], status="incomplete"))
    agent = make_agent(**FAST)
    incomplete = run(agent, "two")
    assert incomplete[-1].status == "incomplete"
    assert "max_output_tokens" in events_of(incomplete, "error")[0].message
    # the unanswered call got an output, so the history is still valid
    assert agent.conversation.items[-1]["call_id"] == c["call_id"]
    assert_valid_history(agent.conversation.items)


def test_background_mode_polls_until_done(server, make_agent):
    server.add(Reply([message("background answer")], polls=3))
    events = run(make_agent(model="gpt-4.1", store=True, background=True), "long task")
    assert events[-1].ok and events[-1].final_text == "background answer"
    posts = server.bodies
    assert posts[0]["background"] is True and posts[0]["store"] is True and "stream" not in posts[0]
    gets = [r for r in server.requests if r["method"] == "GET"]
    assert len(gets) == 4


def test_background_mode_cancels_on_interrupt(server, make_agent):
    server.add(Reply([message("never")], polls=1000))
    agent = make_agent(model="gpt-4.1", store=True, background=True)
    threading.Timer(0.6, agent.cancel).start()
    events = run(agent, "long task")
    assert events[-1].status == "interrupted"
    assert len(server.cancelled) == 1


def test_background_needs_store(server, make_agent):
    with pytest.raises(ConfigError, match="store=true"):
        make_agent(model="gpt-5.3-codex", background=True)
    assert server.bodies == []
