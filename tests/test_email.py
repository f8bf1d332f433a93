"""Outbound email against a real SMTP server on 127.0.0.1 (aiosmtpd, in the test process), on SQLite and PostgreSQL:
headers, merge fields and encoding; opt-outs; the daily limit; one refused recipient among others; a send killed
mid-list and resumed without anyone getting two copies; the password kept out of every output, log, backup and
export; the confirm token of large list sends; dry runs; STARTTLS and implicit TLS with a certificate checked as
usual (a test authority trusted through SSL_CERT_FILE), and an untrusted one refused before the login."""

from __future__ import annotations

import asyncio
import email
import email.policy
import gzip
import ipaddress
import json
import logging
import os
import signal
import socket
import ssl
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from mcp import Client
from sqlalchemy import select, update
from typer.testing import CliRunner

from mcp_crm.catalog.server import build_server
from mcp_crm.cli import app
from mcp_crm.ids import new_id
from mcp_crm.mail import sending
from mcp_crm.mail.crypto import KEY_FILE
from mcp_crm.mail.sending import STALE_AFTER
from mcp_crm.operations import Crm, email_sends
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database
from mcp_crm.store.tables import EMAIL_CONNECTIONS, EMAIL_OUTBOX, EMAIL_SENDS
from tests.helpers import call, fail, free_port_unused, snapshot
from tests.test_crash import RpcClient, ServerGone

pytestmark = [
    pytest.mark.anyio,
    # aiosmtpd itself sets the deprecated Session.login_data on every successful login
    pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning"),
]

USER = "sales@acme.test"
PASSWORD = "s3cret-Pässwort-7f1c"
runner = CliRunner(env={"COLUMNS": "300"})


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes
    message: EmailMessage
    tls: str | None = None  # the TLS version of the connection it came over


@dataclass
class Mailbox:
    """The SMTP server's handler: keeps every message, refuses the `reject` addresses at RCPT, and holds a message
    to a `block` address in DATA (after keeping it) until `release` is set."""

    received: list[Received] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)
    block: set[str] = field(default_factory=set)
    blocked: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address in self.reject:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        got = Received(envelope.mail_from, list(envelope.rcpt_tos), raw, parsed, _tls_version(server))  # type: ignore[arg-type]
        self.received.append(got)
        if self.block & set(envelope.rcpt_tos):
            self.blocked.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        return "250 2.0.0 Message accepted"

    def recipients(self) -> list[str]:
        return [address for got in self.received for address in got.recipients]


def _login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == USER.encode() and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535 itself


def _tls_version(server: Any) -> str | None:
    """The TLS version of an aiosmtpd connection (STARTTLS or implicit), None when it is plain."""
    tls = server.transport.get_extra_info("ssl_object") if server.transport is not None else None
    return tls.version() if tls is not None else None


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("MCP_CRM_SECRET_KEY", key)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the data folder, should anything look there
    return key


def _server(database_url: str) -> Any:
    return build_server(database_url, worker=False)


async def _connect(client: Client, port: int, **changes: Any) -> dict[str, Any]:
    arguments = {
        "host": "127.0.0.1",
        "port": port,
        "tls": "none",
        "username": USER,
        "password": PASSWORD,
        "from_address": USER,
        "from_name": "Acmé Sales",
        "daily_limit": 100,
    }
    return await call(client, "email_connections_create", arguments | changes)


async def _contact(client: Client, first: str, address: str | None, **more: Any) -> dict[str, Any]:
    emails = [{"value": address}] if address else []
    return await call(client, "contacts_create", {"first_name": first, "last_name": "Tester", "emails": emails} | more)


async def _list(client: Client, contact_ids: list[str], lead_ids: list[str] | None = None) -> str:
    made = await call(client, "lists_create", {"name": f"List {len(contact_ids)}-{os.urandom(3).hex()}"})
    await call(client, "lists_add_members", {"list_id": made["id"], "contact_ids": contact_ids, "lead_ids": lead_ids})
    return str(made["id"])


async def _send(client: Client, connection_id: str, to: dict[str, str], **more: Any) -> dict[str, Any]:
    arguments = {"connection_id": connection_id, "to": to, "subject": "Hello {{first_name}}", "body": "Hi!"}
    return await call(client, "email_send", arguments | more)


async def _activity(client: Client, activity_id: str) -> dict[str, Any]:
    return await call(client, "activities_get", {"id": activity_id})


# --- what arrives -------------------------------------------------------------------------------------------------


async def test_a_message_arrives_with_its_headers_merge_fields_and_utf8(database_url: str, smtp: Any) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        org = await call(client, "organizations_create", {"name": "Müller GmbH"})
        zoe = await call(
            client,
            "contacts_create",
            {
                "first_name": "Zoë",
                "last_name": "Ørsted",
                "emails": [{"value": "zoe@example.test"}],
                "organization_ids": [org["id"]],
            },
        )
        result = await _send(
            client,
            connection["id"],
            {"contact_id": zoe["id"]},
            subject="Grüße, {{first_name}}! ✓",
            body="Hallo **{{first_name}}** von {{organization}},\n\nbis bald.\n{{full_name}} <{{email}}> {{last_name}}",
        )
        assert result["counts"] == {"sent": 1, "failed": 0, "unknown": 0, "held": 0, "skipped": 0}
        (sent,) = result["messages"]
        activity = await _activity(client, sent["activity_id"])
        timeline = await call(client, "timeline", {"record_type": "contacts", "record_id": zoe["id"]})

    (got,) = box.received
    assert got.sender == USER and got.recipients == ["zoe@example.test"]
    headers = got.raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii() and b"Subject: =?utf-8?" in headers  # non-ASCII words encoded (RFC 2047)
    message = got.message
    assert message["Subject"] == "Grüße, Zoë! ✓"
    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Acmé Sales", USER)
    (recipient,) = message["To"].addresses
    assert (recipient.display_name, recipient.addr_spec) == ("Zoë Ørsted", "zoe@example.test")
    assert message["Message-ID"] == sent["message_id"] and sent["message_id"].endswith("@acme.test>")
    text = message.get_body(("plain",)).get_content()
    assert "Hallo **Zoë** von Müller GmbH," in text and "Zoë Ørsted <zoe@example.test> Ørsted" in text
    page = message.get_body(("html",)).get_content()
    assert "<strong>Zoë</strong> von Müller GmbH" in page and "Zoë Ørsted &lt;zoe@example.test&gt;" in page

    assert activity["type"] == "email" and activity["subject"] == "Grüße, Zoë! ✓" and activity["done"] is True
    assert activity["contact_id"] == zoe["id"] and "Hallo **Zoë**" in activity["note"]
    assert (activity["email_status"], activity["email_to"]) == ("sent", "zoe@example.test")
    assert activity["email_message_id"] == sent["message_id"] and activity["email_error"] is None
    assert sent["activity_id"] in json.dumps(timeline)


async def test_a_lead_is_written_to_at_its_contacts_address_and_logged_on_both(database_url: str, smtp: Any) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        ada = await _contact(client, "Ada", "ada@example.test")
        org = await call(client, "organizations_create", {"name": "Acme"})
        lead = await call(client, "leads_create", {"title": "Acme: 40 seats", "contact_id": ada["id"]})
        orphan = await call(client, "leads_create", {"title": "Nobody yet", "organization_id": org["id"]})
        result = await _send(client, connection["id"], {"lead_id": lead["id"]}, body="Hi {{first_name}}")
        nobody = await _send(client, connection["id"], {"lead_id": orphan["id"]})
        activity = await _activity(client, result["messages"][0]["activity_id"])
        lead_feed = await call(client, "timeline", {"record_type": "leads", "record_id": lead["id"]})

    assert box.recipients() == ["ada@example.test"]
    assert (activity["lead_id"], activity["contact_id"]) == (lead["id"], ada["id"])
    assert activity["id"] in json.dumps(lead_feed)
    assert nobody["counts"]["sent"] == 0 and nobody["send_id"] is None
    assert "lead without a contact" in nobody["skipped"][0]["reason"]


async def test_opted_out_and_addressless_people_are_skipped(database_url: str, smtp: Any) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        ada = await _contact(client, "Ada", "ada@example.test")
        out = await _contact(
            client, "Otto", "otto@example.test", email_opt_out=True, email_opt_out_reason="unsubscribed"
        )
        nobody = await _contact(client, "Nia", None)
        twin = await _contact(client, "Ada2", "ADA@example.test")
        list_id = await _list(client, [ada["id"], out["id"], nobody["id"], twin["id"]])
        result = await _send(client, connection["id"], {"list_id": list_id})
        alone = await _send(client, connection["id"], {"contact_id": out["id"]})

    assert box.recipients() == ["ada@example.test"]
    assert result["counts"]["sent"] == 1 and result["counts"]["skipped"] == 3
    reasons = {s["contact_id"]: s["reason"] for s in result["skipped"]}
    assert reasons[out["id"]] == "opted out of email (unsubscribed)"
    assert reasons[nobody["id"]] == "no email address"
    assert "same address" in reasons[twin["id"]]
    assert alone["send_id"] is None and alone["skipped"][0]["reason"].startswith("opted out")


async def test_an_address_an_opted_out_contact_holds_is_not_written_to_through_another(
    database_url: str, smtp: Any
) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        await _contact(client, "Otto", "otto@example.test", email_opt_out=True)
        twin = await _contact(client, "Otto2", "OTTO@example.test")
        ada = await _contact(client, "Ada", "ada@example.test")
        result = await _send(client, connection["id"], {"list_id": await _list(client, [twin["id"], ada["id"]])})
    assert box.recipients() == ["ada@example.test"]
    (skipped,) = result["skipped"]
    assert skipped["contact_id"] == twin["id"] and "Otto Tester, who opted out" in skipped["reason"]


async def test_the_daily_limit_stops_sending_with_a_clear_report(database_url: str, smtp: Any) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port, daily_limit=2)
        people = [await _contact(client, f"P{i}", f"p{i}@example.test") for i in range(3)]
        list_id = await _list(client, [p["id"] for p in people])
        dry = await _send(client, connection["id"], {"list_id": list_id}, dry_run=True)
        result = await _send(client, connection["id"], {"list_id": list_id})
        later = await _send(client, connection["id"], {"contact_id": people[0]["id"]})
        detail = await call(client, "email_connections_get", {"connection_id": connection["id"]})
        held_activities = await call(
            client, "activities_list", {"filter": {"field": "email_to", "op": "eq", "value": "p2@example.test"}}
        )

    assert "Only 2 more may go today" in dry["summary"]
    assert box.recipients() == ["p0@example.test", "p1@example.test"]
    assert result["counts"] == {"sent": 2, "failed": 0, "unknown": 0, "held": 1, "skipped": 0}
    held = result["messages"][2]
    assert held["status"] == "held" and held["email"] == "p2@example.test" and held["activity_id"] is None
    assert held["error"] == "not tried: the daily limit of 2 messages was reached"
    assert "1 were held and not sent: the daily limit of 2 messages was reached" in result["summary"]
    assert "resets at" in result["summary"] and "mcp-crm email resume --send" in result["summary"]
    assert later["counts"]["held"] == 1 and later["counts"]["sent"] == 0
    assert detail["daily_usage"]["used_today"] == 2 and detail["daily_usage"]["remaining_today"] == 0
    assert held_activities["items"] == []  # nothing was tried, so nothing is on the timeline

    # a higher limit, then `mcp-crm email resume --send` sends the held one
    db = Database(database_url)
    try:
        await db.write(lambda c: c.execute(update(EMAIL_CONNECTIONS).values(daily_limit=10)))
    finally:
        await db.dispose()
    done = await anyio.to_thread.run_sync(
        lambda: runner.invoke(app, ["email", "resume", "--send", result["send_id"], "--database-url", database_url])
    )
    assert done.exit_code == 0, done.output
    assert "3 sent" in done.output
    assert box.recipients() == ["p0@example.test", "p1@example.test", "p2@example.test"]


async def test_a_refused_recipient_fails_alone_and_the_failure_is_recorded(database_url: str, smtp: Any) -> None:
    box, port = smtp
    box.reject = {"bob@example.test"}
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        people = [await _contact(client, name, f"{name.lower()}@example.test") for name in ("Ada", "Bob", "Cy")]
        list_id = await _list(client, [p["id"] for p in people])
        result = await _send(client, connection["id"], {"list_id": list_id})
        failed = next(m for m in result["messages"] if m["status"] == "failed")
        activity = await _activity(client, failed["activity_id"])

    assert box.recipients() == ["ada@example.test", "cy@example.test"]
    assert result["counts"] == {"sent": 2, "failed": 1, "unknown": 0, "held": 0, "skipped": 0}
    assert failed["email"] == "bob@example.test" and "550" in failed["error"] and "No such user" in failed["error"]
    assert activity["email_status"] == "failed" and activity["done"] is False
    assert "550" in activity["email_error"] and activity["contact_id"] == people[1]["id"]
    assert "1 failed" in result["summary"]


# --- TLS ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate (its own authority) for 127.0.0.1 only: cert.pem and key.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "mcp-crm test SMTP")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@dataclass
class TlsServer:
    box: Mailbox
    port: int
    logins: list[str | None]  # the TLS version of each login's connection


@contextmanager
def _tls_server(mode: str, certificate: tuple[Path, Path]) -> Iterator[TlsServer]:
    """An SMTP server on 127.0.0.1 speaking TLS as the product's `tls` mode `mode` expects: STARTTLS required
    before anything else, or implicit TLS from the first byte (as on port 465)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server = TlsServer(Mailbox(), free_port_unused(), [])

    def login(smtp: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        server.logins.append(_tls_version(smtp))
        return _login(smtp, session, envelope, mechanism, data)

    if mode == "starttls":
        tls: dict[str, Any] = {"tls_context": context, "require_starttls": True}  # AUTH only after STARTTLS
    else:
        # aiosmtpd counts only STARTTLS as TLS for AUTH; `logins` shows each login came over TLS all the same
        tls = {"ssl_context": context, "auth_require_tls": False}
    controller = Controller(server.box, hostname="127.0.0.1", port=server.port, authenticator=login, **tls)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
async def test_tls_logs_in_and_sends_over_tls_with_the_certificate_checked(
    database_url: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # the client's usual checks (ssl.create_default_context), with the test authority trusted the standard way
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with _tls_server(mode, certificate) as server:
        async with Client(_server(database_url)) as client:
            connection = await _connect(client, server.port, tls=mode)
            checked = await call(client, "email_connections_test", {"connection_id": connection["id"]})
            ada = await _contact(client, "Ada", "ada@example.test")
            result = await _send(client, connection["id"], {"contact_id": ada["id"]})
            activity = await _activity(client, result["messages"][0]["activity_id"])
    assert checked["ok"] is True and checked["error"] is None
    assert result["counts"]["sent"] == 1 and activity["email_status"] == "sent"
    (got,) = server.box.received
    assert got.recipients == ["ada@example.test"] and got.message["Subject"] == "Hello Ada"
    assert got.tls is not None and got.tls.startswith("TLSv1.")
    assert len(server.logins) == 2 and all(version == got.tls for version in server.logins)  # the test, the send


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
async def test_tls_refuses_an_untrusted_certificate_before_the_login_and_sends_nothing(
    database_url: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with _tls_server(mode, certificate) as server:
        async with Client(_server(database_url)) as client:
            connection = await _connect(client, server.port, tls=mode)
            checked = await call(client, "email_connections_test", {"connection_id": connection["id"]})
            people = [await _contact(client, name, f"{name.lower()}@example.test") for name in ("Ada", "Bob")]
            result = await _send(client, connection["id"], {"list_id": await _list(client, [p["id"] for p in people])})
            first, second = result["messages"]
    assert checked["ok"] is False
    for error in (checked["error"], first["error"], second["error"]):
        assert f"127.0.0.1:{server.port} ({mode})" in error
        assert "certificate was not accepted (self-signed certificate)" in error and "SSL_CERT_FILE" in error
    # nothing was sent: the first message is held with the rest, not failed, and nothing is on the timeline
    assert result["counts"] == {"sent": 0, "failed": 0, "unknown": 0, "held": 2, "skipped": 0}
    assert [(m["status"], m["activity_id"]) for m in result["messages"]] == [("held", None), ("held", None)]
    assert "resume --send" in result["summary"] and "one by one" not in result["summary"]
    assert server.box.received == [] and server.logins == []  # the password never went out


async def test_tls_checks_that_the_certificate_is_for_the_host_name(
    database_url: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # trusted, but made out to 127.0.0.1, not localhost
    with _tls_server("starttls", certificate) as server:
        async with Client(_server(database_url)) as client:
            connection = await _connect(client, server.port, tls="starttls", host="localhost")
            checked = await call(client, "email_connections_test", {"connection_id": connection["id"]})
    assert checked["ok"] is False and "certificate is not valid for 'localhost'" in checked["error"]
    assert server.logins == []


# --- a killed send ------------------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_killed_send_resumes_without_sending_anyone_twice(
    database_url: str, smtp: Any, secret_key: str, tmp_path: Path
) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        people = [await _contact(client, f"P{i}", f"p{i}@example.test") for i in range(5)]
        list_id = await _list(client, [p["id"] for p in people])
    everyone = [f"p{i}@example.test" for i in range(5)]
    # p2's message is taken by the server, which then holds its answer: the sender is killed right there, as a
    # crash after the server accepted a message but before the sender wrote down that it did
    box.block = {"p2@example.test"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_CRM_")} | {"MCP_CRM_SECRET_KEY": secret_key}
    log = (tmp_path / "processes.log").open("wb")
    with log:
        server = await anyio.open_process(
            [sys.executable, "-m", "mcp_crm", "serve", "--database-url", database_url, "--no-worker"],
            stderr=log,
            env=env,
        )
        assert server.stdin is not None and server.stdout is not None
        rpc = RpcClient(server.stdin, server.stdout)

        async def send_until_killed() -> None:
            with pytest.raises(ServerGone):
                await rpc.call_tool(
                    "email_send",
                    {"connection_id": connection["id"], "to": {"list_id": list_id}, "subject": "Hi", "body": "Hi"},
                )

        async with anyio.create_task_group() as group:
            group.start_soon(rpc.read_loop)
            await rpc.initialize()
            group.start_soon(send_until_killed)
            assert await anyio.to_thread.run_sync(box.blocked.wait, 60)
            os.kill(server.pid, signal.SIGKILL)
            assert await server.wait() == -signal.SIGKILL
            await rpc.aclose()
    box.release.set()
    assert box.recipients() == everyone[:3]

    resumed = await anyio.run_process(
        [sys.executable, "-m", "mcp_crm", "email", "resume", "--database-url", database_url], env=env, check=False
    )
    output = resumed.stdout.decode()
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert "4 sent, 1 unknown" in output and "p2@example.test" in output
    assert sorted(box.recipients()) == everyone  # each exactly once

    again = await anyio.run_process(
        [sys.executable, "-m", "mcp_crm", "email", "resume", "--database-url", database_url], env=env, check=False
    )
    assert "No unfinished send" in again.stdout.decode() and sorted(box.recipients()) == everyone

    db = Database(database_url)
    try:
        rows = await db.read(
            lambda c: c.execute(select(EMAIL_OUTBOX).order_by(EMAIL_OUTBOX.c.position)).mappings().all()
        )
    finally:
        await db.dispose()
    assert [r["state"] for r in rows] == ["sent", "sent", "unknown", "sent", "sent"]
    assert len({r["message_id"] for r in rows}) == 5
    assert box.received[2].message["Message-ID"] == rows[2]["message_id"]  # the same id it would have had again
    async with Client(_server(database_url)) as client:
        unknown = await _activity(client, rows[2]["activity_id"])
    assert unknown["email_status"] == "unknown" and "may have arrived" in unknown["email_error"]


async def test_a_send_left_behind_by_a_process_on_another_machine_waits_for_its_heartbeat(
    database_url: str, smtp: Any
) -> None:
    """Without a process to ask, a send is taken over only once its heartbeat is a minute old; meanwhile the
    worker leaves it alone (it may still be running)."""
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        people = [await _contact(client, f"P{i}", f"p{i}@example.test") for i in range(2)]
        list_id = await _list(client, [p["id"] for p in people])
        box.reject = {"p0@example.test", "p1@example.test"}  # so the send leaves nothing in the mailbox
        result = await _send(client, connection["id"], {"list_id": list_id})
    box.reject = set()
    db = Database(database_url)

    def left_behind(conn: Any, seconds_ago: int) -> None:
        conn.execute(update(EMAIL_OUTBOX).values(state="pending", finished_at=None, error=None, activity_id=None))
        conn.execute(
            update(EMAIL_SENDS).values(
                finished_at=None,
                owner="another-host:1",
                heartbeat_at=datetime.now(UTC) - timedelta(seconds=seconds_ago),
            )
        )

    try:
        crm = Crm(db)
        await db.write(lambda c: left_behind(c, 10))
        assert await crm.email.resume("worker") == []
        assert box.recipients() == []
        await db.write(lambda c: left_behind(c, 120))
        (report,) = await crm.email.resume("worker")
    finally:
        await db.dispose()
    assert report["send_id"] == result["send_id"]
    assert sorted(box.recipients()) == ["p0@example.test", "p1@example.test"]


async def test_a_cancelled_call_stops_between_messages_and_the_worker_sends_the_rest(
    database_url: str, smtp: Any
) -> None:
    """A client that gives up (a timeout) cancels the call: the message being sent is still settled, and the
    worker of the same process carries on with the others at once."""
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        people = [await _contact(client, f"P{i}", f"p{i}@example.test") for i in range(4)]
        list_id = await _list(client, [p["id"] for p in people])
    box.block = {"p1@example.test"}
    db = Database(database_url)
    try:
        crm = Crm(db)
        actor = await local_actor(db, via="stdio")

        async def send() -> None:
            await crm.email.send(
                actor, connection["id"], {"list_id": list_id}, "Hi", "Hi", "markdown", False, "r", None
            )

        async with anyio.create_task_group() as group:
            group.start_soon(send)
            assert await anyio.to_thread.run_sync(box.blocked.wait, 30)
            group.cancel_scope.cancel()
            box.release.set()
        assert box.recipients() == ["p0@example.test", "p1@example.test"]
        (report,) = await crm.email.resume("worker")
    finally:
        await db.dispose()
    assert [m["status"] for m in report["messages"]] == ["sent"] * 4 and report["resumed_unknown"] == 0
    assert box.recipients() == [f"p{i}@example.test" for i in range(4)]


async def test_a_send_taken_over_meanwhile_is_fenced_and_nothing_is_recorded_twice(
    database_url: str, smtp: Any
) -> None:
    """The process that was sending a message finishes it after another process took the send over and marked it
    unknown: the message stays unknown with one activity (what the first process saw is added to its error), and
    the first process claims nothing more."""
    _, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        people = [await _contact(client, f"P{i}", f"p{i}@example.test") for i in range(2)]
        list_id = await _list(client, [p["id"] for p in people])
    db = Database(database_url)
    try:
        actor = await local_actor(db, via="stdio")
        send_id, now = new_id(), datetime.now(UTC)
        await db.write(
            lambda c: email_sends.queue_send(
                c, actor, connection["id"], {"list_id": list_id}, "Hi", "Hi", "markdown", lambda n: None, send_id, "a:1"
            )
        )
        claimed = await db.write(lambda c: email_sends.claim_next(c, send_id, "a:1", now))
        assert claimed is not None
        (send,) = await db.read(lambda c: email_sends.open_sends(c, send_id))
        unknown = await db.write(lambda c: email_sends.take_over(c, send, "b:2", "worker", now))
        assert unknown is not None and len(unknown) == 1
        settled = await db.write(lambda c: email_sends.finish(c, claimed.row, "sent", None, "stdio", now))
        again = await db.write(lambda c: email_sends.claim_next(c, send_id, "a:1", now))
        rows = await db.read(
            lambda c: c.execute(select(EMAIL_OUTBOX).order_by(EMAIL_OUTBOX.c.position)).mappings().all()
        )
    finally:
        await db.dispose()
    assert settled is False and again is None
    assert [r["state"] for r in rows] == ["unknown", "pending"]  # the second is left to its new owner
    assert "reported afterwards: sent" in rows[0]["error"] and rows[0]["activity_id"] is not None
    async with Client(_server(database_url)) as client:
        found = await call(
            client, "activities_list", {"filter": {"field": "email_to", "op": "eq", "value": "p0@example.test"}}
        )
    assert [a["email_status"] for a in found["items"]] == ["unknown"]  # one activity, not a second one


async def test_a_stale_heartbeat_is_taken_over_even_when_its_pid_runs_here(database_url: str, smtp: Any) -> None:
    """A pid on this machine that runs (perhaps reused by another program) does not keep a send whose heartbeat
    stopped from being taken over."""
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        ada = await _contact(client, "Ada", "ada@example.test")
        box.reject = {"ada@example.test"}
        result = await _send(client, connection["id"], {"contact_id": ada["id"]})
    box.reject = set()
    db = Database(database_url)

    def left_behind(conn: Any) -> None:
        conn.execute(update(EMAIL_OUTBOX).values(state="pending", finished_at=None, error=None, activity_id=None))
        stale = datetime.now(UTC) - timedelta(seconds=STALE_AFTER * 3)
        running_pid = f"{socket.gethostname()}:{os.getppid()}"
        conn.execute(update(EMAIL_SENDS).values(finished_at=None, owner=running_pid, heartbeat_at=stale))

    try:
        await db.write(left_behind)
        (report,) = await Crm(db).email.resume("worker")
    finally:
        await db.dispose()
    assert report["send_id"] == result["send_id"] and box.recipients() == ["ada@example.test"]


async def test_a_failed_connection_holds_the_claimed_message_too_and_does_not_count_it(
    database_url: str, smtp: Any
) -> None:
    _, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port, password="wrong")
        people = [await _contact(client, f"P{i}", f"p{i}@example.test") for i in range(2)]
        result = await _send(client, connection["id"], {"list_id": await _list(client, [p["id"] for p in people])})
        detail = await call(client, "email_connections_get", {"connection_id": connection["id"]})
    assert result["counts"] == {"sent": 0, "failed": 0, "unknown": 0, "held": 2, "skipped": 0}
    assert all(m["error"].startswith("not tried: the connection failed") for m in result["messages"])
    assert all(m["activity_id"] is None for m in result["messages"])
    assert detail["daily_usage"]["used_today"] == 0
    assert "one by one" not in result["summary"] and "do not email_send them again" in result["summary"]


async def test_a_retried_send_with_its_idempotency_key_sends_nothing_again(database_url: str, smtp: Any) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        people = [await _contact(client, f"P{i}", f"p{i}@example.test") for i in range(2)]
        list_id = await _list(client, [p["id"] for p in people])
        first = await _send(client, connection["id"], {"list_id": list_id}, idempotency_key="webinar-1")
        again = await _send(client, connection["id"], {"list_id": list_id}, idempotency_key="webinar-1")
        other = await fail(
            client,
            "email_send",
            {
                "connection_id": connection["id"],
                "to": {"list_id": list_id},
                "subject": "Other",
                "body": "Hi!",
                "idempotency_key": "webinar-1",
            },
        )
    assert box.recipients() == ["p0@example.test", "p1@example.test"]
    assert again["send_id"] == first["send_id"] and again["counts"]["sent"] == 2
    assert [m["message_id"] for m in again["messages"]] == [m["message_id"] for m in first["messages"]]
    assert "nothing was sent again" in again["summary"]
    assert "already used" in other


async def test_an_error_after_the_outbox_is_committed_returns_the_partial_report(
    database_url: str, smtp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        people = [await _contact(client, f"P{i}", f"p{i}@example.test") for i in range(3)]
        list_id = await _list(client, [p["id"] for p in people])
        real = email_sends.finish
        calls = []

        def finish(*args: Any) -> bool:
            calls.append(args)
            if len(calls) == 2:
                raise RuntimeError("database is locked")
            return real(*args)

        monkeypatch.setattr(email_sends, "finish", finish)
        result = await _send(client, connection["id"], {"list_id": list_id})
    assert result["send_id"] is not None and result["counts"]["sent"] == 1
    assert "worker carries on" in result["summary"] and result["send_id"] in result["summary"]
    assert "internal error" not in result["summary"] and "rolled back" not in result["summary"]
    assert box.recipients() == ["p0@example.test", "p1@example.test"]


async def test_a_real_send_lists_at_most_shown_messages(
    database_url: str, smtp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = smtp
    monkeypatch.setattr(sending, "SHOWN", 2)
    box.reject = {"p3@example.test"}
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        people = [await _contact(client, f"P{i}", f"p{i}@example.test") for i in range(4)]
        result = await _send(client, connection["id"], {"list_id": await _list(client, [p["id"] for p in people])})
    assert result["counts"]["sent"] == 3 and result["counts"]["failed"] == 1 and result["send_id"]
    assert len(result["messages"]) == 2 and result["more_messages"] == 2
    assert result["messages"][0]["status"] == "failed"  # what went wrong comes first


async def test_changing_the_server_clears_the_password_unless_a_new_one_comes_with_it(
    database_url: str, smtp: Any
) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        ada = await _contact(client, "Ada", "ada@example.test")
        moved = await call(client, "email_connections_update", {"connection_id": connection["id"], "port": port + 1})
        back = await call(client, "email_connections_update", {"connection_id": connection["id"], "port": port})
        refused = await fail(
            client,
            "email_send",
            {"connection_id": connection["id"], "to": {"contact_id": ada["id"]}, "subject": "Hi", "body": "Hi"},
        )
        renamed = await call(client, "email_connections_update", {"connection_id": connection["id"], "name": "Sales"})
        fixed = await call(
            client,
            "email_connections_update",
            {"connection_id": connection["id"], "tls": "none", "port": port, "password": PASSWORD, "host": "127.0.0.1"},
        )
        sent = await _send(client, connection["id"], {"contact_id": ada["id"]})
    assert connection["has_password"] is True
    assert moved["has_password"] is False and back["has_password"] is False  # not restored by moving back
    assert "no password" in refused and "cleared" in refused and "host, port or tls changed" in refused
    assert renamed["has_password"] is False and fixed["has_password"] is True
    assert sent["counts"]["sent"] == 1 and box.recipients() == ["ada@example.test"]


# --- the password -------------------------------------------------------------------------------------------------


async def test_the_password_never_appears_in_outputs_logs_audit_backups_or_exports(
    database_url: str, smtp: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box, port = smtp
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async def record(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
        result = await client.call_tool(tool, arguments)
        seen.append(json.dumps(result.structured_content) + "".join(getattr(c, "text", "") for c in result.content))
        return result.structured_content

    async with Client(_server(database_url)) as client:
        made = await record(client, "email_connections_create", await _connection_arguments(port))
        cid = made["id"]
        ada = await _contact(client, "Ada", "ada@example.test")
        await record(client, "email_connections_list", {})
        await record(client, "email_connections_get", {"connection_id": cid})
        await record(client, "email_connections_test", {"connection_id": cid})
        await record(
            client, "email_send", {"connection_id": cid, "to": {"contact_id": ada["id"]}, "subject": "Hi", "body": "Hi"}
        )
        await record(client, "email_connections_update", {"connection_id": cid, "password": PASSWORD + "-new"})
        failing = await record(client, "email_connections_test", {"connection_id": cid})
        await record(client, "email_connections_update", {"connection_id": cid, "password": PASSWORD, "daily_limit": 5})
        await record(client, "audit_list", {"filter": {"field": "entity", "op": "eq", "value": "email_connections"}})
        await record(client, "activities_list", {})
        rejected = await client.call_tool(
            "email_connections_create", {**await _connection_arguments(port), "port": "x", "password": 98765432123}
        )
        seen.append(rejected.content[0].text)
        audit = await call(
            client, "audit_list", {"filter": {"field": "entity", "op": "eq", "value": "email_connections"}}
        )
    assert made["has_password"] is True and "password" not in made
    assert failing["ok"] is False and "refused the login" in failing["error"]
    assert rejected.is_error and "98765432123" not in rejected.content[0].text
    assert any(e["after"].get("password") == "(changed)" for e in audit["items"])
    assert len(box.received) == 1

    backup = tmp_path / "workspace.jsonl.gz"
    backed = await anyio.to_thread.run_sync(
        lambda: runner.invoke(app, ["backup", str(backup), "--database-url", database_url])
    )
    assert backed.exit_code == 0, backed.output
    backed_up = gzip.decompress(backup.read_bytes()).decode()
    exported = await anyio.to_thread.run_sync(
        lambda: runner.invoke(app, ["export", "activities", "-f", "jsonl", "--database-url", database_url]).output
    )
    db = Database(database_url)
    try:
        token = await db.read(lambda c: c.execute(select(EMAIL_CONNECTIONS.c.password_encrypted)).scalar_one())
    finally:
        await db.dispose()
    assert token in backed_up  # encrypted: useless without the key kept outside the database
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))  # not the server's
    for where, text in [("tool outputs", "\n".join(seen)), ("logs", logged), ("backup", backed_up)]:
        assert PASSWORD not in text and "98765432123" not in text, where
    assert PASSWORD not in exported and "ada@example.test" in exported


async def _connection_arguments(port: int) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "tls": "none",
        "username": USER,
        "password": PASSWORD,
        "from_address": USER,
    }


async def test_a_password_saved_with_another_key_is_explained(
    database_url: str, smtp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        ada = await _contact(client, "Ada", "ada@example.test")
        monkeypatch.setenv("MCP_CRM_SECRET_KEY", Fernet.generate_key().decode())
        text = await fail(client, "email_connections_test", {"connection_id": connection["id"]})
        refused = await fail(
            client,
            "email_send",
            {"connection_id": connection["id"], "to": {"contact_id": ada["id"]}, "subject": "Hi", "body": "Hi"},
        )
        monkeypatch.setenv("MCP_CRM_SECRET_KEY", "not a key")
        bad_key = await fail(client, "email_connections_test", {"connection_id": connection["id"]})
    assert "saved with another key" in text and "MCP_CRM_SECRET_KEY" in text and "email_connections_update" in text
    assert "saved with another key" in refused and box.received == []
    assert "does not hold a valid key" in bad_key and "Fernet.generate_key" in bad_key


async def test_a_login_over_plain_smtp_goes_only_to_this_machine(database_url: str, smtp: Any) -> None:
    _, port = smtp
    async with Client(_server(database_url)) as client:
        text = await fail(
            client, "email_connections_create", await _connection_arguments(port) | {"host": "smtp.example.com"}
        )
        assert "unencrypted" in text and "starttls" in text
        made = await call(
            client,
            "email_connections_create",
            await _connection_arguments(port) | {"tls": "starttls", "host": "smtp.example.com"},
        )
        assert made["tls"] == "starttls"
        unreachable = await call(
            client, "email_connections_create", await _connection_arguments(free_port_unused()) | {"name": "closed"}
        )
        checked = await call(client, "email_connections_test", {"connection_id": unreachable["id"]})
    assert checked["ok"] is False and "cannot connect" in checked["error"]


# --- confirm tokens, dry runs and merge fields --------------------------------------------------------------------


async def test_a_list_send_to_more_than_50_needs_its_dry_runs_confirm_token(database_url: str, smtp: Any) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        made = await call(
            client,
            "contacts_create_many",
            {
                "items": [
                    {"first_name": f"P{i}", "last_name": "T", "emails": [{"value": f"p{i}@example.test"}]}
                    for i in range(51)
                ]
            },
        )
        list_id = await _list(client, [item["id"] for item in made["items"]])
        arguments = {"connection_id": connection["id"], "to": {"list_id": list_id}, "subject": "Hi", "body": "Hi"}
        refused = await fail(client, "email_send", arguments)
        wrong = await fail(client, "email_send", arguments | {"confirm": "1.abc"})
        dry = await call(client, "email_send", arguments | {"dry_run": True})
        other = await fail(client, "email_send", arguments | {"subject": "Changed", "confirm": dry["confirm"]})
        assert box.received == []
        sent = await call(client, "email_send", arguments | {"confirm": dry["confirm"]})
    assert "more than 50" in refused and "dry_run: true" in refused and "confirm" in refused
    assert "Nothing was sent" in wrong and "Nothing was sent" in other
    assert "has expired" in wrong and "other arguments" in other and "has expired" not in refused
    assert dry["members"] == 51 and len(dry["messages"]) == 51 and dry["confirm"]
    assert sent["counts"]["sent"] == 51 and len(box.received) == 51


async def test_a_dry_run_checks_the_email_activity_type_as_the_send_does(database_url: str, smtp: Any) -> None:
    _, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        ada = await _contact(client, "Ada", "ada@example.test")
        types = await call(client, "activity_types_list", {})
        (email_type,) = [t for t in types["items"] if t["key"] == "email"]
        await call(client, "activity_types_update", {"id": email_type["id"], "active": False})
        refused = await fail(
            client,
            "email_send",
            {
                "connection_id": connection["id"],
                "to": {"contact_id": ada["id"]},
                "subject": "Hi",
                "body": "Hi",
                "dry_run": True,
            },
        )
    assert "activities of type 'email'" in refused


async def test_a_message_smtplib_cannot_send_is_failed_not_unknown(
    database_url: str, smtp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import smtplib

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")

    _, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        ada = await _contact(client, "Ada", "ada@example.test")
        monkeypatch.setattr(smtplib.SMTP, "send_message", refuse)
        result = await _send(client, connection["id"], {"contact_id": ada["id"]})
    (message,) = result["messages"]
    assert message["status"] == "failed" and "SMTPUTF8" in message["error"]


async def test_a_dry_run_renders_each_message_and_sends_nothing(database_url: str, smtp: Any) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        ada = await _contact(client, "Ada", "ada@example.test")
        out = await _contact(client, "Otto", "otto@example.test", email_opt_out=True)
        list_id = await _list(client, [ada["id"], out["id"]])
        before = await snapshot(database_url)
        dry = await _send(
            client, connection["id"], {"list_id": list_id}, dry_run=True, body="Dear {{first_name}} {{last_name}}"
        )
        assert await snapshot(database_url) == before
    assert box.received == []
    assert dry["dry_run"] is True and dry["send_id"] is None and dry["confirm"] is None
    (message,) = dry["messages"]
    assert (message["email"], message["subject"], message["text"]) == (
        "ada@example.test",
        "Hello Ada",
        "Dear Ada Tester\n",
    )
    assert dry["skipped"] == [
        {
            "contact_id": out["id"],
            "lead_id": None,
            "name": "Otto Tester",
            "email": "otto@example.test",
            "reason": "opted out of email",
        }
    ]
    assert dry["counts"] == {"would_send": 1, "skipped": 1}


async def test_merge_fields_unknown_missing_and_fallbacks(database_url: str, smtp: Any) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        ada = await _contact(client, "Ada", "ada@example.test")
        to = {"contact_id": ada["id"]}
        unknown = await fail(
            client,
            "email_send",
            {"connection_id": connection["id"], "to": to, "subject": "{{frist_name}}", "body": "x"},
        )
        missing = await _send(client, connection["id"], to, body="From {{organization}}", dry_run=True)
        fallback = await _send(client, connection["id"], to, body="From {{ organization | your team }}", dry_run=True)
        only = await _send(client, None, to, dry_run=True)  # type: ignore[arg-type]
        await _connect(client, port, name="Second")
        several = await fail(client, "email_send", {"to": to, "subject": "Hi", "body": "Hi"})
    assert "unknown merge field {{frist_name}}" in unknown and "Did you mean {{first_name}}" in unknown
    assert "{{organization|...}}" in missing["skipped"][0]["reason"] and missing["messages"] == []
    assert fallback["messages"][0]["text"] == "From your team\n"
    assert only["counts"]["would_send"] == 1
    assert "2 email connections; choose one" in several and "Second" in several
    assert box.received == []


# --- the command line ---------------------------------------------------------------------------------------------


def test_the_cli_connects_lists_and_tests_with_the_password_from_stdin_or_a_prompt(
    database_url: str, smtp: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, port = smtp
    base = ["--database-url", database_url, "--host", "127.0.0.1", "--port", str(port), "--tls", "none"]
    base += ["--username", USER, "--from", USER]
    on_postgres = database_url.startswith("postgresql")
    key_variable = os.environ["MCP_CRM_SECRET_KEY"]
    monkeypatch.delenv("MCP_CRM_SECRET_KEY")  # on SQLite, so the key file in the data folder is made
    if on_postgres:  # where a key file would do for one host only
        refused = runner.invoke(app, ["email", "connect", *base, "--password-stdin"], input=PASSWORD + "\n")
        assert refused.exit_code == 1 and "Not saved" in refused.output and "MCP_CRM_SECRET_KEY" in refused.output
        monkeypatch.setenv("MCP_CRM_SECRET_KEY", key_variable)

    done = runner.invoke(app, ["email", "connect", *base, "--password-stdin"], input=PASSWORD + "\n")
    assert done.exit_code == 0, done.output
    assert "Login checked: ok" in done.output and PASSWORD not in done.output
    key = tmp_path / "data" / "mcp-crm" / KEY_FILE
    assert key.exists() is not on_postgres
    if not on_postgres:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600

    prompted = runner.invoke(app, ["email", "connect", *base, "--name", "Prompted"], input=PASSWORD + "\n")
    assert prompted.exit_code == 0, prompted.output
    wrong = runner.invoke(app, ["email", "connect", *base, "--name", "Wrong"], input="not-it\n")
    assert wrong.exit_code == 1 and "Not saved" in wrong.output and "refused the login" in wrong.output

    listed = runner.invoke(app, ["email", "list", "--database-url", database_url])
    assert listed.exit_code == 0 and "Prompted" in listed.output and "Wrong" not in listed.output
    connection_id = done.output.split("Email connection ", 1)[1].split(" ", 1)[0]
    tested = runner.invoke(app, ["email", "test", connection_id, "--database-url", database_url])
    assert tested.exit_code == 0 and "logged in" in tested.output
    assert PASSWORD not in listed.output + tested.output
    renewed = runner.invoke(
        app,
        ["email", "connect", "--update", connection_id, "--new-password", "--database-url", database_url],
        input=PASSWORD + "\n",
    )
    assert renewed.exit_code == 0 and "Login checked: ok" in renewed.output, renewed.output


async def test_a_backup_taken_mid_send_restores_the_send_closed_and_sends_nobody_again(
    database_url: str, smtp: Any, tmp_path: Path
) -> None:
    box, port = smtp
    async with Client(_server(database_url)) as client:
        connection = await _connect(client, port)
        people = [await _contact(client, f"P{i}", f"p{i}@example.test") for i in range(2)]
        await _send(client, connection["id"], {"list_id": await _list(client, [p["id"] for p in people])})
    assert len(box.received) == 2
    db = Database(database_url)

    def mid_send(conn: Any) -> None:  # as a backup taken while the send was going would hold it
        conn.execute(update(EMAIL_OUTBOX).values(state="pending", finished_at=None, activity_id=None))
        conn.execute(update(EMAIL_SENDS).values(finished_at=None, heartbeat_at=datetime.now(UTC) - timedelta(hours=1)))

    try:
        await db.write(mid_send)
    finally:
        await db.dispose()
    backup, runner = tmp_path / "mid-send.jsonl.gz", CliRunner()
    done = await anyio.to_thread.run_sync(
        lambda: runner.invoke(app, ["backup", str(backup), "--database-url", database_url])
    )
    assert done.exit_code == 0, done.output
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    restore = ["restore", str(backup), "--database-url", target]
    done = await anyio.to_thread.run_sync(lambda: runner.invoke(app, restore))
    assert done.exit_code == 0, done.output
    restored = Database(target)
    try:
        assert await Crm(restored).email.resume("worker") == []  # nothing left for a worker to carry on
        states = await restored.read(lambda c: sorted(c.execute(select(EMAIL_OUTBOX.c.state)).scalars()))
    finally:
        await restored.dispose()
    assert states == ["unknown", "unknown"] and len(box.received) == 2
