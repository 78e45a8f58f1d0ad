"""Faults: retries with backoff and Retry-After, broken streams, 4xx, failed/incomplete, background mode."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from coder.agent import Agent
import pytest

from coder.config import Config, ConfigError
from tests.core.conftest import assert_valid_history, events_of, run
from tests.scripted_server import Reply, call, message, reasoning

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
    server.add(Reply([message("x")], status="failed", error={"code": "invalid_prompt", "message": "prompt refused"}))
    failed = run(make_agent(**FAST), "one")
    assert failed[-1].status == "failed" and "prompt refused" in events_of(failed, "error")[0].message

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
    with pytest.raises(ConfigError, match="needs stored responses, which Zero Data Retention models do not allow"):
        make_agent(model="gpt-5.3-codex", background=True)
    with pytest.raises(ConfigError, match="set store = true, or pass --background"):
        make_agent(model="gpt-4.1", background=True)
    assert server.bodies == []


def test_a_call_id_given_twice_runs_once_and_every_call_is_answered_once(server, make_agent, workspace: Path):
    same = {"command": "echo ran >> log.txt", "timeout_seconds": None, "workdir": None}
    repeat = [call("run_command", same, call_id="call_twice"), call("run_command", same, call_id="call_twice")]
    clash = [call("run_command", {"command": "echo a >> clash.txt", "timeout_seconds": None, "workdir": None},
                  call_id="call_clash"),
             call("read_file", {"path": "log.txt"}, call_id="call_clash")]
    server.add(Reply([*repeat, *clash]), Reply([message("done")]))
    events = run(make_agent(**FAST), "go")

    assert events[-1].ok and events[-1].final_text == "done"
    assert (workspace / "log.txt").read_text() == "ran\n"  # the exact repeat ran once
    assert not (workspace / "clash.txt").exists()  # calls that differ under one id: neither ran
    notices = events_of(events, "notice")
    assert len(notices) == 1 and "call_twice, call_clash" in notices[0].message
    sent = server.bodies[1]["input"]
    assert_valid_history(sent)
    assert [i["call_id"] for i in sent if i["type"] == "function_call"] == ["call_twice", "call_clash"]
    outputs = {i["call_id"]: i["output"] for i in sent if i["type"] == "function_call_output"}
    assert outputs["call_twice"].startswith("Exit code: 0")
    assert outputs["call_clash"].startswith("Error: not run: call_id call_clash was given to more than one call")


@pytest.mark.parametrize("code", ["server_error", "rate_limit_exceeded"])
def test_a_failed_response_with_a_passing_fault_is_retried(server, make_agent, code):
    server.add(Reply([], status="failed", error={"code": code, "message": "try later"}), Reply([message("ok")]))
    events = run(make_agent(**FAST), "hi")
    retries = events_of(events, "retrying")
    assert len(retries) == 1 and code in retries[0].reason and "try later" in retries[0].reason
    assert len(server.bodies) == 2 and server.bodies[0] == server.bodies[1]
    assert events[-1].ok and events[-1].final_text == "ok"
    first, second = _keys(server)
    assert first and second and first != second  # that response is over: the same key would replay the failure


def test_a_failed_response_with_a_bad_request_code_fails_once(server, make_agent):
    server.add(Reply([], status="failed", error={"code": "invalid_prompt", "message": "refused"}))
    events = run(make_agent(**FAST), "hi")
    assert len(server.bodies) == 1 and not events_of(events, "retrying")
    assert [e.message for e in events_of(events, "error")] == ["the response failed: invalid_prompt refused"]
    assert events[-1].status == "failed"


def _keys(server) -> list[str]:
    return [r["headers"].get("idempotency-key") for r in server.requests if r["method"] == "POST"]


def test_retries_of_one_request_carry_one_idempotency_key_and_409_is_waited_on(server, make_agent):
    in_progress = Reply(http_status=409, headers={"Retry-After": "0.1"},
                        error={"error": {"message": "a request with this Idempotency-Key is in progress"}})
    server.add(Reply([message("lost")], cut_after=4), in_progress, in_progress, Reply([message("one")]),
               Reply([message("two")]))
    agent = make_agent(max_retries=1)  # the 409s do not spend retries
    first = run(agent, "first")
    assert first[-1].ok and first[-1].final_text == "one"
    assert [r.delay for r in events_of(first, "retrying")][1:] == [0.1, 0.1]
    assert "HTTP 409" in events_of(first, "retrying")[1].reason
    assert run(agent, "second")[-1].ok
    keys = _keys(server)
    assert len(keys) == 5 and keys[0] and len(set(keys[:4])) == 1  # every try of the first request: one key
    assert keys[4] and keys[4] != keys[0]  # the next request: a key of its own


def test_a_409_that_never_ends_gives_up_after_the_request_timeout(server, make_agent):
    server.add(*[Reply(http_status=409, headers={"Retry-After": "0.1"},
                       error={"error": {"message": "Idempotency-Key in use"}}) for _ in range(40)])
    started = time.monotonic()
    events = run(make_agent(max_retries=1, timeout=0.5), "hi")
    assert time.monotonic() - started < 5
    assert events[-1].status == "failed"
    errors = events_of(events, "error")
    assert len(errors) == 1 and errors[0].message.startswith("HTTP 409: Idempotency-Key in use (still after 0.5 s")
    assert 3 <= len(server.bodies) <= 10


def test_a_retry_after_past_max_retry_wait_gives_up_at_once(server, make_agent):
    server.add(Reply(http_status=429, headers={"Retry-After": "3600"}, error={"error": {"message": "quota"}}))
    agent = make_agent(**FAST)
    guard = threading.Timer(5, agent.cancel)  # before the cap, this was an hour's silent sleep
    guard.start()
    try:
        events = run(agent, "hi")
    finally:
        guard.cancel()
    assert events[-1].status == "failed" and not events_of(events, "retrying") and len(server.bodies) == 1
    assert [e.message for e in events_of(events, "error")] == [
        "HTTP 429: quota (the endpoint asks to wait 3600 s before retrying, more than max_retry_wait = 60 s)"]


def test_waits_are_capped_by_max_retry_wait(server, make_agent):
    server.add(*[Reply(http_status=503, error={"error": {"message": "busy"}}) for _ in range(3)], Reply([message("ok")]))
    events = run(make_agent(max_retries=3, max_retry_wait=0.05), "hi")
    delays = [r.delay for r in events_of(events, "retrying")]
    assert len(delays) == 3 and all(d <= 0.05 for d in delays)  # backoff alone would be 0.5, 1, 2 s
    assert events[-1].ok


def test_reasoning_without_encrypted_content_is_left_out_under_zdr(server, make_agent, workspace: Path):
    (workspace / "f.txt").write_text("x\n")
    bare = reasoning("thinking")
    del bare["encrypted_content"]  # what a provider that ignores include sends
    kept = reasoning("more", encrypted="gAAAA-kept==")
    c = call("read_file", {"path": "f.txt"})
    server.add(Reply([bare, c]), Reply([kept, message("done")]), Reply([message("again")]))
    agent = make_agent()
    first = run(agent, "read it")
    second = run(agent, "and again")
    assert first[-1].ok and second[-1].ok
    notices = events_of(first, "notice") + events_of(second, "notice")
    assert len(notices) == 1 and "encrypted_content" in notices[0].message
    items = agent.conversation.items
    assert bare in items  # kept in the conversation (and so the transcript), only not sent
    assert server.bodies[1]["input"] == [items[0], c, items[3]]
    assert server.bodies[2]["input"] == [i for i in items[:-1] if i != bare]
    assert_valid_history(server.bodies[2]["input"])
