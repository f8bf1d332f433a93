"""What a change is called in a webhook, which subscriptions want it, and the body a receiver gets.

Names are `<entity>.<action>` with the singular entity (`contact.created`); a deal or lead moved to another
stage is also `deal.moved` or `lead.moved`, and a converted lead also `lead.converted`. Purges are not sent: a
receiver heard of the record's deletion when it went to the trash."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mcp_crm.entities import ENTITIES, Entity
from mcp_crm.errors import CrmError, closest

ACTIONS = ("created", "updated", "deleted", "restored")
PING = "ping"

Changed = dict[str, Any]  # the changed fields' previous values, as a change event keeps them
# the special verbs: an update that is also something more (entity, verb, is it this verb?)
VERBS: tuple[tuple[str, str, Callable[[Changed, dict[str, Any]], bool]], ...] = (
    ("deals", "moved", lambda before, _after: "stage_id" in before),
    ("leads", "moved", lambda before, _after: "stage_id" in before),
    (
        "leads",
        "converted",
        lambda before, after: "converted_deal_id" in before and bool(after.get("converted_deal_id")),
    ),
)


def prefix(entity: Entity) -> str:
    return entity.singular.replace(" ", "_")


EVENT_NAMES: tuple[str, ...] = tuple(
    [f"{prefix(e)}.{action}" for e in ENTITIES.values() for action in ACTIONS]
    + [f"{prefix(ENTITIES[name])}.{verb}" for name, verb, _ in VERBS]
)
PATTERNS = frozenset(EVENT_NAMES) | {f"{prefix(e)}.*" for e in ENTITIES.values()} | {"*"}


def names_of(entity: Entity, action: str, before: Changed | None, after: dict[str, Any] | None) -> list[str]:
    """The events one change event is sent as."""
    if action not in ACTIONS:
        return []
    names = [f"{prefix(entity)}.{action}"]
    if action == "updated":
        names += [
            f"{prefix(entity)}.{verb}"
            for name, verb, is_it in VERBS
            if name == entity.name and is_it(before or {}, after or {})
        ]
    return names


def check_patterns(patterns: Iterable[str]) -> list[str]:
    """The subscription's event patterns, each an event name, `<entity>.*` or `*`; duplicates dropped."""
    chosen: list[str] = []
    for pattern in patterns:
        if pattern not in PATTERNS:
            hint = closest(pattern, PATTERNS)
            raise CrmError(
                f"Unknown event '{pattern}'.{f' Did you mean {hint!r}?' if hint else ''} Events are <entity>.<action> "
                f"with action {', '.join(ACTIONS)} (e.g. contact.created), deal.moved, lead.moved, lead.converted, "
                "<entity>.* for all of one entity's, or * for every event."
            )
        if pattern not in chosen:
            chosen.append(pattern)
    if not chosen:
        raise CrmError('Name at least one event, e.g. ["deal.created", "deal.moved"], or ["*"] for every event.')
    return chosen


def wants(patterns: Iterable[str], name: str) -> bool:
    kind = name.split(".", 1)[0]
    return any(p == "*" or p == name or p == f"{kind}.*" for p in patterns)


def body(delivery: dict[str, Any], change: dict[str, Any] | None, via: str) -> dict[str, Any]:
    """The payload of a delivery: its own for a ping, else the change event it reports."""
    if change is None:
        return dict(delivery["payload"] or {})
    action, before, after = change["action"], change["before"], change["after"]
    data: dict[str, Any] = {"record": before if action == "deleted" else after}
    if action == "updated":
        data["changes"] = {
            name: {"previous": value, "current": (after or {}).get(name)} for name, value in (before or {}).items()
        }
    return {
        "id": delivery["id"],
        "event": delivery["event"],
        "occurred_at": change["occurred_at"],
        "workspace_id": change["workspace_id"],
        "actor": {"user_id": change["user_id"], "via": via, "tool": change["tool"]},
        "data": data,
    }
