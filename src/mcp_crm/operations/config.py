"""The `*_config` answer: everything a model needs to write valid calls for an entity."""

from __future__ import annotations

from typing import Any

from mcp_crm.entities import Entity, Kind
from mcp_crm.operations.reads import DEFAULT_LIMIT, MAX_LIMIT
from mcp_crm.query import OPERATORS, operators_for


def describe_entity(entity: Entity) -> dict[str, Any]:
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
        "search_fields": list(entity.search_columns),
        "relations": [
            {"field": f.name, "entity": f.target, "many": f.kind is Kind.relations}
            for f in entity.fields.values()
            if f.target
        ],
        "example_filter": entity.example_filter,
    }
