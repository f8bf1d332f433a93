"""Pydantic models derived from an entity's declaration: what a caller sends and what it gets back."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from mcp_crm.entities.spec import Entity, FieldSpec, Kind
from mcp_crm.entities.values import storable


class Strict(BaseModel):
    """Inputs reject unknown keys, so a misspelt field is an error rather than silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Summary(BaseModel):
    """A related record in a few words."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str


def _value_type(field: FieldSpec) -> Any:
    if field.kind is Kind.relations:
        return field.annotation
    # the field's own limits first; the storable type adds its column's (a 32-bit integer, a time in UTC)
    annotation = storable(field.annotation) if field.annotation is not Decimal else field.annotation
    return Annotated[(annotation, *field.metadata)] if field.metadata else annotation


def _describe(field: FieldSpec) -> str | None:
    text = field.description
    if field.kind is Kind.relation:
        text = f"{text} Id of a record in {field.target}.".strip()
    return text or None


@cache
def create_model_for(entity: Entity) -> type[BaseModel]:
    """`contacts_create` input: required fields required, the rest optional with their defaults."""
    fields: dict[str, Any] = {}
    for name, f in entity.writable.items():
        description = _describe(f)
        if f.required:
            fields[name] = (_value_type(f), Field(description=description))
        elif f.nullable:
            fields[name] = (_value_type(f) | None, Field(None, description=description))
        else:
            fields[name] = (
                _value_type(f),
                Field(default_factory=lambda d=f.default: _copy(d), description=description),
            )
    return create_model(f"{entity.singular.capitalize()}Create", __base__=Strict, **fields)


@cache
def update_model_for(entity: Entity) -> type[BaseModel]:
    """Partial update: only the fields sent change; null clears an optional field."""
    fields: dict[str, Any] = {
        name: (_value_type(f) | None, Field(None, description=_describe(f))) for name, f in entity.writable.items()
    }
    return create_model(f"{entity.singular.capitalize()}Changes", __base__=Strict, **fields)


@cache
def record_model_for(entity: Entity, partial: bool = False) -> type[BaseModel]:
    """What tools return. `partial` (for list results with `fields`): everything but id may be absent."""
    fields: dict[str, Any] = {}
    for name, f in entity.fields.items():
        if f.link is not None:
            fields[f.link.name] = (
                list[Summary] | None if partial else list[Summary],
                Field(None if partial else ..., description=f"Linked {f.link.target}."),
            )
            continue
        value = f.annotation | None if (f.nullable or partial) else f.annotation
        default = ... if name == "id" or not partial else None
        # free text from outside is flagged in the schema; the text channel also wraps it in markers
        extra = {"x-untrusted": True} if f.untrusted else None
        fields[name] = (value, Field(default, description=f.description or None, json_schema_extra=extra))
    suffix = "Fields" if partial else ""
    return create_model(f"{entity.singular.capitalize()}{suffix}", **fields)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value
