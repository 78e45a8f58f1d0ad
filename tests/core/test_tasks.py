"""The Python API for scripts: `Agent.run_task` -> Result, output schemas, max_tokens / max_cost, two agents at
once in one process, and `coder.batch(...)` called from Python. All against the scripted endpoint, in-process."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import coder
from coder.agent import Agent
from coder.config import Config, ConfigError
from coder.schemas import SchemaError
from coder.tasks import Result
from tests.conftest import assert_valid_history, write
from tests.scripted_server import Reply, call, message, usage

SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["ok", "broken"]},
        "count": {"type": "integer"},
    },
    "required": ["verdict", "count"],
    "additionalProperties": False,
}


def outputs(items: list[dict[str, Any]]) -> dict[str, str]:
    """call_id -> output text of every function_call_output in a request's input."""
    return {i["call_id"]: i["output"] for i in items if i.get("type") == "function_call_output"}


def first_user_text(body: dict[str, Any]) -> str:
    first = next(i for i in body["input"] if i.get("type") == "message" and i.get("role") == "user")
    return first["content"][0]["text"]


def answered(body: dict[str, Any]) -> bool:
    """Whether the request's last item is a tool call's output (the model is to go on after a tool)."""
    return bool(body["input"]) and body["input"][-1].get("type") == "function_call_output"


# --- run_task -> Result ---

def test_run_task_returns_the_outcome_as_one_value(server, make_agent, workspace: Path):
    server.add(
        Reply([message("Writing it.", phase="commentary"), write("out/new.txt", "hello\n")], usage=usage(1000, 200)),
        Reply([message("Wrote out/new.txt.")], usage=usage(3000, 50, cached=0)),
    )
    agent = make_agent(model="gpt-5.3-codex")
    seen: list[str] = []
    result = agent.run_task("make out/new.txt", on_event=lambda e: seen.append(e.type))

    assert isinstance(result, Result)
    assert result.status == "completed" and result.ok
    assert result.final_text == "Wrote out/new.txt."
    assert result.output is None and result.error is None and result.error_code is None
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (4000, 250, 4250)
    assert result.cost == pytest.approx(4000 * 1.75e-6 + 250 * 14e-6)  # gpt-5.3-codex list prices
    assert result.files_changed == ["out/new.txt"]
    assert (workspace / "out" / "new.txt").read_text() == "hello\n"
    assert result.session_id == agent.session_id and result.session_id
    assert all(b["prompt_cache_key"] == agent.session_id[:64] for b in server.bodies)
    assert seen[0] == "request.started" and seen[-1] == "turn.done" and seen.count("request.started") == 2
    d = result.to_dict()
    assert d["status"] == "completed" and d["files_changed"] == ["out/new.txt"] and d["cost"] == result.cost


def test_files_changed_is_per_run(server, make_agent, workspace: Path):
    server.add(Reply([write("a.txt", "a")]), Reply([message("one")]), Reply([message("nothing to do")]))
    agent = make_agent()
    assert agent.run_task("write a").files_changed == ["a.txt"]
    second = agent.run_task("look only")
    assert second.status == "completed" and second.files_changed == []


# --- output schema ---

def test_an_output_schema_is_sent_strict_and_the_answer_parsed(server, make_agent):
    server.add(Reply([message('{"verdict": "ok", "count": 3}')]))
    agent = make_agent()
    result = agent.run_task("judge it", output_schema=SCHEMA)

    assert server.bodies[0]["text"]["format"] == {"type": "json_schema", "name": "answer", "schema": SCHEMA,
                                                  "strict": True}
    assert result.status == "completed" and result.error is None
    assert result.output == {"verdict": "ok", "count": 3}
    assert result.final_text == '{"verdict": "ok", "count": 3}'


def test_a_schema_given_to_run_task_holds_for_that_task_only(server, make_agent):
    server.add(Reply([message('{"verdict": "ok", "count": 1}')]), Reply([message("plain words")]))
    agent = make_agent()
    first = agent.run_task("judge it", output_schema=SCHEMA)
    second = agent.run_task("now say it in words")
    assert first.output == {"verdict": "ok", "count": 1}
    assert "text" not in server.bodies[1] and second.ok and second.output is None
    assert second.final_text == "plain words"


def test_an_answer_that_does_not_match_fails_the_task(server, make_agent):
    server.add(Reply([message('{"verdict": "maybe", "count": 3}')]))
    result = make_agent().run_task("judge it", output_schema=SCHEMA)

    assert result.status == "failed" and not result.ok
    assert result.error_code == "output_schema"
    assert result.output is None
    assert result.error.startswith("the answer does not match the schema: at $.verdict: 'maybe' is not one of")
    assert "\n" not in result.error
    assert result.final_text == '{"verdict": "maybe", "count": 3}'


def test_an_answer_that_is_not_json_fails_the_task(server, make_agent):
    server.add(Reply([message("Looks fine to me.")]))
    result = make_agent().run_task("judge it", output_schema=SCHEMA)
    assert (result.status, result.error_code, result.output) == ("failed", "output_schema", None)
    assert result.error.startswith("the answer is not JSON (")


@pytest.mark.parametrize("schema, says", [
    ({**SCHEMA, "additionalProperties": True}, 'needs "additionalProperties": false'),
    ({k: v for k, v in SCHEMA.items() if k != "additionalProperties"}, 'needs "additionalProperties": false'),
    ({**SCHEMA, "required": ["verdict"]}, "missing: count"),
    ({"type": "array", "items": {"type": "string"}}, 'root must have "type": "object"'),
], ids=["additional-true", "additional-missing", "not-required", "root-array"])
def test_a_schema_strict_mode_cannot_take_is_refused_before_any_request(server, make_agent, schema, says):
    agent = make_agent()
    with pytest.raises(SchemaError) as e:
        agent.run_task("judge it", output_schema=schema)
    assert says in str(e.value) and "\n" not in str(e.value)
    assert server.requests == []


# --- max_tokens, max_cost ---

def test_max_tokens_stops_before_the_next_request_and_the_run_can_go_on(server, make_agent, workspace: Path):
    tool = write("notes.txt", "step one\n")
    server.add(Reply([tool], usage=usage(80, 20)), Reply([message("All done.")], usage=usage(150, 10)))
    agent = make_agent(max_tokens=50)
    result = agent.run_task("do the steps")

    assert len(server.bodies) == 1
    assert result.status == "max_tokens" and result.error_code == "max_tokens"
    assert result.error == ("stopped after 100 tokens: the run's limit is 50 (max_tokens); "
                            "the conversation can be resumed")
    assert result.usage.total_tokens == 100
    assert (workspace / "notes.txt").read_text() == "step one\n"  # the call it made was carried out ...
    assert result.files_changed == ["notes.txt"]
    items = agent.conversation.items
    assert_valid_history(items)
    assert "notes.txt" in outputs(items)[tool["call_id"]] and "interrupt" not in outputs(items)[tool["call_id"]]

    again = agent.run_task("go on")  # ... and answered: the next request carries it
    assert again.status == "completed" and again.final_text == "All done."
    assert again.usage.total_tokens == 160  # the limit is per run
    assert len(server.bodies) == 2
    assert_valid_history(server.bodies[1]["input"])
    assert tool["call_id"] in outputs(server.bodies[1]["input"])


def test_max_cost_stops_before_the_next_request(server, make_agent):
    server.add(Reply([call("read_file", {"path": "x.txt", "offset": None, "limit": None})], usage=usage(1000, 100)),
               Reply([message("done")]))
    agent = make_agent(model="gpt-5.4", max_cost=0.001)
    result = agent.run_task("read x")

    assert len(server.bodies) == 1
    assert result.status == "max_cost" and result.error_code == "max_cost"
    assert result.cost == pytest.approx(1000 * 2.5e-6 + 100 * 15e-6)  # $0.004
    assert result.error.startswith("stopped after $0.004: the run's limit is $0.001 (max_cost)")
    assert_valid_history(agent.conversation.items)
    assert agent.run_task("go on").status == "completed"
    assert_valid_history(server.bodies[1]["input"])


def test_max_cost_needs_a_price(server, make_agent):
    with pytest.raises(ConfigError) as e:
        make_agent(model="house-model-7b", max_cost=1.0)
    assert "house-model-7b" in str(e.value) and "\n" not in str(e.value)
    assert server.requests == []


def test_a_run_under_its_limits_is_not_stopped(server, make_agent):
    server.add(Reply([write("a.txt", "a")], usage=usage(10, 5)), Reply([message("ok")], usage=usage(10, 5)))
    result = make_agent(max_tokens=31).run_task("go")
    assert result.status == "completed" and len(server.bodies) == 2


# --- two agents at once ---

def test_two_agents_in_two_threads_keep_to_themselves(server, api_key, tmp_path: Path):
    names = {"A": (111, 11), "B": (222, 22)}
    both_asked = threading.Barrier(2)
    problems: list[str] = []

    def responder(body: dict[str, Any]) -> Reply:
        name = "A" if "agent A" in first_user_text(body) else "B"
        inp, out = names[name]
        if answered(body):
            return Reply([message(f"done {name}")], usage=usage(inp, out))
        try:
            both_asked.wait(timeout=20)  # neither first request is answered before both came: they overlap
        except threading.BrokenBarrierError:
            problems.append("the two runs did not overlap")
        return Reply([write(f"{name}.txt", f"from {name}\n")], usage=usage(inp, out))

    server.responder = responder
    results: dict[str, Result] = {}
    agents: dict[str, Agent] = {}
    for name in names:
        ws = tmp_path / f"ws-{name}"
        ws.mkdir()
        agents[name] = Agent(Config(base_url=server.base_url, model="gpt-5.3-codex", max_retries=1), ws)

    def work(name: str) -> None:
        results[name] = agents[name].run_task(f"you are agent {name}: write your file")

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not problems
        for name, (inp, out) in names.items():
            other = "B" if name == "A" else "A"
            r = results[name]
            assert r.status == "completed" and r.final_text == f"done {name}"
            assert r.files_changed == [f"{name}.txt"]
            assert (r.usage.input_tokens, r.usage.output_tokens) == (2 * inp, 2 * out)
            assert r.session_id == agents[name].session_id
            ws = tmp_path / f"ws-{name}"
            assert sorted(p.name for p in ws.iterdir()) == [f"{name}.txt"]
            assert (ws / f"{name}.txt").read_text() == f"from {name}\n"
            text = json.dumps(agents[name].conversation.items)
            assert f"agent {name}" in text and f"agent {other}" not in text and f"{other}.txt" not in text
        keys = {name: {b["prompt_cache_key"] for b in server.bodies if f"agent {name}" in first_user_text(b)}
                for name in names}
        assert len(keys["A"]) == 1 and len(keys["B"]) == 1 and keys["A"] != keys["B"]
        assert len(server.bodies) == 4
    finally:
        for agent in agents.values():
            agent.close()


# --- coder.batch from Python ---

@pytest.fixture
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_key: str) -> Path:
    """A home of the test's own: the batch's sessions are recorded there, and no user config is read."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".state"))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return home


def test_batch_from_python_runs_one_session_per_file(server, user_dirs, workspace: Path, tmp_path: Path):
    targets = ["src/a.py", "src/b.py", "c.py"]
    for t in targets:
        (workspace / t).parent.mkdir(parents=True, exist_ok=True)
        (workspace / t).write_text(f"# {t}\n")

    def responder(body: dict[str, Any]) -> Reply:
        target = first_user_text(body).split("Add a header to ", 1)[1].split(".", 1)[0] + ".py"
        if answered(body):
            return Reply([message(f"headed {target}")], usage=usage(100, 10))
        return Reply([write(target, f"# header\n# {target}\n")], usage=usage(100, 10))

    server.responder = responder
    seen: list[str] = []
    lock = threading.Lock()

    def on_result(r) -> None:
        with lock:
            seen.append(r.target)

    report = coder.batch("Add a header to {file}.", targets, workspace=workspace, jobs=2, state=None,
                         on_result=on_result, base_url=server.base_url, model="gpt-5.3-codex", max_retries=1)

    assert report.ok and report.failed == [] and not report.interrupted
    assert [r.target for r in report.results] == targets
    assert sorted(seen) == sorted(targets)
    for r in report.results:
        assert r.status == "completed" and r.final_text == f"headed {r.target}"
        assert r.files_changed == [r.target]
        assert (workspace / r.target).read_text() == f"# header\n# {r.target}\n"
        assert r.usage.total_tokens == 220
    assert len({r.session_id for r in report.results}) == 3 and all(report.results[i].session_id for i in range(3))
    assert report.usage.total_tokens == 660
    assert len(server.bodies) == 6
    assert report.state_file is None
    assert [p for p in tmp_path.rglob("*") if ".state.json" in p.name] == []


def _header_model(server) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        target = first_user_text(body).split("Add a header to ", 1)[1].split(" ", 1)[0].rstrip(".")
        if answered(body):
            return Reply([message(f"headed {target}")], usage=usage(100, 10))
        return Reply([write(target, f"# header\n# {target}\n")], usage=usage(100, 10))

    server.responder = responder


def test_batch_from_python_never_takes_its_own_state_file_for_a_target(server, user_dirs, workspace: Path,
                                                                        monkeypatch):
    for t in ("a.txt", "b.txt"):
        (workspace / t).write_text(f"{t}\n")
    _header_model(server)
    monkeypatch.chdir(workspace)
    settings = dict(base_url=server.base_url, model="gpt-5.3-codex", max_retries=1)
    first = coder.batch("Add a header to {file} now.", globs=["*.txt"], workspace=workspace, state="run.state.json",
                        **settings)
    assert first.ok and [r.target for r in first.results] == ["a.txt", "b.txt"]
    assert (workspace / "run.state.json").is_file()
    again = coder.batch("Add a header to {file} now.", globs=["*"], workspace=workspace, state="run.state.json",
                        **settings)  # "*" matches the state file now: it is still no target
    assert [(r.target, r.status) for r in again.results] == [("a.txt", "skipped"), ("b.txt", "skipped")]
    assert len(server.bodies) == 4


@pytest.mark.parametrize("settings, message", [
    ({"modle": "gpt-5.4"}, "unknown setting 'modle'"),
    ({"approval": "on-request"}, "approval: a batch has nobody to ask"),
    ({"sandbox": "full-access"}, "--scope file needs the sandbox"),
    ({"max_cost": 1.0, "model": "no-such-model"}, "max_cost needs no-such-model's prices"),
    ({"jobs": 0}, "--jobs must be at least 1"),
])
def test_batch_from_python_refuses_bad_arguments_in_one_line(server, user_dirs, workspace: Path, settings, message):
    (workspace / "a.txt").write_text("a\n")
    with pytest.raises(ConfigError) as info:
        coder.batch("Add a header to {file}.", ["a.txt"], workspace=workspace,
                    **{"base_url": server.base_url, "model": "gpt-5.3-codex", **settings})
    assert message in str(info.value) and "\n" not in str(info.value)
    assert server.bodies == []


def test_a_callback_that_raises_stops_the_batch_and_is_raised_after(server, user_dirs, workspace: Path):
    targets = [f"f{i}.txt" for i in range(6)]
    for t in targets:
        (workspace / t).write_text(f"{t}\n")
    _header_model(server)

    def on_result(result) -> None:
        raise RuntimeError(f"the script's own bug at {result.target}")

    with pytest.raises(RuntimeError, match="the script's own bug at f0.txt"):
        coder.batch("Add a header to {file} now.", targets, workspace=workspace, jobs=1, on_result=on_result,
                    base_url=server.base_url, model="gpt-5.3-codex")
    assert len(server.bodies) < 2 * len(targets)  # the batch stopped: not every target was run
    assert (workspace / "f5.txt").read_text() == "f5.txt\n"


def test_a_custom_tool_survives_arguments_nested_past_the_parser(server, make_agent):
    calls: list[dict] = []
    server.add(Reply([call("note", "[" * 100000 + "]" * 100000)]), Reply([message("done")]))
    agent = make_agent()
    agent.add_tool("note", "Take a note.", {"type": "object", "properties": {"text": {"type": "string"}},
                                            "required": ["text"], "additionalProperties": False}, calls.append)
    result = agent.run_task("note it")
    assert result.ok and result.final_text == "done" and calls == []
    assert list(outputs(server.inputs[1]).values()) == ["Error: the arguments for note are nested too deeply."]


def test_a_state_file_that_cannot_be_written_makes_the_report_not_ok(server, user_dirs, workspace: Path,
                                                                     tmp_path: Path):
    """The first target's result takes the state file's folder away: the batch goes on, and the report says
    the state could not be kept (a re-run would not know what this run did), instead of ok."""
    import shutil

    for t in ("a.txt", "b.txt"):
        (workspace / t).write_text(f"{t}\n")
    _header_model(server)
    folder = tmp_path / "state"
    folder.mkdir()
    report = coder.batch("Add a header to {file} now.", ["a.txt", "b.txt"], workspace=workspace, jobs=1,
                         state=folder / "run.state.json", on_result=lambda r: shutil.rmtree(folder, True),
                         base_url=server.base_url, model="gpt-5.3-codex")
    assert not report.ok and report.state_error is not None
    assert report.state_error.startswith(f"the state file {folder / 'run.state.json'} could not be written")
    assert [r.target for r in report.results] == ["a.txt", "b.txt"]
    assert report.results[0].status == "completed"


def test_a_lifted_file_scope_lets_undo_see_what_commands_change(server, user_dirs, repo: Path):
    """A resumed batch session switched to full access: its commands may write anything, so its checkpoints
    count anything they change again (the scope filter follows the sandbox in force, not the first one)."""
    from coder.sessions import Session
    from sandbox.policy import Mode
    from tests.conftest import rc

    (repo / "a.py").write_text("a = 1\n")
    (repo / "b.py").write_text("b = 1\n")
    server.add(Reply([rc("echo more >> b.py")]), Reply([message("done")]))
    agent = Agent(Config(base_url=server.base_url, model="gpt-5.3-codex", max_retries=1), repo,
                  writable_files=["a.py"])
    session = Session.create(agent)
    try:
        agent.set_sandbox(Mode.FULL_ACCESS)
        result = session.run_task("append to b")
        assert result.ok and (repo / "b.py").read_text() == "b = 1\nmore\n"
        assert result.files_changed == ["b.py"]
        undone = session.undo()
        assert (repo / "b.py").read_text() == "b = 1\n" and "b.py" in undone.restored
    finally:
        session.close()
        agent.close()
