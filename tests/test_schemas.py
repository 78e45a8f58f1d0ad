"""coder/schemas.py on its own: which schemas strict mode can take (and where one goes wrong), why an instance
does not match, and how a model's final answer is read as JSON."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from coder.schemas import SchemaError, check_strict, load, mismatch, parse_answer

NESTED = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Review",
    "type": "object",
    "properties": {
        "findings": {"type": "array", "minItems": 0, "items": {"$ref": "#/$defs/finding"}},
        "summary": {"anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}]},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["findings", "summary", "score"],
    "additionalProperties": False,
    "$defs": {
        "finding": {
            "type": "object",
            "description": "one problem",
            "properties": {
                "file": {"type": "string"},
                "line": {"type": ["integer", "null"]},
                "severity": {"type": "string", "enum": ["low", "high"]},
                "spans": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"start": {"type": "integer"}, "end": {"type": "integer"}},
                    "required": ["start", "end"],
                    "additionalProperties": False,
                }},
                "fix": {"anyOf": [
                    {"type": "null"},
                    {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
                     "additionalProperties": False},
                ]},
            },
            "required": ["file", "line", "severity", "spans", "fix"],
            "additionalProperties": False,
        },
    },
}


def broken(path: list, key: str, value=None, delete: bool = False) -> dict:
    """NESTED with one change at `path` (a list of keys into it)."""
    schema = copy.deepcopy(NESTED)
    node = schema
    for step in path:
        node = node[step]
    if delete:
        del node[key]
    else:
        node[key] = value
    return schema


def refusal(schema) -> str:
    with pytest.raises(SchemaError) as e:
        check_strict(schema, "the schema")
    message = str(e.value)
    assert "\n" not in message
    return message


def test_a_nested_strict_schema_is_accepted():
    check_strict(NESTED, "the schema")  # no exception
    check_strict({"type": "object", "properties": {}, "required": [], "additionalProperties": False}, "x")


@pytest.mark.parametrize("schema, says", [
    ([], "the schema: the schema must be a JSON object"),
    ("object", "the schema: the schema must be a JSON object"),
    ({"type": "array", "items": {"type": "string"}}, 'the schema: the schema\'s root must have "type": "object"'),
    ({"anyOf": [{"type": "object"}]}, 'the schema: the schema\'s root must have "type": "object"'),
])
def test_the_root_must_be_an_object_schema(schema, says):
    assert refusal(schema) == says


@pytest.mark.parametrize("path, key, value, delete, says", [
    ([], "additionalProperties", None, True, 'at $: strict: true needs "additionalProperties": false'),
    ([], "additionalProperties", True, False, 'at $: strict: true needs "additionalProperties": false'),
    (["$defs", "finding"], "additionalProperties", {"type": "string"}, False,
     'finding: strict: true needs "additionalProperties": false'),
    (["$defs", "finding", "properties", "spans", "items"], "additionalProperties", None, True,
     'finding.spans.items: strict: true needs "additionalProperties": false'),
    (["$defs", "finding", "properties", "fix", "anyOf", 1], "additionalProperties", None, True,
     'finding.fix.anyOf[1]: strict: true needs "additionalProperties": false'),
    ([], "required", ["findings", "score"], False,
     'at $: strict: true needs every property in "required" (missing: summary;'),
    (["$defs", "finding", "properties", "spans", "items"], "required", ["start"], False,
     'finding.spans.items: strict: true needs every property in "required" (missing: end;'),
    (["properties", "score"], "oneOf", [{"type": "number"}], False,
     "at $.score: 'oneOf' is not supported with strict: true"),
    (["properties", "summary", "anyOf", 0], "patternProperties", {"x": {}}, False,
     "at $.summary.anyOf[0]: 'patternProperties' is not supported with strict: true"),
    (["$defs", "finding", "properties", "file"], "allOf", [{"type": "string"}], False,
     "finding.file: 'allOf' is not supported with strict: true"),
], ids=["no-additional", "additional-true", "additional-schema", "nested-items", "inside-anyOf", "not-required",
        "nested-not-required", "oneOf", "patternProperties", "allOf"])
def test_each_problem_is_refused_naming_its_place(path, key, value, delete, says):
    # A place under $defs is matched by its tail: "at $.finding..." today; "at $.$defs.finding..." would do too.
    message = refusal(broken(path, key, value, delete))
    assert message.startswith("the schema: ") and says in message, message


def test_a_schema_that_is_not_valid_json_schema_is_refused():
    message = refusal(broken(["properties", "score"], "type", "nubmer"))
    assert message.startswith("the schema: not a valid JSON Schema at properties/score/type: ")
    message = refusal(broken(["properties", "findings"], "minItems", -1))
    assert message.startswith("the schema: not a valid JSON Schema at properties/findings/minItems: ")


def test_mismatch_names_the_place():
    assert mismatch({"findings": [], "summary": None, "score": 0.5}, NESTED) is None
    bad = {"findings": [{"file": "a.py", "line": 3, "severity": "high", "spans": [{"start": 1, "end": "2"}],
                         "fix": None}], "summary": None, "score": 0.5}
    assert mismatch(bad, NESTED) == "at $.findings[0].spans[0].end: '2' is not of type 'integer'"

    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {
        "type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"],
        "additionalProperties": False}}}, "required": ["a"], "additionalProperties": False}
    assert mismatch({"a": [{"b": "x"}]}, schema) == "at $.a[0].b: 'x' is not of type 'integer'"
    assert mismatch({"a": [{"b": 1}, {}]}, schema) == "at $.a[1]: 'b' is a required property"
    assert mismatch({}, schema) == "at $: 'a' is a required property"
    assert mismatch([], schema) == "at $: [] is not of type 'object'"


SMALL = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
         "additionalProperties": False}


@pytest.mark.parametrize("text", [
    '{"ok": true}',
    '  \n{"ok": true}\n\n',
    '```json\n{"ok": true}\n```',
    '```\n{"ok": true}\n```\n',
    '\n```json\n{\n  "ok": true\n}\n```',
], ids=["plain", "whitespace", "fenced-json", "fenced", "fenced-multiline"])
def test_parse_answer_reads_plain_and_fenced_json(text):
    assert parse_answer(text, SMALL) == ({"ok": True}, None)


def test_parse_answer_says_why_not():
    assert parse_answer("Yes, it is fine.", SMALL) == (
        None, "the answer is not JSON (Expecting value at line 1 column 1)")
    assert parse_answer('{"ok": true', SMALL)[1].startswith("the answer is not JSON (")
    assert parse_answer("", SMALL) == (None, "the answer is empty")
    assert parse_answer("  \n ", SMALL) == (None, "the answer is empty")
    assert parse_answer("```json\n```", SMALL) == (None, "the answer is empty")
    assert parse_answer('{"ok": "yes"}', SMALL) == (
        None, "the answer does not match the schema: at $.ok: 'yes' is not of type 'boolean'")
    assert parse_answer("[]", SMALL) == (None, "the answer does not match the schema: at $: [] is not of type 'object'")


def test_load_reads_and_checks_a_file(tmp_path: Path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(NESTED))
    assert load(good) == NESTED

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SchemaError) as e:
        load(bad)
    assert str(e.value).startswith(f"--output-schema {bad}: not JSON (")

    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}))
    with pytest.raises(SchemaError) as e:
        load(loose)
    assert str(e.value) == (f'--output-schema {loose}: at $: strict: true needs "additionalProperties": false '
                            "on every object")

    with pytest.raises(SchemaError) as e:
        load(tmp_path / "missing.json")
    assert str(e.value) == f"--output-schema {tmp_path / 'missing.json'}: cannot read: No such file or directory"


def test_a_reference_must_lead_to_a_part_of_the_schema():
    message = refusal(broken(["properties", "findings", "items"], "$ref", "#/$defs/findnig"))
    assert message == "the schema: $ref '#/$defs/findnig' leads nowhere (no 'findnig' there)"
    message = refusal(broken(["properties", "findings", "items"], "$ref", "https://example.com/finding.json"))
    assert message == ("the schema: $ref 'https://example.com/finding.json': only references inside the schema "
                       "(#/$defs/NAME) are supported")
