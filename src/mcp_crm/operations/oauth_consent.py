"""The consent page's side of OAuth: authorization requests waiting between /authorize and the person's answer,
who signed in (email and password, or an API key), what they may grant, and the code for what they chose.

The page's link carries a random secret naming the request; each form the page shows carries a fresh nonce that
the next post uses up. Only hashes of both are stored."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from mcp_crm.errors import CrmError
from mcp_crm.operations.access import ROLE_SCOPES, SCOPES, USERS, verify_key
from mcp_crm.operations.oauth import CODE_PREFIX, CODE_TTL, digest, forget_expired, ordered, utc_now
from mcp_crm.operations.records import table_of
from mcp_crm.store.tables import OAUTH_CLIENTS, OAUTH_CODES, OAUTH_REQUESTS, PASSWORDS, WORKSPACES

REQUEST_TTL = timedelta(minutes=15)  # time to sign in and choose on the consent page
MAX_FAILED_SIGN_INS = 5  # per authorization request; then the person starts again from their app
PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 4.2
MAX_STATE = 2000


@dataclass(frozen=True)
class AuthorizationRequest:
    """What a client asked for at /authorize."""

    client_id: str
    redirect_uri: str
    redirect_uri_explicit: bool
    state: str | None
    scopes: list[str] | None
    code_challenge: str
    resource: str | None


def start_request(conn: Connection, request: AuthorizationRequest) -> str:
    """Keeps the request; returns the secret the consent page's link carries."""
    if not PKCE_CHALLENGE.fullmatch(request.code_challenge):
        raise CrmError("code_challenge must be 43-128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636).")
    if request.state is not None and len(request.state) > MAX_STATE:
        raise CrmError(f"state is at most {MAX_STATE} characters.")
    moment = utc_now()
    forget_expired(conn, moment)
    secret = secrets.token_urlsafe(32)
    conn.execute(
        insert(OAUTH_REQUESTS).values(
            request_hash=digest(secret),
            client_id=request.client_id,
            redirect_uri=request.redirect_uri,
            redirect_uri_explicit=request.redirect_uri_explicit,
            state=request.state,
            scopes=request.scopes,
            code_challenge=request.code_challenge,
            resource=request.resource,
            expires_at=moment + REQUEST_TTL,
        )
    )
    return secret


def pending(conn: Connection, secret: str) -> dict[str, Any] | None:
    """The unexpired request the consent page's secret names, with its client's registration as `client`."""
    row = (
        conn.execute(
            select(OAUTH_REQUESTS, OAUTH_CLIENTS.c.info.label("client"))
            .join(OAUTH_CLIENTS, OAUTH_CLIENTS.c.client_id == OAUTH_REQUESTS.c.client_id)
            .where(OAUTH_REQUESTS.c.request_hash == digest(secret), OAUTH_REQUESTS.c.expires_at > utc_now())
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def new_nonce(conn: Connection, secret: str, *, signed_in: list[dict[str, Any]] | None = None) -> str:
    """A fresh nonce for the next form of the consent page (the previous one stops working), and who signed
    in (None: nobody yet, the sign-in form comes next)."""
    nonce = secrets.token_urlsafe(32)
    conn.execute(
        update(OAUTH_REQUESTS)
        .where(OAUTH_REQUESTS.c.request_hash == digest(secret))
        .values(nonce_hash=digest(nonce), signed_in=signed_in)
    )
    return nonce


def claim_nonce(conn: Connection, secret: str, nonce: str) -> bool:
    """Uses up the nonce a form was posted with; False when it is not the current one (an old or forged form,
    or a second post of the same form)."""
    done = conn.execute(
        update(OAUTH_REQUESTS)
        .where(
            OAUTH_REQUESTS.c.request_hash == digest(secret),
            OAUTH_REQUESTS.c.nonce_hash == digest(nonce),
            OAUTH_REQUESTS.c.expires_at > utc_now(),
        )
        .values(nonce_hash=None)
    )
    return done.rowcount == 1


def failed_sign_in(conn: Connection, secret: str) -> bool:
    """Counts a failed sign-in; True when the request may still be tried, False when it was dropped."""
    conn.execute(
        update(OAUTH_REQUESTS)
        .where(OAUTH_REQUESTS.c.request_hash == digest(secret))
        .values(failed_sign_ins=OAUTH_REQUESTS.c.failed_sign_ins + 1)
    )
    failures = conn.execute(
        select(OAUTH_REQUESTS.c.failed_sign_ins).where(OAUTH_REQUESTS.c.request_hash == digest(secret))
    ).scalar()
    if failures is None or failures >= MAX_FAILED_SIGN_INS:
        conn.execute(delete(OAUTH_REQUESTS).where(OAUTH_REQUESTS.c.request_hash == digest(secret)))
        return False
    return True


def finish_request(conn: Connection, secret: str) -> None:
    conn.execute(delete(OAUTH_REQUESTS).where(OAUTH_REQUESTS.c.request_hash == digest(secret)))


# --- who signs in on the consent page ------------------------------------------------------------------


def password_candidates(conn: Connection, email: str) -> list[dict[str, Any]]:
    """Every active user with this email (any workspace) who has a password: a person has one user per
    workspace. Their password hashes are compared by the caller, off the database's thread."""
    users = table_of(USERS)
    rows = conn.execute(
        select(users.c.id.label("user_id"), users.c.workspace_id, users.c.role, PASSWORDS.c.hash)
        .join(PASSWORDS, PASSWORDS.c.user_id == users.c.id)
        .where(func.lower(users.c.email) == email.strip().lower(), users.c.active.is_(True))
        .order_by(users.c.workspace_id)
    ).mappings()
    return [dict(r) for r in rows]


def signed_in_with_password(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sign-in record of the candidates whose password matched: at most their role's scopes."""
    return [
        {"workspace_id": c["workspace_id"], "user_id": c["user_id"], "scopes": ordered(ROLE_SCOPES[c["role"]])}
        for c in candidates
    ]


def signed_in_with_key(conn: Connection, api_key: str) -> list[dict[str, Any]]:
    """An API key signs its user in to its workspace, with at most the key's own scopes."""
    found = verify_key(conn, api_key.strip())
    if found is None:
        return []
    principal, _ = found
    return [{"workspace_id": principal.workspace_id, "user_id": principal.user_id, "scopes": ordered(principal.scopes)}]


def choices(conn: Connection, request: dict[str, Any]) -> list[dict[str, Any]]:
    """The workspaces the signed-in person may grant access to, with the scopes they may grant in each (what
    the client asked for, within their role and, for a key, the key's scopes)."""
    users = table_of(USERS)
    asked = set(request["scopes"] or SCOPES)
    found = []
    for signed in request["signed_in"] or []:
        row = (
            conn.execute(
                select(
                    users.c.name, users.c.email, users.c.role, WORKSPACES.c.name.label("workspace"), WORKSPACES.c.slug
                )
                .join(WORKSPACES, WORKSPACES.c.id == users.c.workspace_id)
                .where(users.c.id == signed["user_id"], users.c.active.is_(True))
            )
            .mappings()
            .first()
        )
        if row is None:
            continue
        offered = ordered(set(signed["scopes"]) & ROLE_SCOPES[row["role"]] & asked)
        if offered:
            found.append({**signed, **row, "scopes": offered})
    return found


# --- the code --------------------------------------------------------------------------------------------


def grant_code(conn: Connection, request: dict[str, Any], workspace_id: str, scopes: set[str]) -> str:
    """The authorization code for what the person chose; the request is used up."""
    offered = next((c for c in choices(conn, request) if c["workspace_id"] == workspace_id), None)
    if offered is None:
        raise CrmError("Choose one of the workspaces listed.")
    chosen = ordered(scopes & set(offered["scopes"]))
    if not chosen:
        raise CrmError("Choose at least one permission.")
    code = CODE_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(OAUTH_CODES).values(
            code_hash=digest(code),
            client_id=request["client_id"],
            workspace_id=workspace_id,
            user_id=offered["user_id"],
            scopes=chosen,
            code_challenge=request["code_challenge"],
            redirect_uri=request["redirect_uri"],
            redirect_uri_explicit=request["redirect_uri_explicit"],
            resource=request["resource"],
            expires_at=utc_now() + CODE_TTL,
        )
    )
    conn.execute(delete(OAUTH_REQUESTS).where(OAUTH_REQUESTS.c.request_hash == request["request_hash"]))
    return code
