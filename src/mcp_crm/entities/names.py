"""References that filters take by name as well as by id (a lead's stage: "Qualified"), resolved to ids.

Pass `reference_names(conn, workspace_id)` as `names` to `compile_filter`, so every filter over an entity
with such a field (`*_list`, a list's filter, an export) reads names the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from mcp_crm.entities.spec import Entity, FieldSpec
from mcp_crm.errors import CrmError, closest


def reference_names(conn: Any, workspace_id: str) -> Callable[[FieldSpec, list[str]], list[str]]:
    """Resolves the values a filter gives a by-name reference to ids: each is an id, a name, or a name in another
    case. The targets are short lists (stages), read whole, once per call and target."""
    from mcp_crm.entities import ENTITIES  # the registry imports the entity modules that may import this one

    read: dict[str, dict[str, str]] = {}  # target -> {id: name}, in list order

    def resolve(field: FieldSpec, values: list[str]) -> list[str]:
        target = ENTITIES[str(field.target)]
        if target.name not in read:
            read[target.name] = _titles(conn, workspace_id, target)
        return [_resolved(target, read[target.name], value, field.name) for value in values]

    return resolve


def _titles(conn: Any, workspace_id: str, target: Entity) -> dict[str, str]:
    table = target.table.__table__  # type: ignore[attr-defined]
    order = [c for c in (table.c.get("position"), table.c.id) if c is not None]
    rows = conn.execute(select(table).where(table.c.workspace_id == workspace_id).order_by(*order)).mappings()
    return {row["id"]: " ".join(str(row[c]) for c in target.title_columns if row[c] is not None) for row in rows}


def _resolved(target: Entity, titles: dict[str, str], value: str, field: str) -> str:
    if value in titles:
        return value
    exact = [rid for rid, name in titles.items() if name == value]
    found = exact or [rid for rid, name in titles.items() if name.casefold() == value.casefold()]
    if len(found) == 1:
        return found[0]
    if found:
        raise CrmError(
            f"'{value}' names {len(found)} {target.name} ({', '.join(titles[r] for r in found)}); "
            f"filter {field} by id instead ({target.name}_list shows them)."
        )
    hint = closest(value, titles.values())
    raise CrmError(
        f"No {target.singular} has the id or name '{value}' ({field} filter)."
        + (f" Did you mean '{hint}'?" if hint else "")
        + f" Valid {target.name.replace('_', ' ')}: {', '.join(titles.values()) or 'none yet'}."
    )
