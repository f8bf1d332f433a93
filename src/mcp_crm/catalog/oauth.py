"""The OAuth authorization server the MCP SDK mounts (/authorize, /token, /register, /revoke and the metadata),
backed by operations.oauth. Bearer credentials on /mcp are our `ak_` API keys or OAuth access tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.auth.provider import (
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl, AnyUrl, ValidationError

from mcp_crm.catalog.auth import CrmAccessToken, KeyVerifier
from mcp_crm.errors import CrmError
from mcp_crm.operations import Crm, oauth, oauth_consent
from mcp_crm.operations.access import KEY_PREFIX
from mcp_crm.store import Database

CONSENT_PATH = "/oauth/consent"


class CrmAuthorizationCode(AuthorizationCode):
    code_hash: str
    workspace_id: str
    user_id: str


class CrmRefreshToken(RefreshToken):
    token_id: str


def same_resource(given: str, ours: str) -> bool:
    """RFC 8707 resource indicators compared as URLs (case and default ports aside), a trailing slash aside."""
    try:
        return str(AnyHttpUrl(given)).removesuffix("/") == str(AnyHttpUrl(ours)).removesuffix("/")
    except ValidationError:
        return False


class CrmOAuthProvider(OAuthAuthorizationServerProvider[CrmAuthorizationCode, CrmRefreshToken, CrmAccessToken]):
    def __init__(self, crm: Callable[[], Crm | None], public_url: str, resource: str) -> None:
        self.crm = crm
        self.public_url = public_url.rstrip("/")
        self.resource = resource
        self.keys = KeyVerifier(crm, resource)

    @property
    def db(self) -> Database:
        crm = self.crm()
        if crm is None:
            raise RuntimeError("the server is still starting")
        return crm.db

    # --- clients ---

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        info = await self.db.read(lambda conn: oauth.get_client(conn, client_id))
        return OAuthClientInformationFull.model_validate(info) if info else None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        info = client_info.model_dump(mode="json", exclude_none=True)
        await self.db.write(lambda conn: oauth.register_client(conn, client_info.client_id, info))

    # --- authorization: the consent page decides ---

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if params.resource is not None and not same_resource(params.resource, self.resource):
            raise AuthorizeError("invalid_target", f"This server is the resource {self.resource}.")
        request = oauth_consent.AuthorizationRequest(
            client_id=client.client_id,
            redirect_uri=str(params.redirect_uri),
            redirect_uri_explicit=params.redirect_uri_provided_explicitly,
            state=params.state,
            scopes=params.scopes,
            code_challenge=params.code_challenge,
            resource=self.resource,  # tokens are always for this server's /mcp
        )
        try:
            secret = await self.db.write(lambda conn: oauth_consent.start_request(conn, request))
        except CrmError as exc:
            raise AuthorizeError("invalid_request", str(exc)) from None
        return f"{self.public_url}{CONSENT_PATH}?request={secret}"

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> CrmAuthorizationCode | None:
        row = await self.db.write(lambda conn: oauth.load_code(conn, client.client_id, authorization_code))
        if row is None:
            return None
        return CrmAuthorizationCode(
            code=authorization_code,
            code_hash=row["code_hash"],
            scopes=row["scopes"],
            expires_at=row["expires_at"].timestamp(),
            client_id=row["client_id"],
            code_challenge=row["code_challenge"],
            redirect_uri=AnyUrl(row["redirect_uri"]),
            redirect_uri_provided_explicitly=row["redirect_uri_explicit"],
            resource=row["resource"],
            subject=row["user_id"],
            workspace_id=row["workspace_id"],
            user_id=row["user_id"],
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: CrmAuthorizationCode
    ) -> OAuthToken:
        code: dict[str, Any] = {
            "code_hash": authorization_code.code_hash,
            "client_id": authorization_code.client_id,
            "workspace_id": authorization_code.workspace_id,
            "user_id": authorization_code.user_id,
            "scopes": authorization_code.scopes,
            "resource": authorization_code.resource,
        }
        try:
            issued = await self.db.write(lambda conn: oauth.exchange_code(conn, code))
        except CrmError as exc:
            raise TokenError("invalid_grant", str(exc)) from None
        return _token(issued)

    # --- refresh ---

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> CrmRefreshToken | None:
        row = await self.db.read(lambda conn: oauth.load_refresh(conn, client.client_id, refresh_token))
        if row is None:
            return None
        return CrmRefreshToken(
            token=refresh_token,
            client_id=row["client_id"],
            scopes=row["scopes"],
            expires_at=int(row["refresh_expires_at"].timestamp()),
            resource=row["resource"],
            subject=row["user_id"],
            token_id=row["id"],
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: CrmRefreshToken, scopes: list[str]
    ) -> OAuthToken:
        try:
            issued = await self.db.write(
                lambda conn: oauth.rotate(conn, refresh_token.token_id, refresh_token.token, scopes)
            )
        except CrmError as exc:
            raise TokenError("invalid_grant", str(exc)) from None
        return _token(issued)

    # --- bearer tokens on /mcp, and revocation ---

    async def load_access_token(self, token: str) -> CrmAccessToken | None:
        if token.startswith(KEY_PREFIX):
            found = await self.keys.verify_token(token)
            return found if isinstance(found, CrmAccessToken) else None
        grant = await self.db.read(lambda conn: oauth.verify_access(conn, token))
        if grant is None:
            return None
        return CrmAccessToken.of(token, grant.principal, grant.resource, grant.client_id)

    async def revoke_token(self, token: CrmAccessToken | CrmRefreshToken) -> None:
        if isinstance(token, CrmRefreshToken):
            token_id = token.token_id
        elif token.token.startswith(oauth.ACCESS_PREFIX):
            token_id = token.credential_id
        else:
            return  # API keys are revoked with `mcp-crm keys revoke`, never through OAuth
        await self.db.write(lambda conn: oauth.revoke(conn, token_id))


def _token(issued: oauth.Issued) -> OAuthToken:
    return OAuthToken(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        scope=" ".join(issued.scopes),
        refresh_token=issued.refresh_token,
    )
