"""Credentials over HTTP: bearer API keys verified against the store (OAuth tokens: catalog.oauth), and who a
tool call acts as.

stdio and `--no-auth` HTTP on loopback act as the local workspace's owner with every scope; an authenticated
HTTP call acts as the credential's user, in its workspace, with its scopes."""

from __future__ import annotations

import logging
from collections.abc import Callable

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from sqlalchemy.exc import DBAPIError

from mcp_crm.errors import CrmError
from mcp_crm.operations import Actor, Crm
from mcp_crm.operations.access import SCOPES, Principal, touch_key, verify_key

log = logging.getLogger("mcp_crm")
EVERY_SCOPE = frozenset(SCOPES)


class CrmAccessToken(AccessToken):
    """A verified credential: the SDK's access token plus the workspace and user it speaks for."""

    workspace_id: str
    user_id: str
    credential_id: str

    @classmethod
    def of(cls, token: str, principal: Principal, resource: str | None, client_id: str | None = None) -> CrmAccessToken:
        """`client_id`: the OAuth client a token was issued to; an API key is its own client."""
        return cls(
            token=token,
            client_id=client_id or principal.credential_id,
            scopes=sorted(principal.scopes),
            expires_at=int(principal.expires_at.timestamp()) if principal.expires_at else None,
            resource=resource,
            subject=principal.user_id,
            workspace_id=principal.workspace_id,
            user_id=principal.user_id,
            credential_id=principal.credential_id,
        )


class KeyVerifier(TokenVerifier):
    """Bearer `ak_` API keys. Only the key's hash is looked up; the key itself is never logged."""

    def __init__(self, crm: Callable[[], Crm | None], resource: str | None) -> None:
        self.crm = crm
        self.resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        crm = self.crm()
        if crm is None:
            return None
        found = await crm.db.read(lambda conn: verify_key(conn, token))
        if found is None:
            return None
        principal, stale = found
        if stale:
            try:
                await crm.db.write(lambda conn: touch_key(conn, principal.credential_id))
            except DBAPIError:  # a busy database must not refuse a valid key; the next call tries again
                log.info("could not record the last use of key %s", principal.credential_id)
        return CrmAccessToken.of(token, principal, self.resource)


def caller(local: Actor | None) -> tuple[Actor, frozenset[str]]:
    """Who the current tool call acts as, and with which scopes."""
    token = get_access_token()
    if isinstance(token, CrmAccessToken):
        actor = Actor(
            workspace_id=token.workspace_id, user_id=token.user_id, via="http", credential_id=token.credential_id
        )
        return actor, frozenset(token.scopes)
    if local is None:
        raise CrmError("This server needs a credential: send Authorization: Bearer <API key>.")
    return local, EVERY_SCOPE
