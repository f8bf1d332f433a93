"""One verb for every many-to-many link: attach, detach or sync the records linked to one record.

A link is stored on one side (a deal's contacts, an activity's participants); from the other side the
change becomes an update of each record on the storing side, so it is validated, journaled and
revisioned like any other edit."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection, select

from mcp_crm.entities import ENTITIES, Entity, Link
from mcp_crm.entities.models import update_model_for
from mcp_crm.errors import CrmError
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.records import fetch_rows, not_found, rows_by_id, title_of
from mcp_crm.operations.writes import update_records

Mode = Literal["attach", "detach", "sync"]


def linked_pairs() -> list[tuple[str, str]]:
    """(one entity, other entity) for every pair a link joins, both ways round."""
    pairs = {(e.name, link.target) for e in ENTITIES.values() for link in e.links}
    return sorted(pairs | {(b, a) for a, b in pairs})


def _link_between(source: Entity, target: Entity) -> tuple[Entity, Link]:
    """The entity that stores the link and the link itself; the source's own link when both sides have one."""
    for owner, other in ((source, target), (target, source)):
        for link in owner.links:
            if link.target == other.name:
                return owner, link
    pairs = ", ".join(f"{a}-{b}" for a, b in linked_pairs() if a < b)
    raise CrmError(f"{source.name} and {target.name} are not linked to each other. Linked pairs: {pairs}.")


def _linked_ids(conn: Connection, owner_side: bool, link: Link, record_id: str) -> list[str]:
    """Ids on the other end of the link from `record_id`, which sits on the owner side or the target side."""
    table = link.table.__table__  # type: ignore[attr-defined]
    mine, theirs = (link.own_column, link.target_column) if owner_side else (link.target_column, link.own_column)
    query = select(table.c[theirs]).where(table.c[mine] == record_id).order_by(table.c[theirs])
    return list(conn.execute(query).scalars())


def associate(
    conn: Connection, actor: Actor, source: Entity, source_id: str, target: Entity, target_ids: list[str], mode: Mode
) -> dict[str, Any]:
    owner, link = _link_between(source, target)
    wanted = list(dict.fromkeys(target_ids))
    if mode != "sync" and not wanted:
        raise CrmError(f"{mode} needs at least one id in to_ids (sync with [] removes every link).")
    (row,) = fetch_rows(conn, actor, source, [source_id]).values()
    missing = [i for i in wanted if i not in rows_by_id(conn, actor, target, wanted)]
    if missing:
        raise not_found(target, missing, "Nothing was changed.")
    owner_side = owner is source
    before = _linked_ids(conn, owner_side, link, source_id)
    after = {
        "attach": before + [i for i in wanted if i not in before],
        "detach": [i for i in before if i not in wanted],
        "sync": wanted,
    }[mode]
    changes = {source_id: after} if owner_side else _reverse(conn, link, source_id, before, after)
    model = update_model_for(owner)
    edits = [(rid, model.model_validate({link.input: ids})) for rid, ids in changes.items()]
    if edits:
        update_records(conn, actor, owner, edits, bulk=False)
    return {
        "record": {"type": source.name, "id": source_id, "name": title_of(source, row)},
        "to_type": target.name,
        "attached": [i for i in after if i not in before],
        "detached": [i for i in before if i not in after],
        "linked_count": len(after),
    }


def _reverse(conn: Connection, link: Link, source_id: str, before: list[str], after: list[str]) -> dict[str, list[str]]:
    """The new link lists of the records on the storing side that gain or lose `source_id`."""
    gained = [i for i in after if i not in before]
    lost = [i for i in before if i not in after]
    table = link.table.__table__  # type: ignore[attr-defined]
    own, other = table.c[link.own_column], table.c[link.target_column]
    current: dict[str, list[str]] = {rid: [] for rid in gained + lost}
    for rid, linked in conn.execute(select(own, other).where(own.in_(list(current))).order_by(own, other)):
        current[rid].append(linked)
    return {
        rid: [*ids, source_id] if rid in gained else [i for i in ids if i != source_id] for rid, ids in current.items()
    }
