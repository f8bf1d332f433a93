"""The `*_config` answer: everything a model needs to write valid calls for an entity."""

from __future__ import annotations

from typing import Any

from mcp_crm.entities import Entity, Kind
from mcp_crm.entities.custom import TYPES
from mcp_crm.entities.spec import Count
from mcp_crm.operations.reads import DEFAULT_LIMIT, MAX_LIMIT
from mcp_crm.query import OPERATORS, operators_for
from mcp_crm.query.operators import operators_of


def describe_entity(entity: Entity, custom: list[dict[str, Any]]) -> dict[str, Any]:
    """`custom`: the workspace's custom field definitions for the entity."""
    fields = []
    for field in entity.fields.values():
        info: dict[str, Any] = {
            "name": field.name,
            "type": field.kind.value,
            "required": field.required,
            "read_only": field.read_only,
            "filterable": field.filterable,
            "sortable": field.sortable,
            "operators": list(operators_for(field)) if field.filterable else [],
        }
        if field.description:
            info["description"] = field.description
        if field.enum:
            info["values"] = list(field.enum)
        if field.target:
            info["references"] = field.target
        if field.unique:
            info["unique"] = True
        if field.link is not None:
            info["output_key"] = field.link.name
        if not field.required and not field.read_only and field.default not in (None, [], {}):
            info["default"] = field.default
        fields.append(info)
    fields += [_describe_count(entity, count) for count in entity.counts]
    return {
        "entity": entity.name,
        "description": entity.description,
        "fields": fields,
        "operators": {name: op.summary for name, op in OPERATORS.items()},
        "default_sort": [{"field": "created_at", "direction": "asc"}],
        "list_limit": {"default": DEFAULT_LIMIT, "max": MAX_LIMIT},
        "link_filters": [
            {"field": f.name, "type": f.kind.value, "operators": list(operators_for(f))}
            for f in entity.link_fields.values()
        ],
        "custom_fields": [_describe_custom(field) for field in custom],
        "search_fields": list(entity.search_columns),
        "relations": [
            {"field": f.name, "entity": f.target, "many": f.kind is Kind.relations}
            for f in entity.fields.values()
            if f.target
        ],
        "example_filter": entity.example_filter,
    }


def _describe_count(entity: Entity, count: Count) -> dict[str, Any]:
    """A count (a lead stage's lead_count) as a read-only number that list reports."""
    return {
        "name": count.name,
        "type": Kind.number.value,
        "required": False,
        "read_only": True,
        "filterable": False,
        "sortable": False,
        "operators": [],
        "description": f"{count.description} Reported by {entity.name}_list.",
    }


def _describe_custom(field: dict[str, Any]) -> dict[str, Any]:
    """A custom field as a model needs it: what to send and how to filter (custom.<key>[.<part>])."""
    kind = TYPES[field["type"]]
    key = field["key"]
    filters = {f"custom.{key}": kind.kind} if kind.kind else {}
    filters |= {f"custom.{key}.{part}": part_kind for part, part_kind in (kind.parts or {}).items()}
    info: dict[str, Any] = {
        "key": key,
        "label": field["label"],
        "type": field["type"],
        "value": kind.hint,
        "filters": {name: list(operators_of(k)) for name, k in filters.items()},
    }
    if field["options"]:
        info["options"] = [{"key": o["key"], "label": o["label"]} for o in field["options"]]
    if kind.target:
        info["references"] = kind.target
    if field["description"]:
        info["description"] = field["description"]
    return info
