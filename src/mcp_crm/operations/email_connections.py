"""Email (SMTP) connections, inside the caller's transaction.

The password is encrypted before it is stored (mail/crypto.py) and no function here returns it: only
`smtp_settings`, for the sender, decrypts it. Changes are recorded in the audit log (entity "email_connections")
with the password left out; a new password shows there as "(changed)"."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from mcp_crm.errors import CrmError, NotFound
from mcp_crm.ids import new_id
from mcp_crm.mail.crypto import decrypt, encrypt, require_shared_key
from mcp_crm.mail.smtp import TLS_MODES, SmtpSettings
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.audit import record_setting_change
from mcp_crm.store.tables import EMAIL_CONNECTIONS, EMAIL_OUTBOX, EMAIL_SENDS

MAX_CONNECTIONS = 20  # per workspace
MAX_PASSWORD = 500
COUNTED = ("sending", "sent", "unknown")  # messages that count against the daily limit (handed to the server)
RECENT_SENDS = 10
PUBLIC = ("id", "name", "host", "port", "tls", "username", "from_address", "from_name", "daily_limit")
PUBLIC += ("created_by", "created_at", "updated_at")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HOST = re.compile(r"^[A-Za-z0-9._:-]{1,253}$")
LOCAL_HOSTS = ("localhost", "localhost.")
DEFAULTS = {"name": None, "port": 587, "tls": "starttls", "username": None, "from_name": None, "daily_limit": 200}


def public(row: Any) -> dict[str, Any]:
    return {name: row[name] for name in PUBLIC} | {"has_password": row["password_encrypted"] is not None}


def connection_row(conn: Connection, actor: Actor, connection_id: str, lock: bool = False) -> Any:
    query = select(EMAIL_CONNECTIONS).where(
        EMAIL_CONNECTIONS.c.workspace_id == actor.workspace_id, EMAIL_CONNECTIONS.c.id == connection_id
    )
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    if row is None:
        raise NotFound(
            f"No email connection {connection_id} in this workspace; email_connections_list shows the workspace's "
            "connections."
        )
    return row


def chosen_connection(conn: Connection, actor: Actor, connection_id: str | None) -> Any:
    """The connection with this id, or the workspace's only one when no id is given."""
    if connection_id is not None:
        return connection_row(conn, actor, connection_id)
    rows = (
        conn.execute(
            select(EMAIL_CONNECTIONS)
            .where(EMAIL_CONNECTIONS.c.workspace_id == actor.workspace_id)
            .order_by(EMAIL_CONNECTIONS.c.id)
        )
        .mappings()
        .all()
    )
    if len(rows) == 1:
        return rows[0]
    if not rows:
        raise CrmError(
            "This workspace has no email connection yet; an admin adds one with email_connections_create or "
            "`mcp-crm email connect`. Nothing was sent."
        )
    listed = "; ".join(f"{row['id']} ({row['name']}, from {row['from_address']})" for row in rows)
    raise CrmError(f"connection_id: this workspace has {len(rows)} email connections; choose one: {listed}.")


TARGET = ("host", "port", "tls")  # where the password goes: changing it clears the stored password
CLEARED = (
    "the password was cleared when the connection's host, port or tls changed (so that a new server never gets "
    "the old one); set it again with email_connections_update password (or `mcp-crm email connect --update ID "
    "--new-password`)"
)


def _checked(store: str, values: dict[str, Any], before: Any = None, cleared: bool = False) -> dict[str, Any]:
    """The values as stored (password encrypted), once the connection they make together is valid; `store` is the
    database's kind (a password is saved on PostgreSQL only with a key every host has)."""
    merged = (dict(before) if before is not None else {}) | {k: v for k, v in values.items() if k != "password"}
    problems = []
    if not HOST.match(merged["host"] or ""):
        problems.append(f"host: {merged['host']!r} is not a host name or IP address (e.g. smtp.example.com).")
    if not 1 <= merged["port"] <= 65535:
        problems.append(f"port: {merged['port']} is not a port; use 587 for starttls, 465 for ssl, 25 for none.")
    if merged["tls"] not in TLS_MODES:
        problems.append(f"tls: {merged['tls']!r} is not one of {', '.join(TLS_MODES)}.")
    if not EMAIL.match(merged["from_address"] or ""):
        problems.append(f"from_address: {merged['from_address']!r} is not an email address (e.g. ada@acme.com).")
    if not 1 <= merged["daily_limit"] <= 100_000:
        problems.append(f"daily_limit: {merged['daily_limit']} is not from 1 to 100000.")
    password = values.get("password", ...)
    if password is not ... and password is not None and not 1 <= len(password) <= MAX_PASSWORD:
        problems.append(f"password: give 1 to {MAX_PASSWORD} characters, or null for a server that needs no login.")
    stored = {k: v for k, v in values.items() if k != "password"}
    if password is not ...:
        if password:
            require_shared_key(store)
        stored["password_encrypted"] = encrypt(password) if password else None
        merged["password_encrypted"] = stored["password_encrypted"]
    has_password = merged.get("password_encrypted") is not None
    if has_password and not merged.get("username"):
        problems.append("username: a password needs the username it belongs to.")
    if merged.get("username") and not has_password and not cleared:
        problems.append("password: a username needs its password (or leave both out for a server without login).")
    if has_password and merged["tls"] == "none" and not _loopback(merged["host"]):
        problems.append(
            "tls: none would send the password unencrypted over the network; use starttls (port 587) or ssl "
            "(port 465). tls none with a login is allowed only for a server on this machine."
        )
    if problems:
        raise CrmError("The email connection is not valid; nothing was changed:\n- " + "\n- ".join(problems))
    return stored


def _loopback(host: str) -> bool:
    if host.lower() in LOCAL_HOSTS:
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _audit(conn: Connection, actor: Actor, action: str, before: Any, after: Any, now: datetime) -> None:
    record_setting_change(conn, actor, "email_connections", action, before, after, now)


def create_connection(conn: Connection, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    """`values`: host, from_address and any of DEFAULTS (a name defaults to the from address), password."""
    count = conn.execute(
        select(func.count()).where(EMAIL_CONNECTIONS.c.workspace_id == actor.workspace_id)
    ).scalar_one()
    if count >= MAX_CONNECTIONS:
        raise CrmError(f"A workspace has at most {MAX_CONNECTIONS} email connections; delete one you no longer use.")
    now = datetime.now(UTC)
    values = DEFAULTS | values
    row = _checked(conn.dialect.name, values | {"name": values["name"] or values["from_address"]}) | {
        "id": new_id(),
        "workspace_id": actor.workspace_id,
        "created_by": actor.user_id,
        "created_at": now,
        "updated_at": now,
    }
    row.setdefault("password_encrypted", None)
    conn.execute(insert(EMAIL_CONNECTIONS).values(row))
    _audit(conn, actor, "created", None, public(row), now)
    return public(row)


def list_connections(conn: Connection, actor: Actor) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(EMAIL_CONNECTIONS)
        .where(EMAIL_CONNECTIONS.c.workspace_id == actor.workspace_id)
        .order_by(EMAIL_CONNECTIONS.c.id)
    ).mappings()
    return [public(row) for row in rows]


def start_of_day(now: datetime) -> datetime:
    """Daily limits count messages from 00:00 UTC."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def sent_today(conn: Connection, connection_id: str, now: datetime) -> int:
    """Messages handed to the server (or being handed) since 00:00 UTC: what counts against the daily limit."""
    return int(
        conn.execute(
            select(func.count()).where(
                EMAIL_OUTBOX.c.connection_id == connection_id,
                EMAIL_OUTBOX.c.attempted_at >= start_of_day(now),
                EMAIL_OUTBOX.c.state.in_(COUNTED),
            )
        ).scalar_one()
    )


def usage(conn: Connection, row: Any, now: datetime) -> dict[str, Any]:
    used = sent_today(conn, row["id"], now)
    return {
        "limit": row["daily_limit"],
        "used_today": used,
        "remaining_today": max(0, row["daily_limit"] - used),
        "resets_at": start_of_day(now) + timedelta(days=1),
    }


def get_connection(conn: Connection, actor: Actor, connection_id: str) -> dict[str, Any]:
    """The connection, how much of today's limit is used, and its latest sends with their messages counted by
    state."""
    row = connection_row(conn, actor, connection_id)
    sends = (
        conn.execute(
            select(EMAIL_SENDS)
            .where(EMAIL_SENDS.c.connection_id == connection_id)
            .order_by(EMAIL_SENDS.c.id.desc())
            .limit(RECENT_SENDS)
        )
        .mappings()
        .all()
    )
    counts: dict[str, dict[str, int]] = {send["id"]: {} for send in sends}
    if sends:
        for send_id, state, count in conn.execute(
            select(EMAIL_OUTBOX.c.send_id, EMAIL_OUTBOX.c.state, func.count())
            .where(EMAIL_OUTBOX.c.send_id.in_(list(counts)))
            .group_by(EMAIL_OUTBOX.c.send_id, EMAIL_OUTBOX.c.state)
        ).all():
            counts[send_id][state] = count
    recent = [
        {
            "id": send["id"],
            "created_at": send["created_at"],
            "subject": send["subject"],
            "to": send["recipients"],
            "finished_at": send["finished_at"],
            "messages": counts[send["id"]],
        }
        for send in sends
    ]
    return public(row) | {"daily_usage": usage(conn, row, datetime.now(UTC)), "recent_sends": recent}


def update_connection(conn: Connection, actor: Actor, connection_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """`changes`: any of the fields create takes; a password replaces the stored one, null removes it."""
    before = dict(connection_row(conn, actor, connection_id, lock=True))
    retargeted = any(name in changes and changes[name] != before[name] for name in TARGET)
    cleared = retargeted and "password" not in changes and before["password_encrypted"] is not None
    if cleared:  # the old password is not sent to a server it was not given for
        changes = changes | {"password": None}
    # a login left without its password by such a change stays so until a password is given
    unchanged_login = "username" not in changes and (cleared or "password" not in changes)
    stored = _checked(conn.dialect.name, changes, before, cleared=unchanged_login)
    values = {k: v for k, v in stored.items() if k == "password_encrypted" or v != before[k]}
    if not values:
        return public(before)
    now = datetime.now(UTC)
    conn.execute(
        update(EMAIL_CONNECTIONS).where(EMAIL_CONNECTIONS.c.id == connection_id).values(values | {"updated_at": now})
    )
    after = public(before | values | {"updated_at": now})
    shown = {k: before[k] for k in values if k in PUBLIC}
    if "password_encrypted" in values:
        shown["password"], after = "(changed)", after | {"password": "(changed)"}
    _audit(conn, actor, "updated", shown, after, now)
    return public(before | values | {"updated_at": now})


def delete_connection(conn: Connection, actor: Actor, connection_id: str) -> dict[str, Any]:
    """Deletes the connection and the record of its sends (the email activities stay on the timelines)."""
    row = connection_row(conn, actor, connection_id, lock=True)
    open_send = conn.execute(
        select(EMAIL_SENDS.c.id).where(
            EMAIL_SENDS.c.connection_id == connection_id, EMAIL_SENDS.c.finished_at.is_(None)
        )
    ).first()
    if open_send is not None:
        raise CrmError(
            f"Send {open_send[0]} through this connection has not finished (messages are waiting or being sent); "
            "delete the connection once it has. Nothing was changed."
        )
    conn.execute(delete(EMAIL_CONNECTIONS).where(EMAIL_CONNECTIONS.c.id == connection_id))
    _audit(conn, actor, "deleted", public(row), None, datetime.now(UTC))
    return public(row)


def settings_of(row: Any) -> SmtpSettings:
    """What the sender needs, password decrypted; a login without its password (cleared by a change of server)
    is refused."""
    password = decrypt(row["password_encrypted"], row["name"]) if row["password_encrypted"] else None
    if row["username"] and password is None:
        raise CrmError(f"Email connection {row['name']!r} has a username but no password: {CLEARED}. Nothing was sent.")
    return SmtpSettings(host=row["host"], port=row["port"], tls=row["tls"], username=row["username"], password=password)


def smtp_settings(conn: Connection, actor: Actor, connection_id: str) -> SmtpSettings:
    return settings_of(connection_row(conn, actor, connection_id))
