"""Dry runs and confirm tokens.

A dry run is the real write, rolled back: every check runs, and the change events it would have recorded
become the preview, so a preview can never disagree with what the call would do. Large bulk writes need a
confirm token that only a dry run of the very same call hands out."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from mcp_crm.entities import ENTITIES
from mcp_crm.operations.records import title_of

CONFIRM_ABOVE = 50  # bulk updates and deletes of more records than this need a confirm token
CONFIRM_FOR = 600  # seconds a token stays valid
SHOWN_CHANGES = 100


@dataclass
class Journal:
    """What a rehearsed write did: its change events and the links it would remove, per linked entity."""

    events: list[dict[str, Any]] = field(default_factory=list)
    unlinked: Counter[str] = field(default_factory=Counter)


_JOURNAL_KEY = "mcp_crm.journal"
_rehearsing: ContextVar[Journal | None] = ContextVar("mcp_crm_rehearsing", default=None)


@contextmanager
def dry_run() -> Iterator[Journal]:
    """Writes made inside this block are rehearsed and rolled back; the journal tells what they did."""
    journal = Journal()
    token = _rehearsing.set(journal)
    try:
        yield journal
    finally:
        _rehearsing.reset(token)


def rehearsing() -> Journal | None:
    return _rehearsing.get()


@contextmanager
def journaling(conn: Connection, journal: Journal) -> Iterator[None]:
    conn.info[_JOURNAL_KEY] = journal
    try:
        yield
    finally:
        conn.info.pop(_JOURNAL_KEY, None)


def journal_of(conn: Connection) -> Journal | None:
    """The journal of the dry run using this connection, if one is."""
    return conn.info.get(_JOURNAL_KEY)


def preview_of(journal: Journal) -> dict[str, Any]:
    """The preview a model reads: counts per entity and action, then each change (field diffs for updates)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    changes = []
    for event in journal.events:
        entity = ENTITIES[event["entity"]]
        counts[entity.name][event["action"]] += 1
        record = event["after"] or event["before"] or {}
        change: dict[str, Any] = {
            "action": event["action"],
            "entity": entity.name,
            "id": event["record_id"],
            "name": title_of(entity, record),
        }
        if event["action"] == "updated":
            change["fields"] = {k: {"before": v, "after": event["after"].get(k)} for k, v in event["before"].items()}
        changes.append(change)
    for name, count in journal.unlinked.items():
        counts[name]["unlinked"] += count
    return {
        "applied": False,
        "counts": {name: dict(actions) for name, actions in counts.items()},
        "changes": changes[:SHOWN_CHANGES],
        "more_changes": max(0, len(changes) - SHOWN_CHANGES),
    }


def in_words(preview: dict[str, Any]) -> str:
    """ "delete 120 contacts, update 30 tasks, unlink 4 organizations" """
    verbs = {"created": "create", "updated": "update", "deleted": "delete", "restored": "restore", "purged": "erase"}
    parts = [
        f"{verbs.get(action, action.removesuffix('ed'))} {count} {entity}"
        for entity, actions in preview["counts"].items()
        for action, count in actions.items()
    ]
    return ", ".join(parts) or "change nothing"


def confirm_token(secret: str, request: str, now: float | None = None) -> str:
    """A token for exactly this request (tool, arguments, workspace and user), valid CONFIRM_FOR seconds."""
    expires = int((now or time.time()) + CONFIRM_FOR)
    return f"{expires}.{_signature(secret, request, expires)}"


def confirmed(secret: str, request: str, token: str | None) -> bool:
    if not token or "." not in token:
        return False
    expires, signature = token.split(".", 1)
    if not expires.isdigit() or int(expires) < time.time():
        return False
    return hmac.compare_digest(signature, _signature(secret, request, int(expires)))


def _signature(secret: str, request: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{request}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]
