"""JSON schemas a script hands coder: a structured answer's (`--output-schema`) and a custom tool's.

Both go to the provider with `strict: true`, which accepts only a subset of JSON Schema (every object
lists all its properties in `required` and sets `additionalProperties: false`). A schema outside it
would be refused by the endpoint at the first request, after the work started; here it is refused
at once, in one line that names the place. The model's answers are then checked against the schema
with jsonschema (imported only by scripts that use a schema).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# What strict mode understands; anything else is refused rather than silently ignored by the provider.
_KEYWORDS = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "$ref",
    "$defs", "definitions", "description", "title", "default", "examples", "pattern", "format", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "minLength",
    "maxLength", "$schema", "$id", "nullable",
}


class SchemaError(ValueError):
    """A schema coder will not send: one line, naming where in the schema."""


def load(path: str | Path, what: str = "--output-schema") -> dict[str, Any]:
    """A schema file, read and checked for strict mode."""
    from coder.config import ConfigError
    from coder.userfiles import read_text

    try:
        text = read_text(str(path), what)
    except ConfigError as e:
        raise SchemaError(str(e)) from None
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as e:
        raise SchemaError(f"{what} {path}: not JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise SchemaError(f"{what} {path}: nested too deeply") from None
    check_strict(schema, f"{what} {path}")
    return schema


def check_strict(schema: Any, what: str) -> None:
    """Raise SchemaError unless `schema` is a valid JSON Schema whose root is an object, in strict mode's subset."""
    if not isinstance(schema, dict):
        raise SchemaError(f"{what}: the schema must be a JSON object")
    if schema.get("type") != "object":
        raise SchemaError(f"{what}: the schema's root must have \"type\": \"object\"")
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        _walk(schema, what, "$")
        _check_refs(schema, schema, what)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "the root"
        raise SchemaError(f"{what}: not a valid JSON Schema at {where}: {e.message}") from None
    except RecursionError:
        raise SchemaError(f"{what}: nested too deeply") from None


def _walk(node: Any, what: str, where: str) -> None:
    if isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, what, f"{where}[{i}]")
        return
    if not isinstance(node, dict):
        return
    unknown = sorted(k for k in node if k not in _KEYWORDS)
    if unknown:
        raise SchemaError(f"{what}: at {where}: {unknown[0]!r} is not supported with strict: true")
    is_object = node.get("type") == "object" or (isinstance(node.get("type"), list) and "object" in node["type"])
    if is_object or "properties" in node:
        props = node.get("properties") or {}
        if node.get("additionalProperties") is not False:
            raise SchemaError(f"{what}: at {where}: strict: true needs \"additionalProperties\": false on every object")
        missing = [name for name in props if name not in (node.get("required") or [])]
        if missing:
            raise SchemaError(f"{what}: at {where}: strict: true needs every property in \"required\" "
                              f"(missing: {', '.join(missing)}; make an optional one nullable instead)")
    for key in ("properties", "$defs", "definitions"):
        for name, sub in (node.get(key) or {}).items():  # a property by its name; a definition as $defs.NAME
            _walk(sub, what, f"{where}.{name}" if key == "properties" else f"{where}.{key}.{name}")
    for key in ("items", "anyOf"):
        if key in node:
            _walk(node[key], what, f"{where}.{key}")


def _check_refs(node: Any, root: dict[str, Any], what: str) -> None:
    """Every $ref is local (#/$defs/...) and leads to a part of the schema (the provider refuses others)."""
    if isinstance(node, list):
        for item in node:
            _check_refs(item, root, what)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#"):
            raise SchemaError(f"{what}: $ref {ref!r}: only references inside the schema (#/$defs/NAME) are supported")
        target: Any = root
        for part in [p.replace("~1", "/").replace("~0", "~") for p in ref[1:].split("/") if p]:
            if not isinstance(target, dict) or part not in target:
                raise SchemaError(f"{what}: $ref {ref!r} leads nowhere (no {part!r} there)")
            target = target[part]
    for value in node.values():
        _check_refs(value, root, what)


def mismatch(instance: Any, schema: dict[str, Any]) -> str | None:
    """Why `instance` does not match `schema` (the first problem, one line), or None when it does."""
    import jsonschema

    try:
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(instance))
    except RecursionError:
        return "the value is nested too deeply"
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"at ${where}: {error.message}"


def parse_answer(text: str, schema: dict[str, Any]) -> tuple[Any, str | None]:
    """The model's final answer as JSON checked against `schema`: (the value, None) or (None, why not)."""
    stripped = text.strip()
    if stripped.startswith("```"):  # a fenced answer from an endpoint that does not enforce the format
        stripped = stripped.split("\n", 1)[-1].rsplit("```", 1)[0]
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as e:
        return None, f"the answer is not JSON ({e.msg} at line {e.lineno} column {e.colno})" if stripped else \
            "the answer is empty"
    except RecursionError:
        return None, "the answer is JSON nested too deeply to read"
    why = mismatch(value, schema)
    return (None, f"the answer does not match the schema: {why}") if why else (value, None)
