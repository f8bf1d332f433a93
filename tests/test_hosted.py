"""Hosted mode over real HTTP on loopback: API keys, workspaces, scopes, the tool list per key, the rate limit, and
email_send behind its own send scope (a real send to an SMTP server in the test process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import func, select
from typer.testing import CliRunner

from mcp_crm.catalog.workspace_tools import all_tools
from mcp_crm.cli import app
from mcp_crm.operations.access import create_key, create_user, create_workspace, revoke_key
from mcp_crm.store import Database, migrate
from mcp_crm.store.tables import EMAIL_OUTBOX, EMAIL_SENDS
from tests.helpers import call, fail
from tests.test_transports import HttpServer, http_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@dataclass
class Team:
    keys: dict[str, str]  # name -> secret
    users: dict[str, dict[str, Any]]
    revoked: str
    expired: str


async def _team(database_url: str) -> Team:
    db = Database(database_url)
    try:
        await migrate(db)

        def setup(conn: Any) -> Team:
            acme = create_workspace(conn, "acme", "Acme", "Olive Owner", "olive@acme.test")
            other = create_workspace(conn, "globex", "Globex", "Gus Owner", "gus@globex.test")
            reader = create_user(conn, acme["id"], "Rita Reader", "rita@acme.test", "read_only")
            member = create_user(conn, acme["id"], "Max Member", "max@acme.test", "member")
            keys = {
                "owner": create_key(
                    conn, acme["id"], acme["owner"]["id"], frozenset(["read", "write", "delete", "admin"]), "o"
                )[1],
                "writer": create_key(conn, acme["id"], member["id"], frozenset(["read", "write"]), "w")[1],
                "sender": create_key(conn, acme["id"], member["id"], frozenset(["read", "send"]), "s")[1],
                "reader": create_key(conn, acme["id"], reader["id"], frozenset(["read"]), "r")[1],
                "globex": create_key(conn, other["id"], other["owner"]["id"], frozenset(["read", "write"]), "g")[1],
            }
            revoked_row, revoked = create_key(conn, acme["id"], member["id"], frozenset(["read"]), "gone")
            revoke_key(conn, revoked_row["id"])
            past = datetime.now(UTC) - timedelta(minutes=1)
            expired = create_key(conn, acme["id"], member["id"], frozenset(["read"]), "old", past)[1]
            users = {"owner": acme["owner"], "reader": reader, "member": member}
            return Team(keys=keys, users=users, revoked=revoked, expired=expired)

        return await db.write(setup)
    finally:
        await db.dispose()


@asynccontextmanager
async def session(server: HttpServer, key: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(server.mcp_url, http_client=http)) as client,
    ):
        yield client


@pytest.fixture
async def hosted(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[HttpServer, Team]]:
    team = await _team(database_url)
    async with http_server(database_url, tmp_path, options=("--rate-limit", "0")) as server:
        yield server, team


async def test_no_key_or_a_bad_key_gets_401_with_where_to_authenticate(hosted):
    server, team = hosted
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=10) as http:
        for key in (None, "ak_not-a-real-key", team.revoked, team.expired, "Basic abc"):
            headers = HEADERS | ({"Authorization": f"Bearer {key}"} if key else {})
            response = await http.post("/mcp", json=INITIALIZE, headers=headers)
            assert response.status_code == 401, (key, response.text)
            assert "resource_metadata=" in response.headers["www-authenticate"]
        metadata = await http.get("/.well-known/oauth-protected-resource/mcp")
        assert metadata.json()["resource"] == f"{server.base_url}/mcp"
        ok = await http.post(
            "/mcp", json=INITIALIZE, headers=HEADERS | {"Authorization": f"Bearer {team.keys['owner']}"}
        )
        assert ok.status_code == 200
    for secret in team.keys.values():
        assert secret not in server.output()


async def test_a_key_acts_as_its_user_in_its_workspace_only(hosted):
    server, team = hosted
    async with session(server, team.keys["owner"]) as acme:
        me = await call(acme, "users_me")
        assert (me["id"], me["email"]) == (team.users["owner"]["id"], "olive@acme.test")
        ada = await call(acme, "contacts_create", {"first_name": "Ada", "last_name": "L"})
        assert ada["owner_id"] == me["id"]
        log = await call(acme, "audit_list", {"filter": {"field": "record_id", "op": "eq", "value": ada["id"]}})
        (entry,) = log["items"]
        assert entry["via"] == "http" and entry["credential_id"] and entry["user_id"] == me["id"]
    async with session(server, team.keys["globex"]) as globex:
        assert "No contact with id" in await fail(globex, "contacts_get", {"id": ada["id"]})
        assert "No contact with id" in await fail(globex, "contacts_update", {"id": ada["id"], "job_title": "x"})
        listed = await call(globex, "contacts_list", {"include_total": True})
        assert listed["items"] == [] and listed["total"] == 0
        assert "no contact with id" in await fail(globex, "tasks_create", {"name": "t", "contact_id": ada["id"]})


async def test_each_key_lists_and_calls_only_what_its_scopes_allow(hosted):
    server, team = hosted
    expected = {
        "reader": {"read"},
        "writer": {"read", "write"},
        "sender": {"read", "send"},
        "owner": {"read", "write", "delete", "admin"},
    }
    for name, scopes in expected.items():
        async with session(server, team.keys[name]) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            assert listed == {t.name for t in all_tools() if t.scopes <= scopes}, name
    async with session(server, team.keys["reader"]) as reader:
        assert "contacts_create" not in {t.name for t in (await reader.list_tools()).tools}
        error = await fail(reader, "contacts_create", {"first_name": "No", "last_name": "Way"})
        assert "contacts_create needs the write scope; this credential has read" in error
        assert (await call(reader, "contacts_list", {}))["items"] == []
    async with session(server, team.keys["writer"]) as writer:
        made = await call(writer, "contacts_create", {"first_name": "Kim", "last_name": "W"})
        assert "needs the delete scope" in await fail(writer, "contacts_delete", {"id": made["id"]})
        assert "needs the admin scope" in await fail(writer, "users_create", {"name": "X", "email": "x@acme.test"})
        assert "needs the admin scope" in await fail(writer, "audit_list", {})


async def test_a_key_never_exceeds_its_users_role(database_url: str):
    db = Database(database_url)
    try:
        await migrate(db)

        def setup(conn: Any) -> tuple[str, str]:
            acme = create_workspace(conn, "acme", "Acme", "Olive", "olive@acme.test")
            return acme["id"], create_user(conn, acme["id"], "Rita", "rita@acme.test", "read_only")["id"]

        acme, reader = await db.write(setup)
        for scope in ("write", "send"):
            wanted = frozenset(["read", scope])
            with pytest.raises(Exception, match=rf"read_only: a key of theirs cannot have {scope} \(allowed: read\)"):
                await db.write(lambda conn, wanted=wanted: create_key(conn, acme, reader, wanted, "too much"))
    finally:
        await db.dispose()


async def test_the_rate_limit_answers_429_with_retry_after(database_url: str, tmp_path: Path):
    team = await _team(database_url)
    async with (
        http_server(database_url, tmp_path, options=("--rate-limit", "12")) as server,  # a burst of 2
        httpx2.AsyncClient(base_url=server.base_url, timeout=10) as http,
    ):
        headers = HEADERS | {"Authorization": f"Bearer {team.keys['owner']}"}
        statuses = [(await http.post("/mcp", json=INITIALIZE, headers=headers)).status_code for _ in range(4)]
        assert statuses[:2] == [200, 200] and statuses[-1] == 429
        limited = await http.post("/mcp", json=INITIALIZE, headers=headers)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        # another key has its own budget
        other = HEADERS | {"Authorization": f"Bearer {team.keys['writer']}"}
        assert (await http.post("/mcp", json=INITIALIZE, headers=other)).status_code == 200
        assert (await http.get("/health")).status_code == 200  # health checks are never limited


async def test_a_bad_host_header_is_refused_with_421(hosted):
    server, team = hosted
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=10) as http:
        headers = HEADERS | {"Authorization": f"Bearer {team.keys['owner']}", "Host": "evil.example"}
        assert (await http.post("/mcp", json=INITIALIZE, headers=headers)).status_code == 421


async def test_stateless_mode_serves_without_sessions(database_url: str, tmp_path: Path):
    team = await _team(database_url)
    async with (
        http_server(database_url, tmp_path, options=("--stateless",)) as server,
        session(server, team.keys["owner"]) as client,
    ):
        made = await call(client, "contacts_create", {"first_name": "Sam", "last_name": "Less"})
        assert (await call(client, "contacts_get", {"id": made["id"]}))["first_name"] == "Sam"
    assert "Traceback" not in server.output()


async def test_an_oversized_request_body_is_refused_with_413(hosted):
    server, team = hosted
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=30) as http:
        headers = HEADERS | {"Authorization": f"Bearer {team.keys['owner']}"}
        huge = INITIALIZE | {"padding": "x" * (5 * 1024 * 1024)}
        assert (await http.post("/mcp", json=huge, headers=headers)).status_code == 413


# --- sending email: the send scope ------------------------------------------------------------------------------


async def _email_rows(database_url: str) -> tuple[int, int]:
    """(sends, outbox messages) in the database."""
    db = Database(database_url)
    try:
        return await db.read(
            lambda conn: (
                conn.execute(select(func.count()).select_from(EMAIL_SENDS)).scalar_one(),
                conn.execute(select(func.count()).select_from(EMAIL_OUTBOX)).scalar_one(),
            )
        )
    finally:
        await db.dispose()


async def test_email_send_needs_the_send_scope_which_write_does_not_include(
    database_url: str, tmp_path: Path, smtp: Any, monkeypatch: pytest.MonkeyPatch
):
    box, port = smtp
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the server's data folder, should it look there
    team = await _team(database_url)
    # the SMTP server is on loopback: over HTTP that takes --allow-local-smtp
    async with http_server(database_url, tmp_path, options=("--rate-limit", "0", "--allow-local-smtp")) as server:
        async with session(server, team.keys["owner"]) as owner:
            connection = await call(
                owner,
                "email_connections_create",
                {"host": "127.0.0.1", "port": port, "tls": "none", "from_address": "sales@acme.test"},
            )
            ada = await call(
                owner, "contacts_create", {"first_name": "Ada", "last_name": "L", "emails": [{"value": "ada@ex.test"}]}
            )
            send = {
                "connection_id": connection["id"],
                "to": {"contact_id": ada["id"]},
                "subject": "Hello {{first_name}}",
                "body": "Hi!",
            }
            # a key keeps the scopes it was made with: this owner's, made without send, cannot send
            assert "email_send" not in {t.name for t in (await owner.list_tools()).tools}
            error = await fail(owner, "email_send", send)
            assert "email_send needs the send scope; this credential has admin, delete, read, write." in error

        async with session(server, team.keys["writer"]) as writer:  # a key to sync records: read and write
            assert "email_send" not in {t.name for t in (await writer.list_tools()).tools}
            for dry_run in (True, False):  # one tool, one set of scopes: a dry run needs send too
                error = await fail(writer, "email_send", send | {"dry_run": dry_run})
                assert "email_send needs the send scope; this credential has read, write." in error
                assert "Ask a workspace admin for a key that has it" in error
        assert box.received == [] and await _email_rows(database_url) == (0, 0)

        async with session(server, team.keys["sender"]) as sender:  # read and send, no write
            listed = {t.name for t in (await sender.list_tools()).tools}
            assert "email_send" in listed and "contacts_create" not in listed
            assert "email_connections_list" not in listed  # the connections stay admin tools
            assert "needs the admin scope" in await fail(sender, "email_connections_list", {})

            dry = await call(sender, "email_send", send | {"dry_run": True})
            assert dry["counts"] == {"would_send": 1, "skipped": 0} and dry["messages"][0]["subject"] == "Hello Ada"
            assert box.received == [] and await _email_rows(database_url) == (0, 0)

            sent = await call(sender, "email_send", send)
            (message,) = sent["messages"]
            assert message["status"] == "sent", sent
            activity = await call(sender, "activities_get", {"id": message["activity_id"]})
            assert activity["contact_id"] == ada["id"] and activity["subject"] == "Hello Ada"
    assert [(got.recipients, got.message["Subject"]) for got in box.received] == [(["ada@ex.test"], "Hello Ada")]
    assert await _email_rows(database_url) == (1, 1)
    assert "Traceback" not in server.output()


def test_keys_create_knows_the_send_scope(database_url: str):
    runner = CliRunner(env={"COLUMNS": "300"})
    db = ("--database-url", database_url)
    owner = ("--owner-email", "olive@acme.test", "--owner-name", "Olive")
    made = runner.invoke(app, ["workspaces", "create", "acme", *owner, *db])
    assert made.exit_code == 0, made.output
    assert "--scopes read,write,delete,send,admin" in made.output
    for email, role in (("max@acme.test", "member"), ("rita@acme.test", "read_only")):
        added = runner.invoke(
            app, ["users", "create", "-w", "acme", "--email", email, "--name", email, "--role", role, *db]
        )
        assert added.exit_code == 0, added.output

    key = runner.invoke(app, ["keys", "create", "-w", "acme", "-u", "max@acme.test", "--scopes", "read,send", *db])
    assert key.exit_code == 0, key.output
    assert key.stdout.strip().startswith("ak_") and ": read, send" in key.stderr
    refused = runner.invoke(app, ["keys", "create", "-w", "acme", "-u", "rita@acme.test", "--scopes", "read,send", *db])
    assert refused.exit_code == 1 and "cannot have send (allowed: read)" in refused.output
    unknown = runner.invoke(app, ["keys", "create", "-w", "acme", "-u", "max@acme.test", "--scopes", "mail", *db])
    assert unknown.exit_code == 1
    assert "Unknown scope(s) mail; scopes are read, write, delete, send, admin." in unknown.output
    shown = runner.invoke(app, ["keys", "create", "--help"])
    assert "read, write, delete, send (email_send" in " ".join(shown.output.split())
