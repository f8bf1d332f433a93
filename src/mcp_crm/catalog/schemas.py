"""Smaller JSON Schemas for the tool list: every byte here is read by a model on every session.

Drops pydantic's generated titles and null defaults, writes `X | None` as `"type": [X, "null"]`, and
keeps output schemas to shapes and types (the input schema and the description explain each field)."""

from __future__ import annotations

from typing import Any

_INPUT_ONLY = {
    "description",
    "default",
    "pattern",
    "maxLength",
    "minLength",
    "maximum",
    "minimum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "maxItems",
    "minItems",
    "additionalProperties",
}


def output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An output schema with its definitions written in place: outputs are never recursive, and a client
    validating every result resolves no `$ref` (in the Python SDK's validator, most of the cost)."""
    definitions = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return compact(inline(schema), output=True)


def compact(schema: Any, output: bool = False, brief_items: bool = False) -> Any:
    """`brief_items`: definitions keep their types and limits but not their descriptions (bulk tools, whose
    items the single-record tool already describes)."""
    if brief_items and isinstance(schema, dict) and "$defs" in schema:
        schema = schema | {"$defs": _without_descriptions(schema["$defs"])}
    if isinstance(schema, list):
        return [compact(item, output) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if (key == "default" and value is None) or (output and key in _INPUT_ONLY):
            continue
        if key in ("properties", "$defs"):
            out[key] = {name: compact(sub, output) for name, sub in value.items()}
        else:
            out[key] = compact(value, output)
    return _nullable_as_type_list(out)


def _without_descriptions(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_descriptions(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: (value if key in ("enum", "const", "default") else _without_descriptions(value))
        for key, value in node.items()
        if not (key == "description" and isinstance(value, str))
    }


def _nullable_as_type_list(schema: dict[str, Any]) -> dict[str, Any]:
    options = schema.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or {"type": "null"} not in options:
        return schema
    (other,) = [o for o in options if o != {"type": "null"}]
    if not isinstance(other.get("type"), str) or "$ref" in other:
        return schema
    merged = {k: v for k, v in schema.items() if k != "anyOf"} | other
    merged["type"] = [other["type"], "null"]
    if "enum" in merged and None not in merged["enum"]:
        merged["enum"] = [*merged["enum"], None]
    return merged
