"""`Agent.add_tool`: a script's own function tool next to the seven, offered strict, called in-process,
its return value (or its failure) sent back as the call's output; bad registrations refused in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_valid_history
from tests.scripted_server import Reply, call, message

LOOKUP = {
    "type": "object",
    "properties": {
        "word": {"type": "string"},
        "lang": {"type": ["string", "null"], "enum": ["en", "fr", None]},
    },
    "required": ["word", "lang"],
    "additionalProperties": False,
}


def output_of(server, call_id: str, request: int = 1) -> str:
    [out] = [i["output"] for i in server.bodies[request]["input"]
             if i.get("type") == "function_call_output" and i["call_id"] == call_id]
    return out


def run_one_call(server, agent, name: str, args: dict[str, Any] | str):
    """The model calls `name` with `args`, then answers; the run's Result and the call's output."""
    c = call(name, args)
    server.add(Reply([c]), Reply([message("finished")]))
    result = agent.run_task("use the tool")
    assert result.status == "completed" and result.final_text == "finished", result.error
    assert len(server.bodies) == 2
    assert_valid_history(server.bodies[1]["input"])
    return result, output_of(server, c["call_id"])


def test_the_tool_is_offered_strict_next_to_the_built_in_ones(server, make_agent):
    server.add(Reply([message("nothing to look up")]))
    agent = make_agent()
    agent.add_tool("lookup", "Look a word up in the glossary.", LOOKUP, lambda args: "x")
    agent.run_task("hello")

    tools = server.bodies[0]["tools"]
    assert tools[-1] == {"type": "function", "name": "lookup", "description": "Look a word up in the glossary.",
                         "parameters": LOOKUP, "strict": True}
    names = [t["name"] for t in tools]
    assert names.count("lookup") == 1 and {"read_file", "write_file", "run_command"} <= set(names)


def test_the_function_gets_the_parsed_arguments_and_its_string_goes_back(server, make_agent):
    got: list[dict[str, Any]] = []

    def lookup(args: dict[str, Any]) -> str:
        got.append(args)
        return f"{args['word']}: a small animal"

    agent = make_agent()
    agent.add_tool("lookup", "Look a word up.", LOOKUP, lookup)
    _result, out = run_one_call(server, agent, "lookup", {"word": "cat", "lang": None})
    assert got == [{"word": "cat", "lang": None}]
    assert out == "cat: a small animal"


def test_a_dict_return_value_goes_back_as_json(server, make_agent):
    value = {"word": "chat", "senses": ["cat", "talk"], "n": 2, "note": "é"}
    agent = make_agent()
    agent.add_tool("lookup", "Look a word up.", LOOKUP, lambda args: value)
    _result, out = run_one_call(server, agent, "lookup", {"word": "chat", "lang": "fr"})
    assert json.loads(out) == value


def test_a_function_that_raises_gives_an_error_output_and_the_run_goes_on(server, make_agent):
    def lookup(args: dict[str, Any]) -> str:
        raise ValueError(f"no such word: {args['word']}")

    agent = make_agent()
    agent.add_tool("lookup", "Look a word up.", LOOKUP, lookup)
    _result, out = run_one_call(server, agent, "lookup", {"word": "zzz", "lang": "en"})
    assert out == "Error: lookup failed: ValueError: no such word: zzz"


@pytest.mark.parametrize("args, says", [
    ({"word": 5, "lang": None}, "at $.word: 5 is not of type 'string'"),
    ({"word": "cat"}, "at $: 'lang' is a required property"),
    ({"word": "cat", "lang": "de"}, "at $.lang: 'de' is not one of"),
    ({"word": "cat", "lang": None, "extra": 1}, "at $: Additional properties are not allowed"),
    ('{"word": "cat", ', "are not valid JSON"),
], ids=["wrong-type", "missing", "not-in-enum", "extra", "not-json"])
def test_arguments_that_do_not_match_are_an_error_output_and_the_function_is_not_called(
        server, make_agent, args, says):
    called: list[Any] = []
    agent = make_agent()
    agent.add_tool("lookup", "Look a word up.", LOOKUP, lambda a: called.append(a) or "x")
    _result, out = run_one_call(server, agent, "lookup", args)
    assert called == []
    assert out.startswith("Error: ") and "lookup" in out and says in out, out


def test_custom_and_built_in_calls_in_one_response_are_each_answered(server, make_agent, workspace: Path):
    (workspace / "a.txt").write_text("alpha\n")
    agent = make_agent()
    agent.add_tool("lookup", "Look a word up.", LOOKUP, lambda a: "looked up")
    mine = call("lookup", {"word": "cat", "lang": None})
    builtin = call("read_file", {"path": "a.txt", "offset": None, "limit": None})
    server.add(Reply([mine, builtin]), Reply([message("finished")]))
    assert agent.run_task("both").status == "completed"
    assert_valid_history(server.bodies[1]["input"])
    assert output_of(server, mine["call_id"]) == "looked up"
    assert "alpha" in output_of(server, builtin["call_id"])


@pytest.mark.parametrize("name, schema, function, says", [
    ("has space", LOOKUP, str, "use 1-64 letters, digits, _ or -"),
    ("", LOOKUP, str, "use 1-64 letters, digits, _ or -"),
    ("x" * 65, LOOKUP, str, "use 1-64 letters, digits, _ or -"),
    ("read_file", LOOKUP, str, "'read_file' is already taken"),
    ("run_command", LOOKUP, str, "'run_command' is already taken"),
    ("lookup2", {**LOOKUP, "additionalProperties": True}, str, 'needs "additionalProperties": false'),
    ("lookup2", {**LOOKUP, "required": ["word"]}, str, "missing: lang"),
    ("lookup2", {"type": "string"}, str, 'root must have "type": "object"'),
    ("lookup2", LOOKUP, "not a function", "the function is not callable"),
], ids=["space", "empty", "too-long", "read_file", "run_command", "additional", "not-required", "root-string",
        "not-callable"])
def test_a_bad_registration_is_refused_in_one_line(make_agent, name, schema, function, says):
    agent = make_agent()
    before = list(agent.tools)
    with pytest.raises(ValueError) as e:
        agent.add_tool(name, "A tool.", schema, function)
    assert says in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert agent.tools == before and name not in agent.custom_tools


def test_the_same_name_twice_is_refused(make_agent):
    agent = make_agent()
    agent.add_tool("lookup", "Look a word up.", LOOKUP, str)
    with pytest.raises(ValueError) as e:
        agent.add_tool("lookup", "Another.", LOOKUP, str)
    assert str(e.value) == "tool name 'lookup' is already taken"
    assert [t["name"] for t in agent.tools].count("lookup") == 1
