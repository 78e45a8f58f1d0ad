"""The `--json` events are documented: coder/events.schema.json (shipped in the package) names every event and
field with an example, it matches the event classes field for field, and every event of full runs of the
installed `coder exec --json` validates against it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from coder import events as ev
from tests.conftest import coder, rc, write
from tests.core.conftest import run
from tests.scripted_server import Reply, call, message, reasoning

SCHEMA = ev.schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
EVENT_CLASSES = [c for c in vars(ev).values()
                 if isinstance(c, type) and issubclass(c, ev.Event) and c is not ev.Event]


def problems(line: dict) -> list[str]:
    return [f"{line.get('type')}: {e.message}" for e in VALIDATOR.iter_errors(line)]


def test_the_schema_is_a_valid_json_schema_and_its_examples_validate():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for name, definition in SCHEMA["$defs"].items():
        for field, spec in definition["properties"].items():
            assert field == "type" or spec.get("description"), f"{name}.{field} is not described"
        if name == "Usage":
            continue
        assert definition["description"] and definition["examples"], name
        for example in definition["examples"]:
            assert problems(example) == [], example


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.type)
def test_every_event_class_is_documented_field_for_field(cls):
    definition = SCHEMA["$defs"].get(cls.type)
    assert definition is not None, f"{cls.type} is not in events.schema.json"
    fields = {f.name for f in dataclasses.fields(cls)}
    assert set(definition["properties"]) - {"type"} == fields
    assert set(definition["required"]) == fields | {"type"}  # to_dict() writes every field, always


def test_run_started_names_the_schema_version():
    started = ev.RunStarted("m", "/w", {"mode": "read-only", "backend": "none", "detail": "", "network": False}, True)
    assert started.to_dict()["schema_version"] == ev.SCHEMA_VERSION == SCHEMA["version"] == 1


def test_every_event_of_full_exec_runs_validates(server, env, workspace: Path):
    twice = rc("echo twice")
    server.add(
        Reply(http_status=500, headers={"Retry-After": "0"}),  # retrying
        Reply([reasoning("Looking at **the tests**"), message("Checking first.", phase="commentary"),
               twice, dict(twice),  # the same call_id twice: a notice
               rc("echo broken >&2; exit 3"),  # a failing command
               call("run_command", {"command": "sleep 20", "timeout_seconds": 1, "workdir": None}),  # a timeout
               write("notes.txt", "hello\n")]),  # a diff
        Reply([message("All done.")]),
    )
    r = coder("exec", "--json", "do it", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    seen = {line["type"] for line in lines}
    assert {"run.started", "request.started", "retrying", "text.delta", "reasoning.delta", "message.done",
            "tool.started", "tool.finished", "notice", "usage", "turn.done"} <= seen
    assert lines[0]["type"] == "run.started" and lines[0]["schema_version"] == 1
    for line in lines:
        assert problems(line) == []
    finished = [line for line in lines if line["type"] == "tool.finished"]
    assert [f["exit_code"] for f in finished] == [0, 3, None, None]
    assert finished[2]["timed_out"] and finished[3]["diff"]

    # A run that fails, and one the endpoint refuses outright.
    server.add(Reply(http_status=400, error={"error": {"message": "no such thing", "code": "invalid_value"}}))
    r = coder("exec", "--json", "again", env=env, cwd=workspace)
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [line["type"] for line in lines][-2:] == ["error", "turn.done"]
    for line in lines:
        assert problems(line) == []


def test_in_process_events_validate_too(server, make_agent, workspace: Path):
    """What exec never shows (an approval request, a compaction) is documented and valid all the same."""
    (workspace / "f.txt").write_text("x\n")
    server.add(Reply([rc("touch made.txt")]), Reply([message("done", phase="final_answer")]))
    agent = make_agent(approval="untrusted")
    events = []
    for event in agent.run("go"):
        events.append(event)
        if event.type == "approval.request":
            event.approve()
    events += list(agent.compact())
    assert {"approval.request", "context.compacted"} <= {e.type for e in events}
    for event in events:
        assert problems(json.loads(json.dumps(event.to_dict()))) == []
    run(agent, None)


def test_the_docs_name_every_event_and_field():
    docs = (Path(__file__).parents[2] / "docs" / "events.md").read_text()
    for cls in EVENT_CLASSES:
        assert f"## `{cls.type}`" in docs
        section = docs.split(f"## `{cls.type}`", 1)[1].split("\n## ", 1)[0]
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in section, f"{cls.type}.{f.name} is not in docs/events.md"
        assert "```json\n{" in section  # an example
