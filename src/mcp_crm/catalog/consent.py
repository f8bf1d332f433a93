"""The consent page between /authorize and the client's redirect: the person signs in (email and password, or an
API key), picks the workspace and the scopes, and allows or denies.

Everything lives in the database (several replicas can serve one flow). Every form carries the request's secret
and a nonce that only the last page shown holds; a post uses the nonce up, so a forged, replayed or stale form is
refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.auth.provider import construct_redirect_uri
from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mcp_crm.catalog import consent_page as html
from mcp_crm.catalog.oauth import CONSENT_PATH, CrmOAuthProvider
from mcp_crm.errors import CrmError
from mcp_crm.operations import oauth_consent
from mcp_crm.operations.access import password_matches

EXPIRED = "This sign-in link has expired or was already used. Start connecting again from your app."
NO_MATCH = "The email and password, or the API key, did not match. Check them and try again."
TOO_MANY = "Too many failed sign-ins. Start connecting again from your app."
STALE = "This page was out of date (opened or sent twice). Please sign in again."
MAX_FORM = 16_384  # bytes; the forms hold a few short fields
Form = dict[str, list[str]]


def add_consent_routes(server: MCPServer[Any], provider: CrmOAuthProvider) -> None:
    consent = Consent(provider)
    server.custom_route(CONSENT_PATH, methods=["GET", "POST"])(consent.handle)


@dataclass(frozen=True)
class Claim:
    request: dict[str, Any]
    fresh: bool  # False: the form's nonce was not the current one


class Consent:
    def __init__(self, provider: CrmOAuthProvider) -> None:
        self.provider = provider
        parts = urlsplit(provider.public_url)
        self.origin = f"{parts.scheme}://{parts.netloc}".lower()

    async def handle(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._show(request.query_params.get("request", ""))
        origin = request.headers.get("origin", "null")  # browsers may send "null"; the nonce still guards
        if origin.lower() not in ("null", self.origin):
            return html.problem("This form was sent from another site.", 403)
        form = await _small_form(request)
        if form is None:
            return html.problem("The form is too large.", 413)
        secret, nonce, action = (_text(form, name) for name in ("request", "nonce", "action"))
        claim = await self._write(lambda conn: _claim(conn, secret, nonce))
        if claim is None:
            return html.problem(EXPIRED)
        if not claim.fresh or (action == "approve" and not claim.request["signed_in"]):
            return await self._sign_in_again(secret, claim.request, STALE)
        if action == "deny":
            await self._write(lambda conn: oauth_consent.finish_request(conn, secret))
            return _back(claim.request, error="access_denied", error_description="The person denied access.")
        if action == "sign_in":
            return await self._sign_in(form, secret, claim.request)
        if action == "approve":
            return await self._approve(form, secret, claim.request)
        return html.problem("Unknown action.")

    async def _write(self, work: Callable[[Connection], Any]) -> Any:
        return await self.provider.db.write(work)

    async def _show(self, secret: str) -> Response:
        def start(conn: Connection) -> tuple[dict[str, Any], str] | None:
            found = oauth_consent.pending(conn, secret)
            return (found, oauth_consent.new_nonce(conn, secret)) if found else None

        shown = await self._write(start)
        if shown is None:
            return html.problem(EXPIRED)
        request, nonce = shown
        return html.sign_in(_app(request), _destination(request), html.Form(secret, nonce))

    async def _sign_in_again(self, secret: str, request: dict[str, Any], message: str, email: str = "") -> Response:
        nonce = await self._write(lambda conn: oauth_consent.new_nonce(conn, secret))
        return html.sign_in(_app(request), _destination(request), html.Form(secret, nonce), message, email)

    async def _sign_in(self, form: Form, secret: str, request: dict[str, Any]) -> Response:
        api_key, email, password = _text(form, "api_key").strip(), _text(form, "email").strip(), _text(form, "password")
        if api_key:
            signed = await self.provider.db.read(lambda conn: oauth_consent.signed_in_with_key(conn, api_key))
        elif email and password:
            candidates = await self.provider.db.read(lambda conn: oauth_consent.password_candidates(conn, email))
            signed = await anyio.to_thread.run_sync(_matching, candidates, password)  # scrypt: off the event loop
        else:
            return await self._sign_in_again(secret, request, "Enter your email and password, or an API key.", email)

        def record(conn: Connection) -> tuple[str, list[dict[str, Any]]] | None:
            if signed:
                nonce = oauth_consent.new_nonce(conn, secret, signed_in=signed)
                return nonce, oauth_consent.choices(conn, {**request, "signed_in": signed})
            if not oauth_consent.failed_sign_in(conn, secret):
                return None
            return oauth_consent.new_nonce(conn, secret), []

        recorded = await self._write(record)
        if recorded is None:
            return html.problem(TOO_MANY, 429)
        nonce, choices = recorded
        if not signed:
            return html.sign_in(_app(request), _destination(request), html.Form(secret, nonce), NO_MATCH, email)
        return html.choose(_app(request), html.Form(secret, nonce), choices, request["scopes"])

    async def _approve(self, form: Form, secret: str, request: dict[str, Any]) -> Response:
        workspace_id, scopes = _text(form, "workspace"), set(form.get("scope", []))

        def grant(conn: Connection) -> str | tuple[str, str, list[dict[str, Any]]]:
            try:
                return oauth_consent.grant_code(conn, request, workspace_id, scopes)
            except CrmError as exc:  # nothing was written: show the choices again
                nonce = oauth_consent.new_nonce(conn, secret, signed_in=request["signed_in"])
                return str(exc), nonce, oauth_consent.choices(conn, request)

        granted = await self._write(grant)
        if isinstance(granted, str):
            return _back(request, code=granted)
        message, nonce, choices = granted
        return html.choose(_app(request), html.Form(secret, nonce), choices, request["scopes"], message)


def _claim(conn: Connection, secret: str, nonce: str) -> Claim | None:
    found = oauth_consent.pending(conn, secret)
    if found is None:
        return None
    return Claim(request=found, fresh=oauth_consent.claim_nonce(conn, secret, nonce))


def _matching(candidates: list[dict[str, Any]], password: str) -> list[dict[str, Any]]:
    if not candidates:
        password_matches(None, password)  # as slow as a real check: no hint whether the email exists
        return []
    return oauth_consent.signed_in_with_password([c for c in candidates if password_matches(c["hash"], password)])


def _back(request: dict[str, Any], **params: str) -> Response:
    """303, so the browser follows with a GET and never re-sends the form (and its password) to the client."""
    url = construct_redirect_uri(request["redirect_uri"], **params, state=request["state"])
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


async def _small_form(request: Request) -> Form | None:
    """The posted fields, or None past MAX_FORM bytes (read no further: this page is open to anyone)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    return parse_qs(body.decode(errors="replace"), keep_blank_values=True)


def _text(form: Form, name: str) -> str:
    return form.get(name, [""])[0]


def _app(request: dict[str, Any]) -> str:
    return request["client"].get("client_name") or f"An app (client {request['client_id']})"


def _destination(request: dict[str, Any]) -> str:
    parts = urlsplit(request["redirect_uri"])
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"
