"""Outbound email, the safety around it (on SQLite and PostgreSQL): the key file must be private, PostgreSQL needs
the key in MCP_CRM_SECRET_KEY, an SMTP host used over HTTP must be public (checked on save, test and send, and
connected to at the checked address, TLS still checked against the host name), and every message carries
List-Unsubscribe, with a one-click link that opts the contact out over real HTTP when the server has an https
public URL."""

from __future__ import annotations

import os
import re
import socket
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from mcp import Client

from mcp_crm.catalog.server import build_server
from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for
from mcp_crm.errors import CrmError
from mcp_crm.mail import crypto, unsubscribe
from mcp_crm.mail.crypto import HOW_TO_MAKE, KEY_FILE
from mcp_crm.mail.smtp import SmtpSettings, check_login
from mcp_crm.operations import Crm
from mcp_crm.operations.access import create_key, create_workspace
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database, migrate
from mcp_crm.webhooks import targets
from tests.helpers import call, fail, snapshot
from tests.test_email import PASSWORD, USER, _connect, _contact, _list, _send, _tls_server
from tests.test_hosted import session
from tests.test_transports import http_server

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning"),
]

PUBLIC = "93.184.216.34"  # a public address no test connects to: refused before, or held
MAILTO = f"<mailto:{USER}?subject=unsubscribe>"


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MCP_CRM_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # where the key file would be


def _local(database_url: str) -> Any:
    """A server whose calls come from stdio: local use, any SMTP host."""
    return build_server(database_url, worker=False)


def _hosted(database_url: str, allow_local_smtp: bool = False) -> Any:
    """A server whose calls come over HTTP (as the local owner: an in-memory client needs no API key)."""
    return build_server(database_url, via="http", worker=False, allow_local_smtp=allow_local_smtp)


def _key_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "mcp-crm" / KEY_FILE


# --- the key ------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o620, 0o604, 0o660])
def test_a_key_file_others_may_read_or_write_is_refused_as_ssh_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: int
) -> None:
    monkeypatch.delenv("MCP_CRM_SECRET_KEY")
    token = crypto.encrypt("hunter2")  # makes the key file, 0600
    path = _key_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(mode)
    for use in (lambda: crypto.encrypt("x"), lambda: crypto.decrypt(token, "Sales")):
        with pytest.raises(CrmError) as refused:
            use()
        text = str(refused.value)
        assert f"The key file {path} has mode {mode:04o}" in text and f"`chmod 600 {path}`" in text
    path.chmod(0o600)
    assert crypto.decrypt(token, "Sales") == "hunter2"
    path.chmod(0o400)  # readable by its owner only is fine too
    assert crypto.decrypt(token, "Sales") == "hunter2"


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
async def test_a_connection_is_not_saved_with_a_key_file_others_may_read(
    database_url: str, smtp: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL uses MCP_CRM_SECRET_KEY, never a key file")
    _, port = smtp
    monkeypatch.delenv("MCP_CRM_SECRET_KEY")
    path = _key_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(Fernet.generate_key().decode() + "\n")
    path.chmod(0o644)
    async with Client(_local(database_url)) as client:
        before = await snapshot(database_url)
        text = await fail(client, "email_connections_create", _arguments(port))
        assert await snapshot(database_url) == before
    assert "mode 0644" in text and f"chmod 600 {path}" in text


async def test_on_postgresql_a_password_is_saved_only_with_the_key_variable(
    database_url: str, smtp: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, port = smtp
    monkeypatch.delenv("MCP_CRM_SECRET_KEY")
    async with Client(_local(database_url)) as client:
        if database_url.startswith("sqlite"):  # one machine: the key file will do
            assert (await call(client, "email_connections_create", _arguments(port)))["has_password"] is True
            assert _key_path(tmp_path).exists()
            return
        before = await snapshot(database_url)
        text = await fail(client, "email_connections_create", _arguments(port))
        assert await snapshot(database_url) == before
        # a server without a login needs no key; its password is refused the same way later
        made = await call(client, "email_connections_create", _arguments(port, username=None, password=None))
        later = await fail(
            client,
            "email_connections_update",
            {"connection_id": made["id"], "username": USER, "password": PASSWORD},
        )
    assert not _key_path(tmp_path).exists()
    for message in (text, later):
        assert "Not saved: on PostgreSQL" in message and "MCP_CRM_SECRET_KEY" in message and HOW_TO_MAKE in message


# --- SMTP hosts over HTTP -----------------------------------------------------------------------------------------


def _arguments(port: int, **changes: Any) -> dict[str, Any]:
    arguments = {
        "host": "127.0.0.1",
        "port": port,
        "tls": "none",
        "username": USER,
        "password": PASSWORD,
        "from_address": USER,
        "daily_limit": 100,
    }
    return {k: v for k, v in (arguments | changes).items() if v is not None}


def _fake_dns(monkeypatch: pytest.MonkeyPatch, answers: Iterator[list[str]] | dict[str, list[str]]) -> list[str]:
    """The resolver of webhooks and SMTP hosts replaced: a fixed answer per host, or the next of `answers` for
    each lookup. Returns the names looked up."""
    asked: list[str] = []

    async def addresses(host: str, port: int) -> list[str]:
        asked.append(host)
        if isinstance(answers, dict):
            if host not in answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return answers[host]
        return next(answers)

    monkeypatch.setattr(targets, "_addresses", addresses)
    return asked


async def test_over_http_an_smtp_host_at_a_local_address_is_refused_and_nothing_is_stored(
    database_url: str, smtp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = smtp
    _fake_dns(monkeypatch, {"relay.example.test": ["10.0.0.25"], "localhost": ["127.0.0.1"]})
    async with Client(_hosted(database_url)) as client:
        before = await snapshot(database_url)
        loopback = await fail(client, "email_connections_create", _arguments(port))
        private = await fail(client, "email_connections_create", _arguments(port, host="relay.example.test"))
        named = await fail(client, "email_connections_create", _arguments(port, host="localhost", tls="starttls"))
        metadata = await fail(client, "email_connections_create", _arguments(587, host="169.254.169.254"))
        assert await snapshot(database_url) == before
    assert loopback.startswith("The SMTP host 127.0.0.1 resolves to 127.0.0.1, a loopback address; over HTTP")
    assert "--allow-local-smtp" in loopback and loopback.endswith("Nothing was saved.")
    assert "relay.example.test resolves to 10.0.0.25, a private address" in private
    assert "localhost resolves to 127.0.0.1, a loopback address" in named
    assert "a link-local address" in metadata
    assert box.received == []


async def test_a_local_host_set_up_locally_is_refused_when_used_over_http(
    database_url: str, smtp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = smtp
    async with Client(_local(database_url)) as local:  # stdio: a relay on this machine is fine
        made = await _connect(local, port)
        ada = await _contact(local, "Ada", "ada@example.test")
        assert (await call(local, "email_connections_test", {"connection_id": made["id"]}))["ok"] is True
    assert box.received == []
    async with Client(_hosted(database_url)) as hosted:
        before = await snapshot(database_url)
        tested = await fail(hosted, "email_connections_test", {"connection_id": made["id"]})
        sent = await fail(hosted, "email_send", {"connection_id": made["id"], "to": {"contact_id": ada["id"]}} | HI)
        moved = await fail(hosted, "email_connections_update", {"connection_id": made["id"], "port": port + 1})
        assert await snapshot(database_url) == before
        renamed = await call(hosted, "email_connections_update", {"connection_id": made["id"], "name": "Relay"})
    assert "127.0.0.1 resolves to 127.0.0.1, a loopback address" in tested and tested.endswith("Nothing was tried.")
    assert "loopback" in sent and sent.endswith("Nothing was sent.")
    assert "loopback" in moved and moved.endswith("Nothing was changed.")
    assert renamed["name"] == "Relay"  # what does not say where to connect may change
    assert box.received == []


HI = {"subject": "Hello {{first_name}}", "body": "Hi!"}


async def test_allow_local_smtp_lets_an_http_caller_use_a_local_relay(database_url: str, smtp: Any) -> None:
    box, port = smtp
    async with Client(_hosted(database_url, allow_local_smtp=True)) as client:
        made = await _connect(client, port)
        checked = await call(client, "email_connections_test", {"connection_id": made["id"]})
        ada = await _contact(client, "Ada", "ada@example.test")
        result = await _send(client, made["id"], {"contact_id": ada["id"]})
    assert checked["ok"] is True and result["counts"]["sent"] == 1
    assert box.recipients() == ["ada@example.test"]


async def test_a_host_that_turns_local_after_it_was_checked_gets_nothing(
    database_url: str, smtp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, _ = smtp
    asked = _fake_dns(monkeypatch, {"smtp.example.test": [PUBLIC]})
    async with Client(_hosted(database_url)) as client:
        made = await call(client, "email_connections_create", _arguments(587, host="smtp.example.test", tls="ssl"))
        people = [await _contact(client, name, f"{name.lower()}@example.test") for name in ("Ada", "Bob")]
        to = {"list_id": await _list(client, [p["id"] for p in people])}
        assert asked == ["smtp.example.test"]

        _fake_dns(monkeypatch, {"smtp.example.test": ["127.0.0.1"]})  # rebound before the send
        before = await snapshot(database_url)
        refused = await fail(client, "email_send", {"connection_id": made["id"], "to": to} | HI)
        assert await snapshot(database_url) == before

        # rebound between the check before queueing and the one before connecting: the messages are held
        _fake_dns(monkeypatch, iter([[PUBLIC], ["127.0.0.1"]]))
        result = await call(client, "email_send", {"connection_id": made["id"], "to": to} | HI)
    assert "smtp.example.test resolves to 127.0.0.1, a loopback address" in refused and "Nothing was sent" in refused
    assert result["counts"] == {"sent": 0, "failed": 0, "unknown": 0, "held": 2, "skipped": 0}
    assert all("resolves to 127.0.0.1, a loopback address" in m["error"] for m in result["messages"])
    assert "resume --send" in result["summary"]
    assert box.received == []


def test_a_session_goes_to_the_checked_address_with_tls_checked_for_the_host_name(
    smtp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = smtp
    # the name does not resolve: only the pinned address is used
    pinned = SmtpSettings("smtp.example.invalid", port, "none", USER, PASSWORD, addresses=("127.0.0.1",))
    assert check_login(pinned)["ok"] is True
    # the checked addresses are tried in order (nothing listens on ::1 here), and only they
    assert check_login(SmtpSettings("smtp.example.invalid", port, "none", None, addresses=("::1", "127.0.0.1")))["ok"]
    nowhere = check_login(SmtpSettings("smtp.example.invalid", port, "none", None, addresses=()))
    assert nowhere["ok"] is False and "cannot connect to smtp.example.invalid" in nowhere["error"]

    certificate = _certificate(tmp_path, "smtp.example.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    for mode in ("starttls", "ssl"):
        with _tls_server(mode, certificate) as server:
            named = SmtpSettings("smtp.example.test", server.port, mode, USER, PASSWORD, addresses=("127.0.0.1",))
            other = SmtpSettings("other.example.test", server.port, mode, USER, PASSWORD, addresses=("127.0.0.1",))
            assert check_login(named)["ok"] is True, mode
            refused = check_login(other)
            assert refused["ok"] is False and "certificate is not valid for 'other.example.test'" in refused["error"]
            assert len(server.logins) == 1  # the password went only to the server the certificate names
    assert box.received == []


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate (its own authority) for the host name `name` only: cert.pem and key.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}-cert.pem", tmp_path / f"{name}-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


# --- List-Unsubscribe ---------------------------------------------------------------------------------------------


def _header_lines(raw: bytes, name: str) -> list[str]:
    """The header `name` as it went over the wire: its line and the folded lines after it."""
    lines = raw.decode("ascii").split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.lower().startswith(name.lower() + ":"))
    end = start + 1
    while lines[end].startswith((" ", "\t")):
        end += 1
    return lines[start:end]


async def test_every_message_names_the_senders_unsubscribe_address(database_url: str, smtp: Any) -> None:
    box, port = smtp
    async with Client(_local(database_url)) as client:
        made = await _connect(client, port)
        people = [await _contact(client, name, f"{name.lower()}@example.test") for name in ("Ada", "Bob")]
        await _send(client, made["id"], {"list_id": await _list(client, [p["id"] for p in people])})
        await _send(client, made["id"], {"contact_id": people[0]["id"]})
    assert len(box.received) == 3
    for got in box.received:  # no public URL: the mailto form only, no one-click
        assert _header_lines(got.raw, "List-Unsubscribe") == [f"List-Unsubscribe: {MAILTO}"]
        assert got.message["List-Unsubscribe-Post"] is None


async def _acme_key(database_url: str) -> str:
    db = Database(database_url)
    try:
        await migrate(db)

        def setup(conn: Any) -> str:
            acme = create_workspace(conn, "acme", "Acme Sales", "Olive Owner", "olive@acme.test")
            return create_key(
                conn, acme["id"], acme["owner"]["id"], frozenset(["read", "write", "send", "admin"]), "k"
            )[1]

        return await db.write(setup)
    finally:
        await db.dispose()


@pytest.mark.slow
async def test_one_click_unsubscribe_over_real_http_opts_the_contact_out(
    database_url: str, smtp: Any, tmp_path: Path
) -> None:
    box, port = smtp
    key = await _acme_key(database_url)
    options = ("--public-url", "https://crm.example.test", "--allow-local-smtp", "--rate-limit", "0")
    async with http_server(database_url, tmp_path, options=options) as server, session(server, key) as client:
        made = await _connect(client, port, username=None, password=None)  # no login: no key in the server
        ada = await _contact(client, "Ada", "ada@example.test")
        bob = await _contact(client, "Bob", "bob@example.test")
        result = await _send(client, made["id"], {"list_id": await _list(client, [ada["id"], bob["id"]])})
        assert result["counts"]["sent"] == 2

        links = {}
        for got in box.received:
            lines = _header_lines(got.raw, "List-Unsubscribe")
            assert lines[0] == f"List-Unsubscribe: {MAILTO},"  # each address whole on its own line
            (link,) = re.fullmatch(r" <(https://crm\.example\.test/unsubscribe/[^>\s]+)>", lines[1]).groups()  # type: ignore[union-attr]
            assert got.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            links[got.recipients[0]] = link.removeprefix("https://crm.example.test")
        assert links["ada@example.test"] != links["bob@example.test"]

        async with httpx2.AsyncClient(base_url=server.base_url, timeout=10) as http:
            shown = await http.get(links["ada@example.test"])  # a link checker's GET changes nothing
            assert shown.status_code == 200 and "Stop emails from Acme Sales" in shown.text
            assert 'method="post"' in shown.text
            assert (await call(client, "contacts_get", {"id": ada["id"]}))["email_opt_out"] is False

            done = await http.post(links["ada@example.test"], data={"List-Unsubscribe": "One-Click"})
            assert done.status_code == 200 and "You are unsubscribed" in done.text
            again = await http.post(links["ada@example.test"], data={"List-Unsubscribe": "One-Click"})
            assert again.status_code == 200 and "You are unsubscribed" in again.text

            forged = links["bob@example.test"][:-4] + "AAAA"
            assert (await http.post(forged)).status_code == 404
            swapped = links["ada@example.test"].replace(ada["id"], bob["id"])
            assert (await http.post(swapped)).status_code == 404

        opted = await call(client, "contacts_get", {"id": ada["id"]})
        assert opted["email_opt_out"] is True and opted["email_opt_out_reason"] == "unsubscribe link"
        assert opted["email_opted_out_at"] is not None
        assert (await call(client, "contacts_get", {"id": bob["id"]}))["email_opt_out"] is False
        audit = await call(client, "audit_list", {"filter": {"field": "record_id", "op": "eq", "value": ada["id"]}})
        assert any(e["action"] == "updated" and e["via"] == "http" for e in audit["items"])

        box.received.clear()
        later = await _send(client, made["id"], {"list_id": await _list(client, [ada["id"], bob["id"]])})
    assert later["counts"]["sent"] == 1 and box.recipients() == ["bob@example.test"]
    assert later["skipped"][0]["reason"] == "opted out of email (unsubscribe link)"
    assert "Traceback" not in server.output()


async def test_an_unsubscribe_token_is_checked_and_a_get_changes_nothing(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate(db)
        crm, actor = Crm(db), await local_actor(db, via="cli")
        contacts = ENTITIES["contacts"]
        ada = await crm.create(actor, contacts, create_model_for(contacts)(first_name="Ada", last_name="L"))
        secret = await crm._secret(actor)
        token = unsubscribe.token(secret, actor.workspace_id, ada["id"])
        assert unsubscribe.link(unsubscribe.base_url("http://crm.example.test"), secret, "w", "c") is None  # not https
        assert unsubscribe.link(unsubscribe.base_url("https://crm.example.test/"), secret, "w", "c") == (
            f"https://crm.example.test/unsubscribe/{unsubscribe.token(secret, 'w', 'c')}"
        )

        for bad in ("", "x", token + "x", token.replace(actor.workspace_id, "other"), token.rsplit(".", 1)[0] + ".A"):
            assert (await unsubscribe.unsubscribe(crm, bad)).state == "invalid"
        assert (await unsubscribe.look_up(crm, token)).state == "subscribed"
        assert (await unsubscribe.look_up(crm, token)).state == "subscribed"  # looking changes nothing
        done = await unsubscribe.unsubscribe(crm, token)
        assert (done.state, done.workspace) == ("opted_out", "Local")
        stored = await crm.get(actor, contacts, ada["id"])
        assert stored["email_opt_out"] is True and stored["email_opt_out_reason"] == "unsubscribe link"

        await crm.delete(actor, contacts, ada["id"])
        assert (await unsubscribe.unsubscribe(crm, token)).state == "gone"
    finally:
        await db.dispose()
