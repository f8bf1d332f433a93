"""The local workspace and its owner, created on first start (stdio mode has exactly these)."""

import getpass
import re
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select

from mcp_crm.entities import Entity
from mcp_crm.entities.activities import ACTIVITY_TYPES, DEFAULT_TYPES
from mcp_crm.entities.lead_stages import DEFAULT_LEAD_STAGES, LEAD_STAGES
from mcp_crm.entities.models import create_model_for
from mcp_crm.entities.pipelines import DEFAULT_STAGES, PIPELINES, STAGES
from mcp_crm.entities.users import User
from mcp_crm.ids import new_id
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.records import table_of
from mcp_crm.operations.writes import create_records
from mcp_crm.store.database import Database
from mcp_crm.store.tables import WORKSPACES, Workspace

LOCAL_SLUG = "local"


async def local_actor(db: Database, via: str) -> Actor:
    workspace_id, owner = await db.write(_ensure_local_owner)
    return Actor(workspace_id=workspace_id, user_id=owner, via=via)


def _ensure_local_owner(conn: Connection) -> tuple[str, str]:
    workspaces, users = Workspace.__table__, User.__table__  # type: ignore[attr-defined]
    workspace_id = conn.execute(select(workspaces.c.id).where(workspaces.c.slug == LOCAL_SLUG)).scalar_one_or_none()
    if workspace_id is None:
        workspace_id, now = new_id(), datetime.now(UTC)
        conn.execute(insert(workspaces).values(id=workspace_id, slug=LOCAL_SLUG, name="Local", created_at=now))
    owner = conn.execute(
        select(users.c.id)
        .where(users.c.workspace_id == workspace_id, users.c.role == "owner")
        .order_by(users.c.created_at, users.c.id)
        .limit(1)
    ).scalar_one_or_none()
    if owner is None:
        owner, now = new_id(), datetime.now(UTC)
        login = re.sub(r"[^a-z0-9._-]", "", _login().lower()) or "me"
        conn.execute(
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
    seed_workspace(conn, workspace_id)
    return workspace_id, owner


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "me"


def workspace_secret(conn: Connection, workspace_id: str) -> str:
    """The workspace's signing secret (made with the workspace)."""
    secret = conn.execute(select(WORKSPACES.c.secret).where(WORKSPACES.c.id == workspace_id)).scalar_one()
    if not secret:
        raise RuntimeError(f"workspace {workspace_id} has no secret")
    return str(secret)


def seed_workspace(conn: Connection, workspace_id: str) -> None:
    """What a workspace starts with, added where missing (new workspaces, and ones made before it existed):
    the default pipeline, the standard activity types and the lead stages."""
    actor = Actor(workspace_id=workspace_id, user_id=None, via="cli")
    if not _has_any(conn, PIPELINES, workspace_id):
        (pipeline,) = create_records(
            conn, actor, PIPELINES, [create_model_for(PIPELINES)(name="Sales", is_default=True)], bulk=False
        )
        stages = [
            create_model_for(STAGES)(pipeline_id=pipeline["id"], name=name, position=i, kind=kind, probability=p)
            for i, (name, kind, p) in enumerate(DEFAULT_STAGES, start=1)
        ]
        create_records(conn, actor, STAGES, stages, bulk=True)
    if not _has_any(conn, ACTIVITY_TYPES, workspace_id):
        types = [create_model_for(ACTIVITY_TYPES)(key=key, name=name) for key, name in DEFAULT_TYPES]
        create_records(conn, actor, ACTIVITY_TYPES, types, bulk=True)
    if not _has_any(conn, LEAD_STAGES, workspace_id):
        lead_stages = [
            create_model_for(LEAD_STAGES)(name=name, position=i, kind=kind, color=color, probability=p)
            for i, (name, kind, color, p) in enumerate(DEFAULT_LEAD_STAGES, start=1)
        ]
        create_records(conn, actor, LEAD_STAGES, lead_stages, bulk=True)


def _has_any(conn: Connection, entity: Entity, workspace_id: str) -> bool:
    table = table_of(entity)
    return conn.execute(select(table.c.id).where(table.c.workspace_id == workspace_id).limit(1)).first() is not None
