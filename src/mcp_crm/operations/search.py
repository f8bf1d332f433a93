"""search across the searchable entities, and fetch: one record of any entity as readable text."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from mcp_crm.entities import ENTITIES, Entity
from mcp_crm.errors import CrmError, unknown
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.reads import get_record
from mcp_crm.search import search_documents
from mcp_crm.search.terms import display_title

SEARCHABLE = tuple(name for name, e in ENTITIES.items() if e.searchable)
MAX_RESULTS = 50
HIDDEN = {"id", "workspace_id", "created_at", "updated_at", "revision"}  # in fetch's metadata instead


def search_records(
    conn: Connection, actor: Actor, query: str, types: list[str] | None, limit: int
) -> list[dict[str, Any]]:
    """[{entity, record_id, title, snippet, score}], best first."""
    if not 1 <= limit <= MAX_RESULTS:
        raise CrmError(f"limit must be between 1 and {MAX_RESULTS}.")
    for name in types or ():
        if name not in SEARCHABLE:
            raise unknown("type", name, SEARCHABLE)
    return search_documents(conn, actor.workspace_id, query, list(types or SEARCHABLE), limit)


def record_ref(ref: str) -> tuple[Entity, str]:
    """The entity and id of a "<type>:<record id>" reference, as search results name records."""
    name, colon, record_id = ref.strip().partition(":")
    if not colon or not name or not record_id or ":" in record_id:
        raise CrmError(
            f"'{ref}' is not a record reference: use the id of a search result, '<type>:<record id>', "
            "e.g. 'contacts:0192f1c4-...'."
        )
    if name not in ENTITIES:
        raise unknown("type", name, ENTITIES)
    return ENTITIES[name], record_id


def fetch_record(conn: Connection, actor: Actor, entity: Entity, record_id: str) -> dict[str, Any]:
    """{title, text, metadata}: the whole record (its links and related records named) as plain text."""
    record = get_record(conn, actor, entity, record_id)
    return {
        "title": display_title(entity, record),
        "text": record_text(entity, record),
        "metadata": {
            "type": entity.name,
            "record_id": record["id"],
            "created_at": record["created_at"],
            "updated_at": record["updated_at"],
            "revision": record["revision"],
        },
    }


def record_text(entity: Entity, record: dict[str, Any]) -> str:
    lines = [f"{entity.singular.capitalize()}: {display_title(entity, record)}"]
    related = record.get("related") or {}
    for name, spec in entity.fields.items():
        if name in HIDDEN:
            continue
        key = spec.link.name if spec.link is not None else name
        shown = _shown(record.get(key), related.get(name))
        if shown:
            lines.append(f"{key.replace('_', ' ')}: {shown}")
    return "\n".join(lines)


def _shown(value: Any, related: dict[str, Any] | None = None) -> str:
    if related is not None:
        return f"{related['name']} ({related['id']})"
    if value is None or value == "" or value == [] or value == {}:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(s for s in (_item(v) for v in value) if s)
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')}: {s}" for k, v in value.items() if (s := _shown(v)))
    return str(value)


def _item(value: Any) -> str:
    """One element of a list: a tag, an email or phone ({value, label, primary}), a linked record ({id, name})."""
    if not isinstance(value, dict):
        return _shown(value)
    if "value" in value:
        notes = [value.get("label"), "primary" if value.get("primary") else None]
        return f"{value['value']} ({', '.join(n for n in notes if n)})"
    if "id" in value and "name" in value:
        extra = {k: v for k, v in value.items() if k not in ("id", "name") and v not in (None, False, "")}
        details = "; ".join([value["id"], *(f"{k.replace('_', ' ')}: {_shown(v)}" for k, v in extra.items())])
        return f"{value['name']} ({details})"
    return _shown(value)
