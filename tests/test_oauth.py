"""OAuth 2.1 as a Claude or ChatGPT custom connector drives it, over real HTTP on loopback: discovery (RFC 9728 and
RFC 8414), dynamic client registration, authorization code with PKCE through the consent page, tokens, refresh
with rotation, revocation; and the refusals (wrong verifier, reused code, wrong password, expired token)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl
from sqlalchemy import update

from mcp_crm.catalog.server import build_server
from mcp_crm.catalog.workspace_tools import all_tools
from mcp_crm.operations.access import create_key, create_user, create_workspace, set_password
from mcp_crm.operations.oauth import list_grants
from mcp_crm.store import Database, migrate
from mcp_crm.store.tables import OAUTH_TOKENS
from tests.helpers import call, fail, snapshot
from tests.test_hosted import HEADERS, INITIALIZE, session
from tests.test_transports import HttpServer, http_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PASSWORD = "correct horse battery"
REDIRECT = "http://127.0.0.1:9/callback"
APP = "Test <Connector> & co"


@dataclass
class People:
    acme: str  # workspace ids
    globex: str
    olive: str  # Olive's user id in acme
    key: str  # an API key of Olive's in acme, read only


async def _people(database_url: str) -> People:
    """Olive owns acme and is read_only in globex with the same password; in initech her password differs."""
    db = Database(database_url)
    try:
        await migrate(db)

        def setup(conn: Any) -> People:
            acme = create_workspace(conn, "acme", "Acme", "Olive Owner", "olive@acme.test")
            globex = create_workspace(conn, "globex", "Globex", "Gus Owner", "gus@globex.test")
            initech = create_workspace(conn, "initech", "Initech", "Ian Owner", "ian@initech.test")
            in_globex = create_user(conn, globex["id"], "Olive Guest", "olive@acme.test", "read_only")
            in_initech = create_user(conn, initech["id"], "Olive Elsewhere", "olive@acme.test", "member")
            set_password(conn, acme["owner"]["id"], PASSWORD)
            set_password(conn, in_globex["id"], PASSWORD)
            set_password(conn, in_initech["id"], "another password entirely")
            _, key = create_key(conn, acme["id"], acme["owner"]["id"], frozenset(["read"]), "consent")
            return People(acme=acme["id"], globex=globex["id"], olive=acme["owner"]["id"], key=key)

        return await db.write(setup)
    finally:
        await db.dispose()


def _forms(page: str) -> list[dict[str, Any]]:
    """Each form's fields: hidden and text inputs as values; checkboxes as `scopes` (and which are ticked)."""
    found = []
    for body in re.findall(r'<form method="post" action="consent">(.*?)</form>', page, re.S):
        fields: dict[str, Any] = {"scopes": [], "checked": []}
        for tag in re.findall(r"<input [^>]*>", body):
            name = re.search(r'name="([^"]*)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if not name:
                continue
            if 'type="checkbox"' in tag:
                fields["scopes"].append(unescape(value[1]) if value else "")
                if " checked" in tag:
                    fields["checked"].append(unescape(value[1]) if value else "")
            else:
                fields[name[1]] = unescape(value[1]) if value else ""
        found.append(fields)
    return found


def _without_nonce(page: str) -> str:
    return re.sub(r'name="nonce" value="[^"]*"', "", page)


@dataclass
class Connector:
    """What Claude or ChatGPT does: discover, register, send the person to /authorize, take the code."""

    http: httpx2.AsyncClient
    base: str
    client_id: str = ""
    client_secret: str = ""
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    state: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    metadata: dict[str, Any] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)  # every secret that crossed the wire, for the storage check

    async def discover(self) -> None:
        unauthorized = await self.http.post("/mcp", json=INITIALIZE, headers=HEADERS)
        assert unauthorized.status_code == 401
        where = re.search(r'resource_metadata="([^"]+)"', unauthorized.headers["www-authenticate"])
        assert where, unauthorized.headers
        resource = (await self.http.get(where[1])).json()
        assert resource["resource"] == f"{self.base}/mcp"
        (issuer,) = resource["authorization_servers"]
        self.metadata = (await self.http.get(f"{issuer.rstrip('/')}/.well-known/oauth-authorization-server")).json()
        assert self.metadata["issuer"].rstrip("/") == self.base
        assert self.metadata["code_challenge_methods_supported"] == ["S256"]
        assert set(self.metadata["scopes_supported"]) == {"read", "write", "delete", "send", "admin"}
        assert {"authorization_code", "refresh_token"} <= set(self.metadata["grant_types_supported"])

    async def register(self) -> None:
        registered = await self.http.post(
            self.metadata["registration_endpoint"],
            json={
                "client_name": APP,
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_post",
            },
        )
        assert registered.status_code == 201, registered.text
        self.client_id, self.client_secret = registered.json()["client_id"], registered.json()["client_secret"]

    async def authorize(self, scope: str | None = None) -> str:
        """The consent page's address /authorize sends the browser to."""
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).decode().rstrip("=")
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": self.state,
            "resource": f"{self.base}/mcp",
        } | ({"scope": scope} if scope else {})
        sent = await self.http.get(self.metadata["authorization_endpoint"], params=params)
        assert sent.status_code == 302, sent.text
        consent = sent.headers["location"]
        assert consent.startswith(f"{self.base}/oauth/consent?request=")
        self.seen.append(parse_qs(urlsplit(consent).query)["request"][0])
        return consent

    async def post(self, form: dict[str, Any], **changes: Any) -> httpx2.Response:
        data = {k: v for k, v in form.items() if k not in ("scopes", "checked")} | changes
        self.seen.append(form["nonce"])
        return await self.http.post(f"{self.base}/oauth/consent", data=data)

    def code_from(self, redirect: httpx2.Response) -> str:
        assert redirect.status_code == 303, redirect.text
        target = urlsplit(redirect.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == REDIRECT
        query = parse_qs(target.query)
        assert query["state"] == [self.state]
        self.seen.append(query["code"][0])
        return query["code"][0]

    async def token(self, **form: str) -> httpx2.Response:
        sent = await self.http.post(
            self.metadata["token_endpoint"],
            data={"client_id": self.client_id, "client_secret": self.client_secret} | form,
        )
        if sent.status_code == 200:
            self.seen += [sent.json()["access_token"], sent.json()["refresh_token"]]
        return sent

    async def exchange(self, code: str, verifier: str | None = None) -> httpx2.Response:
        return await self.token(
            grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier or self.verifier
        )

    async def sign_in_and_allow(self, workspace: str, scopes: list[str]) -> str:
        """The person's part: sign in with email and password, pick the workspace and scopes. Returns the code."""
        page = await self.http.get(await self.authorize())
        (sign_in, _deny) = _forms(page.text)
        chosen = await self.post(sign_in, email="Olive@Acme.test", password=PASSWORD)
        allow = next(f for f in _forms(chosen.text) if f.get("workspace") == workspace)
        return self.code_from(await self.post(allow, scope=scopes))


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[HttpServer, People, Connector]]:
    people = await _people(database_url)
    async with (
        http_server(database_url, tmp_path, options=("--rate-limit", "0")) as server,
        httpx2.AsyncClient(base_url=server.base_url, timeout=30) as http,
    ):
        connector = Connector(http=http, base=server.base_url)
        await connector.discover()
        await connector.register()
        yield server, people, connector


async def _bearer_status(server: HttpServer, token: str) -> int:
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=10) as http:
        headers = HEADERS | {"Authorization": f"Bearer {token}"}
        return (await http.post("/mcp", json=INITIALIZE, headers=headers)).status_code


async def test_a_connector_signs_in_uses_refreshes_and_revokes(served, database_url: str):
    server, people, connector = served
    page = await connector.http.get(await connector.authorize())
    assert page.status_code == 200 and page.headers["x-frame-options"] == "DENY"
    assert "Test &lt;Connector&gt; &amp; co" in page.text and APP not in page.text  # escaped
    assert not re.search(r"<script|<link|<img|src=|href=|url\(", page.text)  # no scripts, no external assets
    sign_in, deny = _forms(page.text)
    assert sign_in["action"] == "sign_in" and deny["action"] == "deny"

    chosen = await connector.post(sign_in, email="olive@acme.test", password=PASSWORD)
    forms = {f["workspace"]: f for f in _forms(chosen.text) if f["action"] == "approve"}
    # acme (owner) and globex (read_only) share the password; initech's is another one
    assert set(forms) == {people.acme, people.globex}
    assert forms[people.acme]["scopes"] == ["read", "write", "delete", "send", "admin"]
    assert forms[people.acme]["checked"] == ["read", "write", "delete"]  # admin and send only when ticked
    assert "Send email to contacts, leads and lists" in chosen.text
    assert forms[people.globex]["scopes"] == ["read"]

    code = connector.code_from(await connector.post(forms[people.acme], scope=["read", "write"]))
    tokens = await connector.exchange(code)
    assert tokens.status_code == 200, tokens.text
    issued = tokens.json()
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 3600 and issued["scope"] == "read write"
    assert issued["access_token"].startswith("at_") and issued["refresh_token"].startswith("rt_")

    async with session(server, issued["access_token"]) as client:
        me = await call(client, "users_me")
        assert (me["id"], me["email"]) == (people.olive, "olive@acme.test")
        listed = {t.name for t in (await client.list_tools()).tools}
        assert listed == {t.name for t in all_tools() if t.scopes <= {"read", "write"}}
        made = await call(client, "contacts_create", {"first_name": "Ada", "last_name": "L"})
        assert "contacts_delete needs the delete scope" in await fail(client, "contacts_delete", {"id": made["id"]})
        assert made["owner_id"] == people.olive

    refreshed = await connector.token(grant_type="refresh_token", refresh_token=issued["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    again = refreshed.json()
    assert again["access_token"] != issued["access_token"] and again["refresh_token"] != issued["refresh_token"]
    reused = await connector.token(grant_type="refresh_token", refresh_token=issued["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert await _bearer_status(server, issued["access_token"]) == 401  # rotated out with its refresh token
    assert await _bearer_status(server, again["access_token"]) == 200

    revoked = await connector.http.post(
        connector.metadata["revocation_endpoint"],
        data={
            "token": again["access_token"],
            "client_id": connector.client_id,
            "client_secret": connector.client_secret,
        },
    )
    assert revoked.status_code == 200
    assert await _bearer_status(server, again["access_token"]) == 401
    after = await connector.token(grant_type="refresh_token", refresh_token=again["refresh_token"])
    assert after.status_code == 400  # revoking the access token revoked the grant

    # only hashes are stored: no code, token, consent secret, nonce or password appears in any table
    stored = repr(await snapshot(database_url))
    assert connector.seen and PASSWORD not in stored
    for secret in connector.seen:
        assert secret not in stored
    assert "Traceback" not in server.output()


async def test_refusals_wrong_verifier_reused_code_expired_token(served, database_url: str):
    server, people, connector = served
    code = await connector.sign_in_and_allow(people.acme, ["read"])
    wrong = await connector.exchange(code, verifier=secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    first = await connector.exchange(code)
    assert first.status_code == 200, first.text
    reused = await connector.exchange(code)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # a code presented twice may have leaked: the tokens its first exchange gave are revoked
    assert await _bearer_status(server, first.json()["access_token"]) == 401

    access = (await connector.exchange(await connector.sign_in_and_allow(people.acme, ["read"]))).json()["access_token"]
    assert await _bearer_status(server, access) == 200
    db = Database(database_url)
    try:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await db.write(lambda conn: conn.execute(update(OAUTH_TOKENS).values(access_expires_at=past)))
    finally:
        await db.dispose()
    assert await _bearer_status(server, access) == 401

    other = Connector(http=connector.http, base=connector.base, metadata=connector.metadata)
    await other.register()
    stolen = await other.exchange(await connector.sign_in_and_allow(people.acme, ["read"]))
    assert stolen.status_code == 400  # another client cannot redeem this client's code
    assert "Traceback" not in server.output()


async def test_the_consent_page_refuses_what_it_should(served):
    server, people, connector = served
    page = await connector.http.get(await connector.authorize())
    sign_in, _deny = _forms(page.text)

    unknown = await connector.post(sign_in, email="nobody@acme.test", password=PASSWORD)
    wrong = await connector.post(_forms(unknown.text)[0], email="olive@acme.test", password="not the password")
    for shown in (unknown, wrong):
        assert shown.status_code == 200
        assert "did not match" in shown.text and "Sign in" in shown.text
    # no hint whether the email exists: the two pages differ only in the nonce and the email typed
    assert _without_nonce(unknown.text).replace("nobody@", "olive@") == _without_nonce(wrong.text)
    stale = await connector.post(sign_in, email="olive@acme.test", password=PASSWORD)  # the first page's nonce
    assert "out of date" in stale.text

    foreign = await connector.http.post(
        f"{connector.base}/oauth/consent",
        data={k: v for k, v in _forms(stale.text)[0].items() if isinstance(v, str)}
        | {"email": "olive@acme.test", "password": PASSWORD},
        headers={"Origin": "http://evil.example"},
    )
    assert foreign.status_code == 403
    huge = await connector.http.post(f"{connector.base}/oauth/consent", data={"email": "x" * 20_000})
    assert huge.status_code == 413

    by_key = await connector.post(_forms(stale.text)[0], api_key=people.key)  # a read-only key grants read only
    (allow,) = [f for f in _forms(by_key.text) if f["action"] == "approve"]
    assert (allow["workspace"], allow["scopes"]) == (people.acme, ["read"])
    none = await connector.post(allow, scope=[])
    assert "Choose at least one permission" in none.text
    (allow,) = [f for f in _forms(none.text) if f["action"] == "approve"]
    beyond = connector.code_from(await connector.post(allow, scope=["read", "write"]))  # write is not offered
    assert (await connector.exchange(beyond)).json()["scope"] == "read"

    page = await connector.http.get(await connector.authorize())
    denied = await connector.post(_forms(page.text)[1])
    assert denied.status_code == 303
    query = parse_qs(urlsplit(denied.headers["location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == [connector.state]
    assert (await connector.post(_forms(page.text)[1])).status_code == 400  # the request is gone

    page = await connector.http.get(await connector.authorize())
    form = _forms(page.text)[0]
    for _ in range(5):
        shown = await connector.post(form, email="olive@acme.test", password="guess")
        form = _forms(shown.text)[0] if shown.status_code == 200 else form
    assert shown.status_code == 429 and "Too many failed sign-ins" in shown.text

    elsewhere = await connector.http.get(
        connector.metadata["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": connector.client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": "x" * 43,
            "state": "s",
            "resource": "https://other.example/mcp",
        },
    )
    assert elsewhere.status_code == 302 and "error=invalid_target" in elsewhere.headers["location"]
    assert "Traceback" not in server.output()


async def test_an_app_that_asks_for_send_gets_it_ticked_and_can_call_email_send(served):
    server, people, connector = served
    page = await connector.http.get(await connector.authorize(scope="read send"))
    sign_in, _deny = _forms(page.text)
    chosen = await connector.post(sign_in, email="olive@acme.test", password=PASSWORD)
    forms = {f["workspace"]: f for f in _forms(chosen.text) if f["action"] == "approve"}
    assert forms[people.acme]["scopes"] == forms[people.acme]["checked"] == ["read", "send"]  # asked: ticked
    assert forms[people.globex]["scopes"] == ["read"]  # read_only: no send

    code = connector.code_from(await connector.post(forms[people.acme], scope=["read", "send"]))
    issued = (await connector.exchange(code)).json()
    assert issued["scope"] == "read send"
    async with session(server, issued["access_token"]) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert "email_send" in listed and "contacts_create" not in listed
        contact = {"contact_id": "00000000-0000-0000-0000-000000000000"}
        refused = await fail(client, "email_send", {"to": contact, "subject": "Hi", "body": "Hi", "dry_run": True})
        # past the scope check, refused for what it is: the workspace has no email connection
        assert "no email connection yet" in refused and "scope" not in refused
    assert "Traceback" not in server.output()


@dataclass
class Memory:
    """Token storage for the SDK's OAuth client."""

    tokens: OAuthToken | None = None
    client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def test_the_mcp_sdks_own_oauth_client_connects(database_url: str, tmp_path: Path):
    """Interoperability: the SDK's OAuthClientProvider (discovery, registration, PKCE, token exchange) with only
    the person's part, the browser on the consent page, played here."""
    people = await _people(database_url)
    async with (
        http_server(database_url, tmp_path, options=("--rate-limit", "0")) as server,
        httpx2.AsyncClient(timeout=30) as browser,
    ):
        person = Connector(http=browser, base=server.base_url)
        landed: list[str] = []

        async def open_browser(url: str) -> None:
            page = await browser.get(url, follow_redirects=True)
            chosen = await person.post(_forms(page.text)[0], email="olive@acme.test", password=PASSWORD)
            allow = next(f for f in _forms(chosen.text) if f.get("workspace") == people.acme)
            landed.append((await person.post(allow, scope=["read", "write"])).headers["location"])

        async def callback() -> AuthorizationCodeResult:
            query = parse_qs(urlsplit(landed[-1]).query)
            return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0])

        storage = Memory()
        auth = OAuthClientProvider(
            server.mcp_url,
            OAuthClientMetadata(client_name="SDK client", redirect_uris=[AnyUrl(REDIRECT)]),
            storage,
            redirect_handler=open_browser,
            callback_handler=callback,
        )
        async with (
            httpx2.AsyncClient(auth=auth, timeout=30) as http,
            Client(streamable_http_client(server.mcp_url, http_client=http)) as client,
        ):
            assert (await call(client, "users_me"))["id"] == people.olive
            denied = await fail(client, "trash_purge", {"ids": [people.olive]})
            assert "trash_purge needs the admin and delete scope" in denied
        assert storage.tokens is not None and storage.tokens.scope == "read write"
    assert "Traceback" not in server.output()


def test_oauth_needs_an_https_public_url_off_loopback(tmp_path: Path):
    """http on a LAN address cannot be an OAuth issuer: the server then serves API keys alone."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    for public_url, oauth in [
        ("https://crm.example.com", True),
        ("http://127.0.0.1:8765", True),
        ("http://192.168.1.20:8765", False),
    ]:
        routes = {
            getattr(r, "path", None)
            for r in build_server(url, via="http", public_url=public_url).streamable_http_app(host="127.0.0.1").routes
        }
        assert ("/authorize" in routes and "/oauth/consent" in routes) is oauth, public_url
        assert "/.well-known/oauth-protected-resource/mcp" in routes


async def test_an_admin_lists_and_revokes_grants_from_the_cli(served, database_url: str):
    server, people, connector = served
    access = (await connector.exchange(await connector.sign_in_and_allow(people.acme, ["read"]))).json()["access_token"]
    assert await _bearer_status(server, access) == 200
    cli = [sys.executable, "-m", "mcp_crm", "oauth"]
    listed = subprocess.run(
        [*cli, "list", "--database-url", database_url],
        capture_output=True,
        text=True,
        env=os.environ | {"COLUMNS": "300"},
    )
    assert listed.returncode == 0, listed.stderr
    db = Database(database_url)
    try:
        (grant,) = await db.read(lambda conn: list_grants(conn))
    finally:
        await db.dispose()
    assert grant["id"] in listed.stdout and access not in listed.stdout
    revoked = subprocess.run(
        [*cli, "revoke", grant["id"], "--database-url", database_url], capture_output=True, text=True
    )
    assert revoked.returncode == 0, revoked.stderr
    assert await _bearer_status(server, access) == 401
