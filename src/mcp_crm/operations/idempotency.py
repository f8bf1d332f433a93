"""Idempotency keys: a write sent again with the same key and arguments within 24 hours returns the first
result without writing again. The key is stored in the same transaction as the write it names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from mcp_crm.errors import CrmError
from mcp_crm.operations.actor import Actor
from mcp_crm.store.tables import IDEMPOTENCY_KEYS as KEYS
from mcp_crm.store.types import json_text

KEEP_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class Idempotency:
    key: str
    request: str  # fingerprint of what was asked


def fingerprint(tool: str, arguments: dict[str, Any]) -> str:
    """What a call asked for, as a hash: the same tool with the same arguments gives the same fingerprint."""
    return hashlib.sha256(json_text({"tool": tool, "arguments": arguments}).encode()).hexdigest()


def _where(actor: Actor, key: str) -> list[Any]:
    return [KEYS.c.workspace_id == actor.workspace_id, KEYS.c.actor == (actor.user_id or "-"), KEYS.c.key == key]


def replay(conn: Connection, actor: Actor, idempotency: Idempotency) -> tuple[bool, Any]:
    """(True, the first result) when this key was used for the same request in the last 24 hours."""
    row = conn.execute(
        select(KEYS.c.request, KEYS.c.result, KEYS.c.created_at).where(*_where(actor, idempotency.key))
    ).first()
    if row is None or row.created_at < datetime.now(UTC) - KEEP_FOR:
        return False, None
    if row.request != idempotency.request:
        raise CrmError(
            f"idempotency_key '{idempotency.key}' was already used with different arguments; use a new key for a "
            "new request. Nothing was changed."
        )
    return True, row.result


def remember(conn: Connection, actor: Actor, idempotency: Idempotency, result: Any) -> None:
    conn.execute(delete(KEYS).where(*_where(actor, idempotency.key)))  # an expired use of the same key
    conn.execute(
        insert(KEYS).values(
            workspace_id=actor.workspace_id,
            actor=actor.user_id or "-",
            key=idempotency.key,
            request=idempotency.request,
            result=result,
            created_at=datetime.now(UTC),
        )
    )
