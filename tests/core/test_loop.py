"""The agent loop against the scripted endpoint: replay, parallel calls, follow-ups, request shape."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from coder.config import Config, ConfigError
from coder.agent import Agent
from coder.tools import TOOLS
from coder.tools.base import Param, Tool
from tests.conftest import assert_stopped, heartbeat
from tests.core.conftest import API_KEY, assert_valid_history, events_of, run
from tests.scripted_server import Reply, call, message, reasoning, usage


def test_four_parallel_calls_are_answered_in_one_request(server, make_agent, workspace: Path):
    for name in "abc":
        (workspace / f"{name}.txt").write_text(f"content of {name}\n")
    calls = [
        call("read_file", {"path": "a.txt"}),
        call("read_file", {"path": "b.txt"}),
        call("search_file", {"pattern": "content", "path": "."}),
        call("list_dir", {"path": "."}),
    ]
    server.add(Reply(calls), Reply([message("done")]))
    events = run(make_agent(), "look around")

    assert len(server.bodies) == 2
    second = server.bodies[1]["input"]
    outputs = [i for i in second if i["type"] == "function_call_output"]
    assert [o["call_id"] for o in outputs] == [c["call_id"] for c in calls]
    assert "content of a" in outputs[0]["output"] and "content of b" in outputs[1]["output"]
    assert "c.txt:1:content of c" in outputs[2]["output"]
    assert "a.txt" in outputs[3]["output"]
    # the calls themselves are replayed verbatim, right before their outputs
    assert second[1:5] == calls
    assert server.bodies[0]["parallel_tool_calls"] is True
    assert len(events_of(events, "tool.finished")) == 4
    assert_valid_history(second)


def test_reasoning_items_replayed_verbatim_across_turns(server, make_agent, workspace: Path):
    (workspace / "f.txt").write_text("x\n")
    r1 = reasoning("Looking at the file", encrypted="gAAAAA-first-opaque-blob==")
    r1["provider_extra"] = {"keep": ["me", 1]}  # unknown fields survive too
    c1 = call("read_file", {"path": "f.txt"})
    r2 = reasoning("", encrypted="gAAAAA-second-opaque-blob==")
    c2 = call("list_dir", {"path": "."})
    r3 = reasoning("Done", encrypted="gAAAAA-third==")
    final = message("All good.", phase="final_answer")
    server.add(Reply([r1, c1]), Reply([r2, c2]), Reply([r3, final]))
    agent = make_agent()
    run(agent, "inspect")

    b = server.bodies
    assert b[1]["input"][1:3] == [r1, c1]
    assert b[2]["input"][1:3] == [r1, c1]
    assert b[2]["input"][4:6] == [r2, c2]
    # byte-for-byte: the encrypted blobs travel exactly as received
    assert json.dumps(b[2]["input"][1]) == json.dumps(r1)
    for body in b:
        assert body["store"] is False
        assert body["include"] == ["reasoning.encrypted_content"]
    # a second user turn replays everything, the final message (with its phase) included
    server.add(Reply([message("again")]))
    run(agent, "and now?")
    last = server.bodies[3]["input"]
    assert last[:-1] == b[2]["input"] + [r3, final]
    assert last[-1]["role"] == "user"
    assert_valid_history(last)


def test_follow_up_goes_after_the_tool_outputs(server, make_agent, workspace: Path):
    c = call("run_command", {"command": "echo working", "timeout_seconds": None, "workdir": None})
    server.add(Reply([c]), Reply([message("ok, using tabs")]))
    agent = make_agent()
    seen = []
    for event in agent.run("format the code"):
        seen.append(event)
        if event.type == "tool.started":
            agent.queue("use tabs, not spaces")
    second = server.bodies[1]["input"]
    assert [i["type"] for i in second[-3:]] == ["function_call", "function_call_output", "message"]
    assert second[-1]["content"][0]["text"] == "use tabs, not spaces"
    delivered = events_of(seen, "followup.delivered")
    assert [e.text for e in delivered] == ["use tabs, not spaces"]
    assert_valid_history(second)


def test_follow_up_queued_at_the_last_moment_starts_another_request(server, make_agent):
    server.add(Reply([message("first answer")]), Reply([message("second answer")]))
    agent = make_agent()
    events = []
    for event in agent.run("hello"):
        events.append(event)
        if event.type == "message.done" and event.text == "first answer":
            agent.queue("one more thing")
    assert len(server.bodies) == 2
    assert server.bodies[1]["input"][-1]["content"][0]["text"] == "one more thing"
    assert events[-1].final_text == "second answer"


def test_second_user_turn_continues_the_same_conversation(server, make_agent):
    server.add(Reply([message("one")]), Reply([message("two")]))
    agent = make_agent()
    run(agent, "first")
    run(agent, "second")
    first, second = server.bodies
    assert second["input"][: len(first["input"])] == first["input"]
    assert [i.get("role") for i in second["input"]] == ["user", "assistant", "user"]


def test_usage_tracked_per_request_and_in_total(server, make_agent, workspace: Path):
    (workspace / "f.txt").write_text("x\n")
    server.add(
        Reply([call("read_file", {"path": "f.txt"})], usage=usage(100, 10, cached=40, reasoning_tokens=5)),
        Reply([message("done")], usage=usage(150, 20, cached=90, reasoning_tokens=7)),
    )
    events = run(make_agent(), "go")
    reports = events_of(events, "usage")
    assert [r.request.input_tokens for r in reports] == [100, 150]
    total = events[-1].usage
    assert (total.input_tokens, total.cached_tokens, total.output_tokens, total.reasoning_tokens) == (250, 130, 30, 12)
    assert total.total_tokens == 280


def test_max_turns_stops_a_runaway_loop_with_a_valid_history(server, make_agent, workspace: Path):
    (workspace / "f.txt").write_text("x\n")
    server.add(*[Reply([call("read_file", {"path": "f.txt"})]) for _ in range(5)])
    events = run(make_agent(max_turns=3), "loop forever")
    assert len(server.bodies) == 3
    assert events[-1].status == "max_turns"
    assert "max_turns" in events_of(events, "error")[0].message


def test_malformed_arguments_and_unknown_tool_become_outputs(server, make_agent):
    bad_json = call("read_file", '{"path": "x.txt"')
    unknown = call("delete_everything", {"path": "/"})
    wrong_type = call("read_file", {"path": 42})
    extra_key = call("list_dir", {"path": ".", "recursive": True})
    server.add(Reply([bad_json, unknown, wrong_type, extra_key]), Reply([message("recovered")]))
    events = run(make_agent(), "go")

    outs = {i["call_id"]: i["output"] for i in server.bodies[1]["input"] if i["type"] == "function_call_output"}
    assert "not valid JSON" in outs[bad_json["call_id"]]
    assert "unknown tool 'delete_everything'" in outs[unknown["call_id"]] and "read_file" in outs[unknown["call_id"]]
    assert "'path' must be string" in outs[wrong_type["call_id"]]
    assert "unknown argument(s) recursive" in outs[extra_key["call_id"]]
    assert events[-1].ok


def test_a_tool_that_raises_becomes_an_output(server, make_agent, monkeypatch):
    def explode(ctx, args):
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(TOOLS, "read_file", Tool("read_file", "x", {"path": Param("string", "p")}, explode))
    c = call("read_file", {"path": "a"})
    server.add(Reply([c]), Reply([message("ok")]))
    events = run(make_agent(), "go")
    out = server.bodies[1]["input"][-1]["output"]
    assert out == "Error: read_file failed unexpectedly: RuntimeError: disk on fire"
    assert events[-1].ok


def test_request_shape_zdr_tool_choice_and_provider_options(server, make_agent):
    server.add(Reply([message("a")]))
    run(make_agent(model="gpt-5.3-codex", store=True, tool_choice="read_file",
                   extra_headers={"X-Project-ID": "proj-7"}, extra_body={"service_tier": "flex", "input": "x"},
                   reasoning_effort="high"), "hi")
    body = server.bodies[0]
    assert body["store"] is False and body["include"] == ["reasoning.encrypted_content"]  # codex forces ZDR
    assert body["tool_choice"] == {"type": "function", "name": "read_file"}
    assert body["service_tier"] == "flex"
    assert isinstance(body["input"], list)  # extra_body cannot replace what coder sets
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["stream"] is True
    assert sorted(t["name"] for t in body["tools"]) == sorted(TOOLS)
    for tool in body["tools"]:
        params = tool["parameters"]
        assert tool["strict"] is True and params["additionalProperties"] is False
        assert params["required"] == list(params["properties"])
    headers = {k.lower(): v for k, v in server.requests[0]["headers"].items()}
    assert headers["x-project-id"] == "proj-7"
    assert headers["authorization"] == f"Bearer {API_KEY}"


def test_non_codex_model_follows_store_setting(server, make_agent):
    server.add(Reply([message("a")]), Reply([message("b")]))
    run(make_agent(model="gpt-4.1", store=True), "hi")
    run(make_agent(model="gpt-4.1"), "hi")
    stored, zdr = server.bodies
    assert stored["store"] is True and "include" not in stored and "reasoning" not in stored
    assert zdr["store"] is False and zdr["include"] == ["reasoning.encrypted_content"]


@pytest.mark.parametrize("choice", ["auto", "required", "none"])
def test_tool_choice_values(server, make_agent, choice):
    server.add(Reply([message("a")]))
    run(make_agent(tool_choice=choice), "hi")
    assert server.bodies[0]["tool_choice"] == choice


def test_unknown_tool_choice_is_a_config_error(workspace, api_key):
    with pytest.raises(ConfigError, match="tool_choice"):
        Agent(Config(tool_choice="rm_rf"), workspace)


def test_commands_never_see_the_api_key(server, make_agent, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_should_not_leak")
    monkeypatch.setenv("INNOCENT_NAME", API_KEY)
    c = call("run_command", {"command": "env", "timeout_seconds": None, "workdir": None})
    server.add(Reply([c]), Reply([message("ok")]))
    run(make_agent(), "print env")
    out = server.bodies[1]["input"][-1]["output"]
    assert "Exit code: 0" in out and "PATH=" in out
    assert API_KEY not in out and "ghp_should_not_leak" not in out and "OPENAI_API_KEY" not in out


def test_cancel_from_another_thread_kills_the_command_and_answers_the_call(server, make_agent, workspace: Path):
    beat = workspace / "beat"
    c = call("run_command", {"command": f"{heartbeat(beat)} sleep 30", "timeout_seconds": None, "workdir": None})
    server.add(Reply([c]))
    agent = make_agent()
    events = []
    for event in agent.run("slow"):
        events.append(event)
        if event.type == "tool.started":
            threading.Timer(0.5, agent.cancel).start()
    assert events[-1].status == "interrupted"
    assert_stopped(beat)
    items = agent.conversation.items
    assert items[-1]["type"] == "function_call_output" and "interrupted" in items[-1]["output"].lower()
    assert_valid_history(items)
    # the next message works and replays a valid history
    server.add(Reply([message("fine")]))
    assert run(agent, "next")[-1].ok
    assert_valid_history(server.bodies[-1]["input"])


def test_cancel_while_a_slow_response_streams_ends_the_turn_at_once(server, make_agent):
    server.add(Reply([message("word " * 200)], event_delay=0.2))  # ~30 s of streaming
    agent = make_agent()
    started = time.monotonic()
    events = []
    for event in agent.run("talk"):
        events.append(event)
        if event.type == "text.delta" and len(events_of(events, "text.delta")) == 1:
            threading.Timer(0.3, agent.cancel).start()
    assert time.monotonic() - started < 5
    assert events[-1].type == "turn.done" and events[-1].status == "interrupted"
    assert not events_of(events, "retrying")
    assert agent.conversation.items[-1]["role"] == "user"  # nothing half-received was kept
    server.add(Reply([message("fine")]))
    assert run(agent, "next")[-1].ok
    assert_valid_history(server.bodies[-1]["input"])
