"""Who may call over HTTP: workspaces, API keys and passwords, and the scopes a credential carries.

A key's scopes are cut down to its user's role every time it is used, so a key never exceeds its user
(a member demoted to read-only keeps read access only; an inactive user's keys stop working)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for
from mcp_crm.errors import CrmError, NotFound
from mcp_crm.ids import new_id
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.records import table_of
from mcp_crm.operations.workspace import seed_workspace
from mcp_crm.operations.writes import create_records
from mcp_crm.store.tables import API_KEYS, PASSWORDS, WORKSPACES

# send (email_send, writing to people) is apart from write, so that a key made to sync records cannot email anyone.
# Keys and OAuth grants keep the scopes they were given: one made before send existed has to be re-issued to send.
SCOPES = ("read", "write", "delete", "send", "admin")
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "owner": frozenset(SCOPES),
    "admin": frozenset(SCOPES),
    "member": frozenset({"read", "write", "delete", "send"}),
    "read_only": frozenset({"read"}),
}
KEY_PREFIX = "ak_"
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per key
USERS = ENTITIES["users"]


@dataclass(frozen=True)
class Principal:
    """What a verified credential speaks for."""

    workspace_id: str
    user_id: str
    credential_id: str
    scopes: frozenset[str]
    expires_at: datetime | None = None

    def actor(self, via: str = "http") -> Actor:
        return Actor(workspace_id=self.workspace_id, user_id=self.user_id, via=via, credential_id=self.credential_id)


def parse_scopes(text: str | list[str]) -> frozenset[str]:
    given = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    unknown = [s for s in given if s not in SCOPES]
    if unknown or not given:
        raise CrmError(f"Unknown scope(s) {', '.join(unknown) or '(none given)'}; scopes are {', '.join(SCOPES)}.")
    return frozenset(given)


# --- workspaces and users --------------------------------------------------------------------------


def create_workspace(conn: Connection, slug: str, name: str, owner_name: str, owner_email: str) -> dict[str, Any]:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", slug):
        raise CrmError("A workspace slug is 1-63 lowercase letters, digits and dashes, e.g. acme-sales.")
    if conn.execute(select(WORKSPACES.c.id).where(WORKSPACES.c.slug == slug)).first():
        raise CrmError(f"A workspace '{slug}' already exists.")
    workspace_id = new_id()
    conn.execute(insert(WORKSPACES).values(id=workspace_id, slug=slug, name=name, created_at=datetime.now(UTC)))
    owner = create_user(conn, workspace_id, owner_name, owner_email, "owner")
    seed_workspace(conn, workspace_id)
    return {"id": workspace_id, "slug": slug, "name": name, "owner": owner}


def create_user(conn: Connection, workspace_id: str, name: str, email: str, role: str) -> dict[str, Any]:
    actor = Actor(workspace_id=workspace_id, user_id=None, via="cli")
    (user,) = create_records(conn, actor, USERS, [create_model_for(USERS)(name=name, email=email, role=role)], False)
    return user


def find_workspace(conn: Connection, slug_or_id: str) -> dict[str, Any]:
    row = (
        conn.execute(select(WORKSPACES).where(or_(WORKSPACES.c.slug == slug_or_id, WORKSPACES.c.id == slug_or_id)))
        .mappings()
        .first()
    )
    if row is None:
        known = conn.execute(select(WORKSPACES.c.slug).order_by(WORKSPACES.c.slug)).scalars().all()
        raise NotFound(f"No workspace '{slug_or_id}'. Workspaces: {', '.join(known) or 'none yet'}.")
    return dict(row)


def workspace_owner(conn: Connection, workspace_id: str) -> str:
    """The id of the workspace's first owner: who the CLI acts as when it changes the workspace."""
    users = table_of(USERS)
    owner = conn.execute(
        select(users.c.id)
        .where(users.c.workspace_id == workspace_id, users.c.role == "owner")
        .order_by(users.c.created_at)
        .limit(1)
    ).scalar_one_or_none()
    if owner is None:
        raise NotFound("This workspace has no owner; add one with mcp-crm users create --role owner.")
    return str(owner)


def list_workspaces(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(WORKSPACES).order_by(WORKSPACES.c.slug)).mappings()]


def set_trash_retention(conn: Connection, workspace_id: str, days: int) -> None:
    if not 1 <= days <= 3650:
        raise CrmError("Trash retention is 1 to 3650 days.")
    conn.execute(update(WORKSPACES).where(WORKSPACES.c.id == workspace_id).values(trash_retention_days=days))


def find_user(conn: Connection, workspace_id: str, email_or_id: str) -> dict[str, Any]:
    users = table_of(USERS)
    row = (
        conn.execute(
            select(users).where(
                users.c.workspace_id == workspace_id, or_(users.c.email == email_or_id, users.c.id == email_or_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"No user '{email_or_id}' in this workspace (give an email or a user id).")
    return dict(row)


# --- API keys ---------------------------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    conn: Connection,
    workspace_id: str,
    user_id: str,
    scopes: frozenset[str],
    name: str,
    expires_at: datetime | None = None,
) -> tuple[dict[str, Any], str]:
    """(the key's row, the secret): the secret is shown once and only its hash is kept."""
    user = find_user(conn, workspace_id, user_id)
    beyond = scopes - ROLE_SCOPES[user["role"]]
    if beyond:
        raise CrmError(
            f"{user['name']} is {user['role']}: a key of theirs cannot have {', '.join(sorted(beyond))} "
            f"(allowed: {', '.join(s for s in SCOPES if s in ROLE_SCOPES[user['role']])})."
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = {
        "id": new_id(),
        "workspace_id": workspace_id,
        "user_id": user["id"],
        "name": name,
        "prefix": secret[:11],
        "secret_hash": _hash(secret),
        "scopes": [s for s in SCOPES if s in scopes],
        "created_at": datetime.now(UTC),
        "expires_at": expires_at,
    }
    conn.execute(insert(API_KEYS).values(row))
    return row, secret


def list_keys(conn: Connection, workspace_id: str | None = None) -> list[dict[str, Any]]:
    query = select(API_KEYS).order_by(API_KEYS.c.id)
    if workspace_id is not None:
        query = query.where(API_KEYS.c.workspace_id == workspace_id)
    return [{k: v for k, v in r.items() if k != "secret_hash"} for r in conn.execute(query).mappings()]


def revoke_key(conn: Connection, id_or_prefix: str) -> dict[str, Any]:
    rows = (
        conn.execute(select(API_KEYS).where(or_(API_KEYS.c.id == id_or_prefix, API_KEYS.c.prefix == id_or_prefix)))
        .mappings()
        .all()
    )
    if len(rows) != 1:
        raise NotFound(f"No single key with id or prefix '{id_or_prefix}' (`mcp-crm keys list` shows them).")
    conn.execute(update(API_KEYS).where(API_KEYS.c.id == rows[0]["id"]).values(revoked_at=datetime.now(UTC)))
    return {k: v for k, v in rows[0].items() if k != "secret_hash"}


def verify_key(conn: Connection, secret: str) -> tuple[Principal, bool] | None:
    """(who the key speaks for, whether its last-used time is due a refresh), or None for a key that is
    unknown, revoked, expired, or whose user is inactive."""
    if not secret.startswith(KEY_PREFIX):
        return None
    users = table_of(USERS)
    row = conn.execute(
        select(API_KEYS, users.c.role, users.c.active)
        .join(users, users.c.id == API_KEYS.c.user_id)
        .where(API_KEYS.c.secret_hash == _hash(secret))
    ).first()
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None or not row.active:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    principal = Principal(
        workspace_id=row.workspace_id,
        user_id=row.user_id,
        credential_id=row.id,
        scopes=frozenset(row.scopes) & ROLE_SCOPES[row.role],
        expires_at=row.expires_at,
    )
    return principal, row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY


def touch_key(conn: Connection, key_id: str) -> None:
    conn.execute(update(API_KEYS).where(API_KEYS.c.id == key_id).values(last_used_at=datetime.now(UTC)))


# --- passwords (for the OAuth consent page) ---------------------------------------------------------

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def set_password(conn: Connection, user_id: str, password: str) -> None:
    if len(password) < 12:
        raise CrmError("A password has at least 12 characters.")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    encoded = "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()
    now = datetime.now(UTC)
    if conn.execute(
        update(PASSWORDS).where(PASSWORDS.c.user_id == user_id).values(hash=encoded, updated_at=now)
    ).rowcount:
        return
    conn.execute(insert(PASSWORDS).values(user_id=user_id, hash=encoded, updated_at=now))


def check_password(conn: Connection, workspace_id: str, email: str, password: str) -> dict[str, Any] | None:
    """The active user with this email and password in the workspace, or None."""
    users = table_of(USERS)
    row = (
        conn.execute(
            select(users, PASSWORDS.c.hash)
            .join(PASSWORDS, PASSWORDS.c.user_id == users.c.id)
            .where(users.c.workspace_id == workspace_id, users.c.email == email, users.c.active.is_(True))
        )
        .mappings()
        .first()
    )
    if not password_matches(row["hash"] if row else None, password) or row is None:
        return None
    return {k: v for k, v in row.items() if k != "hash"}


def password_matches(encoded: str | None, password: str) -> bool:
    """Whether `password` is the one `encoded` (from set_password) was made from. With no hash it spends the
    same time and says no, so a caller answers as slowly whether or not the user exists."""
    if encoded is None:
        hashlib.scrypt(password.encode(), salt=b"0" * 16, **_SCRYPT)
        return False
    _, salt, digest = encoded.split("$")
    attempt = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), **_SCRYPT)
    return hmac.compare_digest(attempt, base64.b64decode(digest))
