"""`coder exec` for scripts, run as installed: --output-schema (a checked JSON answer on stdout), --max-tokens and
--max-cost (a run that stops before its next request and can be resumed), --prompt-file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_valid_history, coder, write
from tests.scripted_server import Reply, call, message, usage

SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["ok", "broken"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["verdict", "reasons"],
    "additionalProperties": False,
}
ANSWER = {"verdict": "broken", "reasons": ["the API changed", "tests fail: ü"]}
FORMAT = {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True}


def schema_file(tmp_path: Path, content: Any = SCHEMA, name: str = "verdict.json") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def user_text(body: dict[str, Any]) -> str:
    first = next(i for i in body["input"] if i.get("type") == "message" and i.get("role") == "user")
    return first["content"][0]["text"]


def one_line(text: str) -> str:
    assert text.count("\n") == 1 and text.endswith("\n"), repr(text)
    assert "Traceback" not in text
    return text


# --- --output-schema ---

def test_a_valid_answer_is_printed_as_json_and_nothing_else(server, env, workspace: Path, tmp_path: Path):
    server.add(Reply([message(json.dumps(ANSWER))]))
    r = coder("exec", "-q", "--output-schema", str(schema_file(tmp_path)), "does it break the API?",
              env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == ANSWER
    assert r.stdout == json.dumps(ANSWER, ensure_ascii=False, indent=2) + "\n"
    assert r.stderr == ""
    [body] = server.bodies
    assert body["text"]["format"] == FORMAT


def test_a_fenced_answer_is_printed_as_plain_json(server, env, workspace: Path, tmp_path: Path):
    server.add(Reply([message("```json\n" + json.dumps(ANSWER) + "\n```")]))
    r = coder("exec", "-q", "--output-schema", str(schema_file(tmp_path)), "judge", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == ANSWER


def test_the_answer_goes_to_the_output_file_as_json_too(server, env, workspace: Path, tmp_path: Path):
    server.add(Reply([message(json.dumps(ANSWER))]))
    out = tmp_path / "verdict-out.json"
    r = coder("exec", "-q", "--output-schema", str(schema_file(tmp_path)), "-o", str(out), "judge",
              env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text()) == ANSWER


@pytest.mark.parametrize("answer, says", [
    ('{"verdict": "maybe", "reasons": []}',
     "coder: error: the answer does not match the schema: at $.verdict: 'maybe' is not one of ['ok', 'broken']\n"),
    ('{"verdict": "ok", "reasons": [1]}',
     "coder: error: the answer does not match the schema: at $.reasons[0]: 1 is not of type 'string'\n"),
    ("It looks fine.", "coder: error: the answer is not JSON (Expecting value at line 1 column 1)\n"),
    ("[" * 100000 + "]" * 100000, "coder: error: the answer is JSON nested too deeply to read\n"),
], ids=["enum", "nested", "not-json", "too-deep"])
def test_an_answer_that_does_not_match_is_exit_1_and_one_line(server, env, workspace: Path, tmp_path: Path,
                                                              answer, says):
    server.add(Reply([message(answer)]))
    r = coder("exec", "-q", "--output-schema", str(schema_file(tmp_path)), "judge", env=env, cwd=workspace)
    assert r.returncode == 1
    assert r.stdout == ""
    assert one_line(r.stderr) == says
    assert len(server.bodies) == 1


@pytest.mark.parametrize("content, says", [
    ("{not json", "not JSON (Expecting property name enclosed in double quotes at line 1)"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
     'at $: strict: true needs "additionalProperties": false on every object'),
    ({**SCHEMA, "required": ["verdict"]}, 'at $: strict: true needs every property in "required" (missing: reasons;'),
    ({"type": "array"}, 'the schema\'s root must have "type": "object"'),
    ({**SCHEMA, "properties": {**SCHEMA["properties"], "n": {"oneOf": [{"type": "integer"}]}},
      "required": [*SCHEMA["required"], "n"]}, "at $.n: 'oneOf' is not supported with strict: true"),
], ids=["not-json", "no-additional", "not-required", "root-array", "oneOf"])
def test_a_schema_file_strict_mode_cannot_take_is_exit_2_before_anything(server, env, workspace: Path,
                                                                         tmp_path: Path, content, says):
    path = schema_file(tmp_path, content)
    r = coder("exec", "-q", "--output-schema", str(path), "judge", env=env, cwd=workspace)
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert line.startswith(f"coder: error: --output-schema {path}: ") and says in line, line
    assert r.stdout == ""
    assert server.requests == []


def test_a_missing_schema_file_is_exit_2(server, env, workspace: Path, tmp_path: Path):
    r = coder("exec", "-q", "--output-schema", str(tmp_path / "nope.json"), "judge", env=env, cwd=workspace)
    assert r.returncode == 2
    assert one_line(r.stderr) == f"coder: error: --output-schema {tmp_path / 'nope.json'}: cannot read: " \
                                 "No such file or directory\n"
    assert server.requests == []


def test_json_events_carry_the_output_in_turn_done(server, env, workspace: Path, tmp_path: Path):
    server.add(Reply([message(json.dumps(ANSWER))]))
    r = coder("exec", "--json", "--output-schema", str(schema_file(tmp_path)), "judge", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]  # every line is an event: no answer mixed in
    assert events[0]["type"] == "run.started" and events[-1]["type"] == "turn.done"
    done = events[-1]
    assert done["status"] == "completed" and done["output"] == ANSWER and done["files_changed"] == []
    assert server.bodies[0]["text"]["format"] == FORMAT


def test_json_events_of_a_mismatch_say_output_schema(server, env, workspace: Path, tmp_path: Path):
    server.add(Reply([message('{"verdict": "maybe", "reasons": []}')]))
    r = coder("exec", "--json", "--output-schema", str(schema_file(tmp_path)), "judge", env=env, cwd=workspace)
    assert r.returncode == 1
    events = [json.loads(line) for line in r.stdout.splitlines()]
    [error] = [e for e in events if e["type"] == "error"]
    assert error["code"] == "output_schema" and error["message"].startswith("the answer does not match the schema")
    assert events[-1]["type"] == "turn.done"
    assert events[-1]["status"] == "failed" and events[-1]["output"] is None


# --- --max-tokens, --max-cost ---

def test_max_tokens_stops_after_the_first_request_and_last_goes_on(server, env, workspace: Path):
    tool = write("step.txt", "one\n")
    server.add(Reply([tool], usage=usage(80, 20)), Reply([message("All done.")], usage=usage(150, 10)))
    r = coder("exec", "-q", "--max-tokens", "50", "do the steps", env=env, cwd=workspace)
    assert r.returncode == 1
    assert r.stdout == ""
    assert one_line(r.stderr) == ("coder: error: stopped after 100 tokens: the run's limit is 50 (max_tokens); "
                                  "the conversation can be resumed\n")
    assert len(server.bodies) == 1
    assert (workspace / "step.txt").read_text() == "one\n"  # the call it made was carried out

    r = coder("exec", "-q", "--last", "go on", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "All done.\n"
    assert len(server.bodies) == 2
    history = server.bodies[1]["input"]
    assert_valid_history(history)
    [out] = [i["output"] for i in history if i.get("type") == "function_call_output"]
    assert "step.txt" in out and "interrupt" not in out.lower()
    assert user_text(server.bodies[1]) == "do the steps"  # the same conversation, with "go on" after it


def test_max_tokens_in_json_events(server, env, workspace: Path):
    server.add(Reply([write("step.txt", "one\n")], usage=usage(80, 20)))
    r = coder("exec", "--json", "--max-tokens", "50", "do the steps", env=env, cwd=workspace)
    assert r.returncode == 1
    events = [json.loads(line) for line in r.stdout.splitlines()]
    [error] = [e for e in events if e["type"] == "error"]
    assert error["code"] == "max_tokens"
    assert events[-1]["type"] == "turn.done" and events[-1]["status"] == "max_tokens"
    assert events[-1]["usage"]["total_tokens"] == 100 and events[-1]["files_changed"] == ["step.txt"]
    assert [e["type"] for e in events].count("request.started") == 1


def test_max_cost_on_a_model_without_a_price_is_exit_2(server, env, workspace: Path):
    r = coder("exec", "-q", "-m", "house-model-7b", "--max-cost", "1", "hello", env=env, cwd=workspace)
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert line.startswith("coder: error: max_cost needs house-model-7b's prices"), line
    assert server.requests == []


def test_max_cost_stops_after_the_first_request(server, env, workspace: Path):
    (workspace / "x.txt").write_text("x\n")
    server.add(Reply([call("read_file", {"path": "x.txt", "offset": None, "limit": None})], usage=usage(1000, 100)),
               Reply([message("never sent")]))
    r = coder("exec", "-q", "-m", "gpt-5.4", "--max-cost", "0.000001", "read x", env=env, cwd=workspace)
    assert r.returncode == 1
    assert r.stdout == ""
    line = one_line(r.stderr)
    # $0.004: 1000 input tokens at $2.50 and 100 output tokens at $15 per 1M
    assert line.startswith("coder: error: stopped after $0.004: the run's limit is $0.000001 (max_cost)"), line
    assert line.endswith(" (max_cost); the conversation can be resumed\n"), line
    assert len(server.bodies) == 1


@pytest.mark.parametrize("flag, value, says", [
    ("--max-tokens", "0", "max_tokens"),
    ("--max-cost", "0", "max_cost"),
    ("--max-cost", "-1", "max_cost"),
])
def test_a_limit_that_makes_no_sense_is_exit_2(server, env, workspace: Path, flag, value, says):
    r = coder("exec", "-q", "-m", "gpt-5.4", flag, value, "hello", env=env, cwd=workspace)
    assert r.returncode == 2
    assert says in one_line(r.stderr)
    assert server.requests == []


# --- --prompt-file ---

def test_prompt_file_sends_the_files_text(server, env, workspace: Path, tmp_path: Path):
    task = "Rename `foo` to `bar` everywhere.\n\nKeep the tests passing: ü ✓\n"
    path = tmp_path / "task.md"
    path.write_text(task, encoding="utf-8")
    server.add(Reply([message("ok")]))
    r = coder("exec", "-q", "--prompt-file", str(path), env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok\n"
    assert user_text(server.bodies[0]) == task


def test_prompt_and_prompt_file_together_is_exit_2(server, env, workspace: Path, tmp_path: Path):
    path = tmp_path / "task.md"
    path.write_text("a task\n")
    r = coder("exec", "-q", "--prompt-file", str(path), "another task", env=env, cwd=workspace)
    assert r.returncode == 2
    assert "--prompt-file" in one_line(r.stderr)
    assert server.requests == []


@pytest.mark.parametrize("make, says", [
    (lambda p: None, "cannot read"),
    (lambda p: p.write_bytes(b"\xff\xfe bad"), "not UTF-8 text"),
    (lambda p: p.write_bytes(b"text\0more"), "binary"),
], ids=["missing", "not-utf8", "binary"])
def test_a_prompt_file_that_cannot_be_used_is_exit_2(server, env, workspace: Path, tmp_path: Path, make, says):
    path = tmp_path / "task.md"
    make(path)
    r = coder("exec", "-q", "--prompt-file", str(path), env=env, cwd=workspace)
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert line.startswith(f"coder: error: --prompt-file {path}: ") and says in line, line
    assert server.requests == []


def test_no_prompt_at_all_is_exit_2(server, env, workspace: Path):
    r = coder("exec", "-q", env=env, cwd=workspace)
    assert r.returncode == 2
    assert "no task" in one_line(r.stderr)
    assert server.requests == []
