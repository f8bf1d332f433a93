"""The local workspace and its owner, created on first start (stdio mode has exactly these)."""

import getpass
import re
from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_crm.entities.users import User
from mcp_crm.ids import new_id
from mcp_crm.operations.actor import Actor
from mcp_crm.store.engine import write_connection
from mcp_crm.store.tables import Workspace

LOCAL_SLUG = "local"


async def local_actor(engine: AsyncEngine, via: str) -> Actor:
    workspaces, users = Workspace.__table__, User.__table__  # type: ignore[attr-defined]
    async with write_connection(engine) as conn:
        workspace_id = (
            await conn.execute(select(workspaces.c.id).where(workspaces.c.slug == LOCAL_SLUG))
        ).scalar_one_or_none()
        if workspace_id is None:
            workspace_id, now = new_id(), datetime.now(UTC)
            await conn.execute(
                insert(workspaces).values(id=workspace_id, slug=LOCAL_SLUG, name="Local", created_at=now)
            )
        owner = (
            await conn.execute(
                select(users.c.id)
                .where(users.c.workspace_id == workspace_id, users.c.role == "owner")
                .order_by(users.c.created_at, users.c.id)
                .limit(1)
            )
        ).scalar_one_or_none()
        if owner is None:
            owner, now = new_id(), datetime.now(UTC)
            login = re.sub(r"[^a-z0-9._-]", "", _login().lower()) or "me"
            await conn.execute(
                insert(users).values(
                    id=owner,
                    workspace_id=workspace_id,
                    name=_login(),
                    email=f"{login}@localhost.localdomain",
                    role="owner",
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
    return Actor(workspace_id=workspace_id, user_id=owner, via=via)


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "me"
