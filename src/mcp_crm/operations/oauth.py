"""OAuth 2.1 for connectors that cannot send a static header (Claude, ChatGPT): registered clients, single-use
authorization codes, and access/refresh tokens bound to a client, a user, a workspace, scopes and the resource.
(The consent page's side, from /authorize to the code: oauth_consent.)

Codes, tokens and the consent page's secrets are `secrets.token_urlsafe(32)` (256 bits) and stored only as
SHA-256 hashes. A token's scopes are cut down to its user's role every time it is used or refreshed, as an API
key's are; an inactive or deleted user's tokens stop working."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from mcp_crm.errors import CrmError
from mcp_crm.ids import new_id
from mcp_crm.operations.access import ROLE_SCOPES, SCOPES, USERS, Principal
from mcp_crm.operations.records import table_of
from mcp_crm.store.tables import OAUTH_CLIENTS, OAUTH_CODES, OAUTH_REQUESTS, OAUTH_TOKENS

ACCESS_PREFIX = "at_"
REFRESH_PREFIX = "rt_"
CODE_PREFIX = "ac_"
ACCESS_TTL = timedelta(hours=1)
REFRESH_TTL = timedelta(days=30)
CODE_TTL = timedelta(minutes=5)
UNAUTHORIZED_CLIENT_TTL = timedelta(days=1)  # registrations that never got a token are forgotten after this


def digest(secret: str) -> str:
    """SHA-256 of a random secret: right for 256-bit secrets (passwords get scrypt)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def utc_now() -> datetime:
    return datetime.now(UTC)


def ordered(scopes: frozenset[str] | set[str] | list[str]) -> list[str]:
    return [s for s in SCOPES if s in scopes]


# --- clients -----------------------------------------------------------------------------------------


def register_client(conn: Connection, client_id: str, info: dict[str, Any]) -> None:
    now = utc_now()
    # registration is open to anyone: forget registrations that never got a token
    conn.execute(
        delete(OAUTH_CLIENTS).where(
            OAUTH_CLIENTS.c.created_at < now - UNAUTHORIZED_CLIENT_TTL, OAUTH_CLIENTS.c.authorized_at.is_(None)
        )
    )
    conn.execute(insert(OAUTH_CLIENTS).values(client_id=client_id, info=info, created_at=now))


def get_client(conn: Connection, client_id: str) -> dict[str, Any] | None:
    return conn.execute(select(OAUTH_CLIENTS.c.info).where(OAUTH_CLIENTS.c.client_id == client_id)).scalar()


def forget_expired(conn: Connection, now: datetime) -> None:
    conn.execute(delete(OAUTH_REQUESTS).where(OAUTH_REQUESTS.c.expires_at < now))
    conn.execute(delete(OAUTH_CODES).where(OAUTH_CODES.c.expires_at < now))
    conn.execute(delete(OAUTH_TOKENS).where(OAUTH_TOKENS.c.refresh_expires_at < now))


# --- codes and tokens ----------------------------------------------------------------------------------


def load_code(conn: Connection, client_id: str, code: str) -> dict[str, Any] | None:
    """The unused code, or None. A code presented again after its exchange revokes the tokens that exchange
    issued: someone else may hold it (RFC 6749 4.1.2)."""
    row = (
        conn.execute(
            select(OAUTH_CODES).where(OAUTH_CODES.c.code_hash == digest(code), OAUTH_CODES.c.client_id == client_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    if row["used_at"] is not None:
        if row["token_id"] is not None:
            revoke(conn, row["token_id"])
        return None
    return dict(row)


@dataclass(frozen=True)
class Issued:
    access_token: str
    refresh_token: str
    expires_in: int
    scopes: list[str]


def exchange_code(conn: Connection, code: dict[str, Any]) -> Issued:
    now = utc_now()
    used = conn.execute(
        update(OAUTH_CODES)
        .where(
            OAUTH_CODES.c.code_hash == code["code_hash"],
            OAUTH_CODES.c.used_at.is_(None),
            OAUTH_CODES.c.expires_at > now,
        )
        .values(used_at=now)
    )
    if used.rowcount != 1:
        raise CrmError("The authorization code was already used or has expired; sign in again.")
    scopes = _current_scopes(conn, code["user_id"], code["scopes"])
    token_id = new_id()
    access, refresh = _new_pair()
    conn.execute(
        insert(OAUTH_TOKENS).values(
            id=token_id,
            client_id=code["client_id"],
            workspace_id=code["workspace_id"],
            user_id=code["user_id"],
            scopes=scopes,
            resource=code["resource"],
            access_hash=digest(access),
            access_expires_at=now + ACCESS_TTL,
            refresh_hash=digest(refresh),
            refresh_expires_at=now + REFRESH_TTL,
            created_at=now,
        )
    )
    conn.execute(update(OAUTH_CODES).where(OAUTH_CODES.c.code_hash == code["code_hash"]).values(token_id=token_id))
    conn.execute(
        update(OAUTH_CLIENTS)
        .where(OAUTH_CLIENTS.c.client_id == code["client_id"], OAUTH_CLIENTS.c.authorized_at.is_(None))
        .values(authorized_at=now)
    )
    return Issued(access, refresh, int(ACCESS_TTL.total_seconds()), scopes)


def _new_pair() -> tuple[str, str]:
    return ACCESS_PREFIX + secrets.token_urlsafe(32), REFRESH_PREFIX + secrets.token_urlsafe(32)


def _current_scopes(conn: Connection, user_id: str, scopes: list[str]) -> list[str]:
    users = table_of(USERS)
    row = conn.execute(select(users.c.role, users.c.active).where(users.c.id == user_id)).first()
    if row is None or not row.active:
        raise CrmError("The user this grant is for is no longer active; sign in again.")
    kept = ordered(set(scopes) & ROLE_SCOPES[row.role])
    if not kept:
        raise CrmError("The user's role no longer allows any of the granted permissions.")
    return kept


def load_refresh(conn: Connection, client_id: str, token: str) -> dict[str, Any] | None:
    if not token.startswith(REFRESH_PREFIX):
        return None
    row = (
        conn.execute(
            select(OAUTH_TOKENS).where(
                OAUTH_TOKENS.c.refresh_hash == digest(token),
                OAUTH_TOKENS.c.client_id == client_id,
                OAUTH_TOKENS.c.revoked_at.is_(None),
                OAUTH_TOKENS.c.refresh_expires_at > utc_now(),
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def rotate(conn: Connection, token_id: str, refresh_token: str, scopes: list[str]) -> Issued:
    """New access and refresh tokens for the grant; the refresh token presented stops working, and so does
    the access token issued with it."""
    now = utc_now()
    row = conn.execute(select(OAUTH_TOKENS.c.user_id).where(OAUTH_TOKENS.c.id == token_id)).first()
    if row is None:
        raise CrmError("The refresh token is no longer valid; sign in again.")
    kept = _current_scopes(conn, row.user_id, scopes)
    access, refresh = _new_pair()
    done = conn.execute(
        update(OAUTH_TOKENS)
        .where(
            OAUTH_TOKENS.c.id == token_id,
            OAUTH_TOKENS.c.refresh_hash == digest(refresh_token),
            OAUTH_TOKENS.c.revoked_at.is_(None),
        )
        .values(
            scopes=kept,
            access_hash=digest(access),
            access_expires_at=now + ACCESS_TTL,
            refresh_hash=digest(refresh),
            refresh_expires_at=now + REFRESH_TTL,
            refreshed_at=now,
        )
    )
    if done.rowcount != 1:  # a concurrent refresh with the same token won
        raise CrmError("The refresh token was already used; sign in again.")
    return Issued(access, refresh, int(ACCESS_TTL.total_seconds()), kept)


@dataclass(frozen=True)
class Grant:
    principal: Principal
    client_id: str
    resource: str | None


def verify_access(conn: Connection, token: str) -> Grant | None:
    """Who an access token speaks for, or None for one that is unknown, expired or revoked, or whose user is
    inactive or gone."""
    if not token.startswith(ACCESS_PREFIX):
        return None
    users = table_of(USERS)
    row = conn.execute(
        select(OAUTH_TOKENS, users.c.role, users.c.active)
        .join(users, users.c.id == OAUTH_TOKENS.c.user_id)
        .where(OAUTH_TOKENS.c.access_hash == digest(token))
    ).first()
    if row is None or row.revoked_at is not None or not row.active or row.access_expires_at <= utc_now():
        return None
    principal = Principal(
        workspace_id=row.workspace_id,
        user_id=row.user_id,
        credential_id=row.id,
        scopes=frozenset(row.scopes) & ROLE_SCOPES[row.role],
        expires_at=row.access_expires_at,
    )
    return Grant(principal=principal, client_id=row.client_id, resource=row.resource)


def revoke(conn: Connection, token_id: str) -> None:
    """Both tokens of the grant stop working."""
    conn.execute(
        update(OAUTH_TOKENS)
        .where(OAUTH_TOKENS.c.id == token_id, OAUTH_TOKENS.c.revoked_at.is_(None))
        .values(revoked_at=utc_now())
    )


def list_grants(conn: Connection, workspace_id: str | None = None) -> list[dict[str, Any]]:
    """Apps signed in with OAuth: one row per grant (never a token), newest first."""
    query = (
        select(OAUTH_TOKENS.c[*GRANT_COLUMNS], OAUTH_CLIENTS.c.info)
        .join(OAUTH_CLIENTS, OAUTH_CLIENTS.c.client_id == OAUTH_TOKENS.c.client_id)
        .order_by(OAUTH_TOKENS.c.id.desc())
    )
    if workspace_id is not None:
        query = query.where(OAUTH_TOKENS.c.workspace_id == workspace_id)
    return [
        {**{k: v for k, v in row.items() if k != "info"}, "client_name": (row["info"] or {}).get("client_name")}
        for row in conn.execute(query).mappings()
    ]


def revoke_grant(conn: Connection, token_id: str) -> None:
    if conn.execute(select(OAUTH_TOKENS.c.id).where(OAUTH_TOKENS.c.id == token_id)).first() is None:
        raise CrmError(f"No OAuth grant '{token_id}' (`mcp-crm oauth list` shows them).")
    revoke(conn, token_id)


GRANT_COLUMNS = (
    "id",
    "client_id",
    "workspace_id",
    "user_id",
    "scopes",
    "created_at",
    "refresh_expires_at",
    "revoked_at",
)
