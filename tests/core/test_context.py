"""Long sessions against the scripted endpoint: compaction, recovery from an overflow, shrinking old outputs,
prompt caching (a stable key, byte-stable prefixes) and chaining with previous_response_id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coder import trust
from coder.compaction import LATEST_PREFIX, SUMMARY_PREFIX, SUMMARY_PROMPT
from coder.context import SHRINK_KEEP
from sandbox.policy import Mode
from tests.core.conftest import assert_valid_history, events_of, run
from tests.scripted_server import Reply, call, message, prefix_shares, reasoning, tokens_of

BIG = 8000  # characters of each file the model reads: about 2,000 tokens of output


@pytest.fixture(autouse=True)
def own_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What coder remembers about endpoints lives in a state folder of the test's own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


# Tokens of the instructions and the tool schemas when the windows in these tests were chosen. The windows
# hold that much plus a few files' worth; `sized` moves them by what the fixed part has grown since.
FIXED_WHEN_CHOSEN = 1850


@pytest.fixture
def sized(make_agent):
    agent = make_agent()
    grown = len(json.dumps([agent.instructions, agent.tools, []])) // 4 - FIXED_WHEN_CHOSEN
    return lambda n: n + grown


def files(workspace: Path, n: int) -> None:
    for i in range(n):
        (workspace / f"f{i}.txt").write_text(f"file {i}\n" + f"line {i} of padding text\n" * (BIG // 24))


def reads(n: int, start: int = 0) -> list[Reply]:
    """n responses, each reading the next file (with reasoning, as a codex model sends it)."""
    return [Reply([reasoning(f"step {i}"), call("read_file", {"path": f"f{i}.txt"})]) for i in range(start, start + n)]


def user_texts(items: list[dict]) -> list[str]:
    return ["\n".join(p["text"] for p in i["content"]) for i in items
            if i.get("type") == "message" and i.get("role") == "user"]


def test_endpoint_compaction_at_the_threshold_replays_its_output_verbatim(sized, server, make_agent, workspace: Path):
    files(workspace, 8)
    server.window = sized(14_000)
    server.add(*reads(8), Reply([message("all read")]))
    agent = make_agent(context_window=sized(14_000))
    events = run(agent, "read every file")

    assert events[-1].status == "completed"
    compacted = events_of(events, "context.compacted")
    assert compacted and all(e.strategy == "endpoint" and e.reason == "auto" for e in compacted)
    assert all(e.tokens_after < e.tokens_before for e in compacted)
    assert len(server.compactions) == len(compacted)
    sent = server.compactions[0]
    assert sent["model"] == agent.config.model and sent["prompt_cache_key"] == agent.session_id
    # it was sent the whole history, and the next request starts with what it returned, verbatim
    n = next(i for i, body in enumerate(server.inputs) if any(x["type"] == "compaction" for x in body))
    assert sent["input"][: len(server.inputs[n - 1])] == server.inputs[n - 1]
    assert len(sent["input"]) > len(server.inputs[n - 1])  # and what came since
    after = server.inputs[n]
    kinds = [x["type"] for x in after]
    assert kinds.index("compaction") == len(user_texts(after))  # the user's messages, then the compaction item
    assert user_texts(after)[0].startswith("read every file")
    threshold = int(sized(14_000) * 0.85)
    for body in server.bodies:  # every request stayed under the window
        assert tokens_of(body) <= sized(14_000)
    assert tokens_of(server.bodies[n]) < threshold
    assert_valid_history(after)


def test_local_compaction_summarizes_and_keeps_the_users_words(sized, server, make_agent, workspace: Path):
    files(workspace, 6)
    server.window = sized(12_000)

    def summary(body: dict) -> Reply:
        assert body["tool_choice"] == "none"  # an ordinary request: the same tools (the cached prefix), none called
        assert SUMMARY_PROMPT[:60] in body["input"][-1]["content"][0]["text"]
        return Reply([reasoning("summing up"), message("NOTE: read f0 to f3; next read f4 and f5.")])

    server.add(*reads(4), summary, *reads(2, start=4), Reply([message("done")]))
    agent = make_agent(context_window=sized(12_000), compaction="local")
    events = run(agent, "read the files one by one")

    assert events[-1].status == "completed", [e.to_dict() for e in events_of(events, "error")]
    assert not server.compactions  # the endpoint's compaction was not asked for
    [compacted] = events_of(events, "context.compacted")
    assert compacted.strategy == "local"
    assert not [e for e in events_of(events, "text.delta") if "NOTE" in e.text]  # the summary is not the answer
    n = next(i for i, items in enumerate(server.inputs) if any(SUMMARY_PREFIX[:30] in t for t in user_texts(items)))
    after = server.inputs[n]
    texts = user_texts(after)
    assert texts[0].startswith("read the files one by one")
    assert texts[1] == SUMMARY_PREFIX + "NOTE: read f0 to f3; next read f4 and f5."
    assert texts[2].startswith(LATEST_PREFIX) and "file 3" in texts[2]  # the latest tool output comes along
    assert not [x for x in after if x["type"] in ("function_call", "function_call_output", "reasoning")]
    assert_valid_history(after)


def test_auto_falls_back_to_local_and_remembers_the_endpoint_has_no_compaction(sized, server, make_agent, workspace: Path):
    files(workspace, 6)
    server.window = sized(14_000)
    server.compact_status = 404
    server.add(*reads(4), Reply([message("NOTE one")]), *reads(1, start=4), Reply([message("done")]))
    events = run(make_agent(context_window=sized(14_000)), "go")
    assert events[-1].status == "completed"
    assert [e.strategy for e in events_of(events, "context.compacted")] == ["local"]
    assert len(server.compactions) == 1  # tried once
    assert trust.compact_supported(server.base_url) is False
    assert any("no compaction" in e.message for e in events_of(events, "notice"))

    # the next session knows: straight to a local summary
    server.add(*reads(4), Reply([message("NOTE two")]), Reply([message("done")]))
    events = run(make_agent(context_window=sized(14_000)), "again")
    assert [e.strategy for e in events_of(events, "context.compacted")] == ["local"]
    assert len(server.compactions) == 1


def test_context_length_exceeded_compacts_and_retries_once(sized, server, make_agent, workspace: Path):
    files(workspace, 6)
    server.window = sized(11_000)  # the model is not in the table: coder only learns the limit from the refusal
    server.add(*reads(6), Reply([message("done")]))
    agent = make_agent(model="house-model-7b", store=False)
    events = run(agent, "read them all")

    assert events[-1].status == "completed"
    [compacted] = events_of(events, "context.compacted")
    assert compacted.reason == "overflow" and compacted.strategy == "endpoint"
    notices = [e.message for e in events_of(events, "notice")]
    assert any("over the model's context window" in m for m in notices)
    # the compaction request would not have fit either: its oldest items were left out, the task kept
    assert any("oldest items out of the compaction" in m for m in notices)
    sent = server.compactions[0]["input"]
    assert sent[0]["content"][0]["text"] == "read them all" and tokens_of(server.compactions[0]) < sized(11_000)
    assert not events_of(events, "error")
    # four reads, the one refused, then the refused request again (it fits now), two more reads and the answer
    assert len(server.bodies) == 8 and len(server.inputs) == 7
    assert agent.window and agent.window < sized(12_913)  # learned: under the size refused, the threshold under 11k


def test_a_compaction_that_does_not_help_stops_instead_of_looping(server, make_agent, workspace: Path):
    files(workspace, 3)
    liar = {"input_tokens": 500_000, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 10,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 500_010}
    for reply in reads(3):
        reply.usage = liar
        server.add(reply)
    agent = make_agent(context_window=100_000)
    events = run(agent, "go")

    assert events[-1].status == "failed"
    assert len(events_of(events, "context.compacted")) == 1  # once, not again and again
    [error] = events_of(events, "error")
    assert "stopped instead of compacting again" in error.message
    assert len(server.bodies) == 2
    assert_valid_history(agent.conversation.items)


def test_old_long_outputs_are_shrunk_once_in_a_batch(sized, server, make_agent, workspace: Path):
    files(workspace, 9)
    server.window = 1_000_000  # usage counts the real size
    server.add(*reads(9), Reply([message("done")]))
    agent = make_agent(context_window=sized(40_000))  # shrinking starts at half the threshold: ~17k tokens
    events = run(agent, "read")
    assert events[-1].status == "completed"
    assert not events_of(events, "context.compacted")
    shrinks = events_of(events, "context.shrunk")
    assert shrinks and all(e.tokens_after < e.tokens_before for e in shrinks)

    last = server.inputs[-1]
    outputs = [x["output"] for x in last if x["type"] == "function_call_output"]
    shrunk = [o for o in outputs if "characters of this output were dropped" in o]
    assert shrunk and len(shrunk) <= len(outputs) - 3  # the three most recent stay whole
    assert all(len(o) < 2 * SHRINK_KEEP + 200 for o in shrunk)
    assert all(len(o) > BIG for o in outputs[-3:])
    # each output changed once: a shrunk output is the same bytes in every later request
    seen: dict[str, str] = {}
    for items in server.inputs:
        for x in items:
            if x["type"] == "function_call_output" and "were dropped" in x["output"]:
                assert seen.setdefault(x["call_id"], x["output"]) == x["output"]
    assert_valid_history(last)


def test_a_sandbox_change_is_a_message_and_the_prefix_stays(server, make_agent, workspace: Path):
    files(workspace, 2)
    server.add(*reads(1), Reply([message("one")]), *reads(1, start=1), Reply([message("two")]))
    agent = make_agent()
    run(agent, "first")
    before = agent.instructions
    agent.set_sandbox(Mode.READ_ONLY)
    run(agent, "second")

    assert agent.instructions == before
    assert all(b["instructions"] == before for b in server.bodies)
    assert prefix_shares(server.raw_bodies) == [1.0, 1.0, 1.0]
    third = server.bodies[2]["input"]
    note = next(x for x in third if x.get("role") == "developer")
    assert "read-only" in note["content"][0]["text"]
    # byte for byte: each item is sent as it was the first time
    raw = [b.decode() for b in server.raw_bodies]
    first_input = raw[1][raw[1].index('"input":[') + 9:-2]
    assert first_input in raw[2] and first_input in raw[3]


def test_cache_key_headers_and_request_ids(server, make_agent, workspace: Path):
    from coder import __version__

    server.add(Reply([call("list_dir", {"path": "."})]), Reply([message("ok")]))
    agent = make_agent(verbosity="low")
    events = run(agent, "look")
    assert all(b["text"] == {"verbosity": "low"} for b in server.bodies)
    assert {b["prompt_cache_key"] for b in server.bodies} == {agent.session_id}
    headers = server.headers()
    assert {h["session_id"] for h in headers} == {agent.session_id}
    assert all(h["user-agent"].startswith(f"coder/{__version__} OpenAI/Python ") for h in headers)
    ids = [h["x-client-request-id"] for h in headers]
    assert len(set(ids)) == 2
    assert [e.request_id for e in events_of(events, "request.started")] == ids
    assert all(b["reasoning"]["effort"] == "medium" for b in server.bodies)  # the documented default


def test_chaining_sends_only_new_items_and_falls_back_to_full_replay(server, make_agent, workspace: Path):
    files(workspace, 3)
    server.add(*reads(3), Reply([message("done")]))
    agent = make_agent(model="gpt-5.2", store=True, chain=True)
    events = []
    for event in agent.run("read"):
        events.append(event)
        if event.type == "tool.finished" and len(server.bodies) == 2:
            server.stored.clear()  # the endpoint forgot the stored responses
    bodies = server.bodies
    assert "previous_response_id" not in bodies[0]
    assert bodies[1]["previous_response_id"] and [x["type"] for x in bodies[1]["input"]] == ["function_call_output"]
    # the third request was refused (unknown previous response) and sent again whole
    assert bodies[2].get("previous_response_id") and "previous_response_id" not in bodies[3]
    assert len(bodies[3]["input"]) > 4
    assert any("sending the whole conversation" in e.message for e in events_of(events, "notice"))
    assert events[-1].status == "completed"


def test_the_transcript_gives_back_the_history_exactly_after_shrinks_and_a_compaction(sized, server, make_agent, workspace):
    from coder.sessions import TRANSCRIPT, Session
    from coder.transcript import load

    files(workspace, 22)
    server.window = sized(24_000)
    server.add(*reads(22), Reply([message("done")]))
    session = Session.create(make_agent(context_window=sized(24_000)))
    events = list(session.run("read them"))
    assert events[-1].status == "completed"
    assert events_of(events, "context.shrunk") and events_of(events, "context.compacted")
    session.close()
    loaded = load(session.directory / TRANSCRIPT)
    assert loaded.items() == session.agent.conversation.items
    assert [r["type"] for r in loaded.records].count("compaction") == len(events_of(events, "context.compacted"))


@pytest.mark.parametrize("how", ["failed response", "error event"])
def test_an_overflow_reported_inside_the_stream_is_recovered_too(server, make_agent, workspace, how):
    files(workspace, 2)
    too_long = {"code": "context_length_exceeded", "message": "Your input exceeds the context window of this model."}
    refusal = Reply(status="failed", error=too_long) if how == "failed response" else Reply(stream_error=too_long)
    server.add(*reads(2), refusal, Reply([message("done")]))
    events = run(make_agent(), "read")
    assert events[-1].status == "completed"
    [compacted] = events_of(events, "context.compacted")
    assert compacted.reason == "overflow" and compacted.strategy == "endpoint"
    assert server.bodies[-1]["input"] == server.compactions[0]["input"][:1] + [
        i for i in server.bodies[-1]["input"] if i["type"] == "compaction"]


def test_a_sandbox_change_survives_a_local_compaction_and_a_new_conversation(server, make_agent, workspace):
    files(workspace, 1)
    server.add(*reads(1), Reply([message("read")]), Reply([message("NOTE: read f0")]))
    agent = make_agent(compaction="local")
    run(agent, "read f0")
    agent.set_sandbox(Mode.READ_ONLY)
    events = list(agent.compact())
    assert events_of(events, "context.compacted")
    notes = [i for i in agent.conversation.items if i.get("role") == "developer"]
    assert notes and "read-only" in notes[-1]["content"][0]["text"]  # still told, after the summary
    assert "workspace-write" in agent.instructions  # the instructions, as sent, are not rewritten

    agent.reset()  # a new conversation: nothing sent yet, so the instructions describe the sandbox now in force
    assert "read-only" in agent.instructions.split("Sandbox:")[1].splitlines()[0]


def test_an_endpoint_that_reports_no_usage_is_judged_by_the_estimate(sized, server, make_agent, workspace):
    files(workspace, 10)
    none = {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 0,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}
    replies = [*reads(10), Reply([message("done")])]
    for reply in replies:
        reply.usage = none
    server.add(*replies)
    events = run(make_agent(context_window=sized(14_000)), "read")
    assert events[-1].status == "completed", [e.message for e in events_of(events, "error")]
    assert len(events_of(events, "context.compacted")) >= 2  # compacted more than once, never stopped


def test_a_cut_for_the_compaction_request_never_parts_a_call_from_its_reasoning_or_output():
    from coder.compaction import fitting
    from tests.conftest import assert_valid_history

    items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "the task"}]}]
    for i in range(6):
        c = call("read_file", {"path": f"f{i}.txt"})
        items += [reasoning(f"r{i}"), message(f"reading {i}"), c,
                  {"type": "function_call_output", "call_id": c["call_id"], "output": "x" * 300}]
        if i == 3:
            items.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "more"}]})
    total = len(json.dumps(items))
    for budget in range(0, total + 200, 37):
        kept = fitting(items, budget)
        assert kept[0] is items[0]  # the task is always kept
        rest = kept[1:]
        if rest:
            start = items.index(rest[0])
            assert rest == items[start:]
            assert rest[0]["type"] in ("reasoning", "message") and items[start - 1]["type"] != "reasoning"
            assert len(json.dumps(kept)) <= budget + len(json.dumps(items[0]))
        assert_valid_history(kept)


def test_ctrl_c_stops_the_endpoints_compaction_at_once_and_keeps_the_history(server, make_agent, workspace):
    import threading
    import time

    server.add(Reply([message("hello")]))
    agent = make_agent()
    run(agent, "hi")
    before = list(agent.conversation.items)
    server.compact_delay = 5
    agent.cancel_event.clear()
    threading.Timer(0.3, agent.cancel).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        list(agent.compact())
    assert time.monotonic() - started < 3.0  # the compaction would take 5 s
    assert agent.conversation.items == before
