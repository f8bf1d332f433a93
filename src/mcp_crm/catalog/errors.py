"""Turns pydantic's validation errors into messages a model can act on."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from mcp_crm.errors import closest

_UNION_TAGS = {"Condition", "And", "Or", "Not"}  # tags of the filter tree's node kinds
MAX_LINES = 20


def explain(exc: ValidationError, model: type[BaseModel]) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        path = [p for p in error["loc"] if p not in _UNION_TAGS]
        where = _format_path(path) or "arguments"
        if error["type"] == "extra_forbidden":
            lines.append(_unknown_field(model, path, where))
        elif error["type"] == "missing":
            lines.append(f"{where}: required, but missing.")
        else:
            given = error.get("input")
            shown = f" (got {_short(given)})" if not isinstance(given, dict | list) and not _secret(model, path) else ""
            lines.append(f"{where}: {error['msg']}{shown}.")
    unique = list(dict.fromkeys(lines))
    more = len(unique) - MAX_LINES
    text = "Invalid arguments; nothing was changed:\n" + "\n".join(f"- {line}" for line in unique[:MAX_LINES])
    return text + (f"\n- ... and {more} more" if more > 0 else "")


def _unknown_field(model: type[BaseModel], path: list[Any], where: str) -> str:
    parent = _model_at(model, path[:-1])
    name = str(path[-1])
    if parent is None:
        return f"{where}: unknown field."
    valid = [f.alias or n for n, f in parent.model_fields.items()]
    hint = closest(name, valid)
    did_you_mean = f" Did you mean '{hint}'?" if hint else ""
    return f"{where}: unknown field.{did_you_mean} Valid fields: {', '.join(valid)}."


def _model_at(model: Any, path: list[Any]) -> type[BaseModel] | None:
    """The pydantic model that holds the value at `path`, following lists and optionals."""
    current: Any = model
    for part in path:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else None
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        fields = {f.alias or n: f for n, f in current.model_fields.items()}
        if part not in fields:
            return None
        current = fields[part].annotation
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _secret(model: type[BaseModel], path: list[Any]) -> bool:
    """Whether the value at `path` is a secret (a password), which an error message never repeats."""
    parent = _model_at(model, path[:-1])
    field = parent.model_fields.get(str(path[-1])) if parent is not None and path else None
    return field is not None and _unwrap(field.annotation) is SecretStr


def _unwrap(annotation: Any) -> Any:
    """X | None -> X; Annotated[X, ...] -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, __import__("types").UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _format_path(path: list[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
