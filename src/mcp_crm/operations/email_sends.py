"""Email sends on the database side, each function inside the caller's transaction; no network here.

A send is written in steps, so that no email is sent inside a transaction and none is sent twice:
1. `queue_send`: the send and one outbox row per message (pending), rendered, in one transaction.
2. per message: `claim_next` marks it sending (commit); the caller hands it to the SMTP server; `finish` marks it
   sent, failed or unknown and records it as an email activity on the person's timeline (commit).
3. a send whose process died (`abandoned_sends`) is taken over (`take_over`): its rows left in sending become
   unknown (the server may have taken the message: it is not sent again), its pending rows go on from step 2."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from pydantic import BaseModel, create_model
from sqlalchemy import Connection, func, insert, select, update

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for
from mcp_crm.errors import CrmError
from mcp_crm.ids import new_id
from mcp_crm.mail.render import BodyFormat, MissingValue, Rendered, address, check_template, message_id, render
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.email_connections import chosen_connection, connection_row, public, sent_today, usage
from mcp_crm.operations.records import not_found, rows_by_id, table_of, title_of
from mcp_crm.operations.writes import create_records
from mcp_crm.store.tables import EMAIL_CONNECTIONS, EMAIL_OUTBOX, EMAIL_SENDS

CONTACTS, LEADS, ORGANIZATIONS, ACTIVITIES = (ENTITIES[n] for n in ("contacts", "leads", "organizations", "activities"))
MAX_RECIPIENTS = 5000
OPEN_STATES = ("pending", "sending")
NOTE_LIMIT = 20_000  # an activity's note
SUBJECT_LIMIT = 200  # an activity's subject


@dataclass(frozen=True)
class Person:
    """Someone a send may write to: a contact, or a lead (written to at its contact's address)."""

    contact_id: str | None
    lead_id: str | None
    name: str
    email: str | None
    opt_out: str | None  # why they are not written to (opted out), or None
    values: dict[str, str | None]  # merge field values

    def summary(self) -> dict[str, Any]:
        return {"contact_id": self.contact_id, "lead_id": self.lead_id, "name": self.name, "email": self.email}


@dataclass(frozen=True)
class Message:
    person: Person
    rendered: Rendered


@dataclass
class Plan:
    connection: dict[str, Any]
    members: int
    messages: list[Message]
    skipped: list[dict[str, Any]]
    usage: dict[str, Any]


# --- who a send writes to ---------------------------------------------------------------------------------------


def member_refs(conn: Connection, actor: Actor, to: dict[str, str]) -> list[tuple[str, str]]:
    """("contacts" | "leads", id) of everyone `to` names: one contact, one lead, or a list's members."""
    if to.get("list_id"):
        from mcp_crm.operations.lists import list_member_refs  # lists are optional to this module

        return list_member_refs(conn, actor, to["list_id"])
    kind, entity = ("contacts", CONTACTS) if to.get("contact_id") else ("leads", LEADS)
    record_id = to["contact_id"] if kind == "contacts" else to["lead_id"]
    if not rows_by_id(conn, actor, entity, [record_id]):
        raise not_found(entity, [record_id], "Nothing was sent.")
    return [(kind, record_id)]


def _organization_names(conn: Connection, actor: Actor, contact_ids: list[str], org_ids: list[str]) -> Any:
    """({contact id: its primary organization's name}, {organization id: name})."""
    members = next(link for link in CONTACTS.links if link.name == "organizations").table.__table__  # type: ignore[attr-defined]
    orgs = table_of(ORGANIZATIONS)
    by_contact: dict[str, str] = {}
    for start in range(0, len(contact_ids), 500):
        rows = conn.execute(
            select(members.c.contact_id, orgs.c.name)
            .join(orgs, orgs.c.id == members.c.organization_id)
            .where(members.c.contact_id.in_(contact_ids[start : start + 500]))
            .order_by(members.c.contact_id, members.c.is_primary.desc(), orgs.c.name)
        ).all()
        for contact_id, name in rows:
            by_contact.setdefault(contact_id, name)
    named = {oid: row["name"] for oid, row in rows_by_id(conn, actor, ORGANIZATIONS, org_ids).items()}
    return by_contact, named


def _opt_out(contact: dict[str, Any] | None) -> str | None:
    if contact is None or not contact.get("email_opt_out"):
        return None
    reason = contact.get("email_opt_out_reason")
    return f"opted out of email ({reason})" if reason else "opted out of email"


def people(conn: Connection, actor: Actor, refs: list[tuple[str, str]]) -> list[Person]:
    """The people behind `refs`, in order; refs to records no longer there are left out."""
    leads = rows_by_id(conn, actor, LEADS, [i for kind, i in refs if kind == "leads"])
    contact_ids = [i for kind, i in refs if kind == "contacts"] + [
        lead["contact_id"] for lead in leads.values() if lead["contact_id"]
    ]
    contacts = rows_by_id(conn, actor, CONTACTS, contact_ids)
    org_ids = [lead["organization_id"] for lead in leads.values() if lead["organization_id"]]
    by_contact, named = _organization_names(conn, actor, list(contacts), org_ids)
    found = []
    for kind, record_id in refs:
        if kind == "contacts" and record_id in contacts:
            found.append(_person(contacts[record_id], None, by_contact.get(record_id)))
        elif kind == "leads" and record_id in leads:
            lead = leads[record_id]
            contact = contacts.get(lead["contact_id"]) if lead["contact_id"] else None
            organization = named.get(lead["organization_id"]) or by_contact.get(lead["contact_id"] or "")
            found.append(_person(contact, lead, organization))
    opted = _opted_out_addresses(conn, actor) if found else {}
    return [
        replace(p, opt_out=opted[p.email.lower()]) if p.opt_out is None and p.email and p.email.lower() in opted else p
        for p in found
    ]


def _opted_out_addresses(conn: Connection, actor: Actor) -> dict[str, str]:
    """{address (lower case): why not to write to it} for every address of the workspace's opted-out contacts:
    an address one contact opted out with is not written to through another contact that has it too."""
    contacts = table_of(CONTACTS)
    rows = conn.execute(
        select(contacts.c.first_name, contacts.c.last_name, contacts.c.email, contacts.c.emails).where(
            contacts.c.workspace_id == actor.workspace_id, contacts.c.email_opt_out.is_(True)
        )
    ).all()
    opted: dict[str, str] = {}
    for first, last, primary, emails in rows:
        name = " ".join(part for part in (first, last) if part)
        why = f"the address belongs also to {name}, who opted out of email"
        for value in [primary] + [e.get("value") for e in (emails or []) if isinstance(e, dict)]:
            if value:
                opted.setdefault(str(value).lower(), why)
    return opted


def _person(contact: dict[str, Any] | None, lead: dict[str, Any] | None, organization: str | None) -> Person:
    first, last = (contact["first_name"], contact["last_name"]) if contact else (None, None)
    full = " ".join(part for part in (first, last) if part) or None
    email = contact["email"] if contact else None
    return Person(
        contact_id=contact["id"] if contact else None,
        lead_id=lead["id"] if lead else None,
        name=full or title_of(LEADS, lead or {}),
        email=email,
        opt_out=_opt_out(contact),
        values={
            "first_name": first,
            "last_name": last,
            "full_name": full,
            "email": email,
            "organization": organization,
        },
    )


# --- planning and queueing --------------------------------------------------------------------------------------


def plan_send(
    conn: Connection,
    actor: Actor,
    connection_id: str | None,
    to: dict[str, str],
    subject: str,
    body: str,
    body_format: BodyFormat,
) -> Plan:
    """Each message the send would write, and who it would skip and why; writes nothing."""
    check_template(subject, body)
    connection = chosen_connection(conn, actor, connection_id)
    refs = member_refs(conn, actor, to)
    if len(refs) > MAX_RECIPIENTS:
        raise CrmError(
            f"The list has {len(refs)} members; one send writes to at most {MAX_RECIPIENTS}. Split it into smaller "
            "lists. Nothing was sent."
        )
    messages: list[Message] = []
    skipped: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for person in people(conn, actor, refs):
        why = _why_skip(person, seen)
        if why is None:
            try:
                messages.append(Message(person, render(subject, body, body_format, person.values)))
                seen[(person.email or "").lower()] = person.name
            except MissingValue as missing:
                why = (
                    f"no {missing.field} for {{{{{missing.field}}}}}; give a fallback such as "
                    f"{{{{{missing.field}|...}}}} to write to people without one"
                )
        if why is not None:
            skipped.append(person.summary() | {"reason": why})
    return Plan(public(connection), len(refs), messages, skipped, usage(conn, connection, datetime.now(UTC)))


def _why_skip(person: Person, seen: dict[str, str]) -> str | None:
    if person.opt_out:
        return person.opt_out
    if not person.email:
        return "a lead without a contact has no email address" if person.contact_id is None else "no email address"
    try:
        address(person.email)
    except ValueError:
        return f"{person.email!r} is not a usable email address"
    if person.email.lower() in seen:
        return f"{seen[person.email.lower()]} has the same address and gets this message"
    return None


def email_type_check(conn: Connection, actor: Actor) -> None:
    """Sends are recorded as activities of type email, so that type must be active."""
    types = table_of(ENTITIES["activity_types"])
    active = conn.execute(
        select(types.c.id).where(
            types.c.workspace_id == actor.workspace_id, types.c.key == "email", types.c.active.is_(True)
        )
    ).first()
    if active is None:
        raise CrmError(
            "Sent emails are recorded as activities of type 'email', which this workspace has turned off or "
            "removed; turn it back on (activity_types_update active: true) or add it. Nothing was sent."
        )


def queue_send(
    conn: Connection,
    actor: Actor,
    connection_id: str | None,
    to: dict[str, str],
    subject: str,
    body: str,
    body_format: BodyFormat,
    allowed: Callable[[int], None],
    send_id: str,
    owner: str,
    idempotency_key: str | None = None,
) -> tuple[str | None, Plan]:
    """Plans the send and writes it, as `send_id` sent by `owner`, with one pending outbox row per message:
    (send id or None when there is nothing to send, the plan). `allowed(members)` raises when the send needs a
    confirm token it lacks."""
    email_type_check(conn, actor)
    plan = plan_send(conn, actor, connection_id, to, subject, body, body_format)
    allowed(plan.members)
    if not plan.messages:
        return None, plan
    connection_id = plan.connection["id"]
    now = datetime.now(UTC)
    conn.execute(
        insert(EMAIL_SENDS).values(
            id=send_id,
            workspace_id=actor.workspace_id,
            connection_id=connection_id,
            recipients=to,
            subject=subject,
            body=body,
            body_format=body_format,
            created_by=actor.user_id,
            via=actor.via,
            created_at=now,
            owner=owner,
            heartbeat_at=db_now(conn),
            idempotency_key=idempotency_key,
        )
    )
    rows = []
    for position, message in enumerate(plan.messages):
        row_id = new_id()
        rows.append(
            {
                "id": row_id,
                "send_id": send_id,
                "connection_id": connection_id,
                "position": position,
                "contact_id": message.person.contact_id,
                "lead_id": message.person.lead_id,
                "to_address": message.person.email,
                "to_name": message.person.name,
                "subject": message.rendered.subject,
                "text": message.rendered.text,
                "html": message.rendered.html,
                "message_id": message_id(row_id, plan.connection["from_address"]),
                "state": "pending",
            }
        )
    conn.execute(insert(EMAIL_OUTBOX), rows)
    return send_id, plan


def db_now(conn: Connection) -> datetime:
    """The database's clock (PostgreSQL's now()), so that heartbeats written by hosts whose clocks differ compare
    right; SQLite is a file on this machine, whose clock it is."""
    if conn.dialect.name == "postgresql":
        value = conn.execute(select(func.now())).scalar_one()
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.now(UTC)


# --- one message at a time --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A message marked sending: everything needed to build and deliver it."""

    row: dict[str, Any]
    connection: dict[str, Any]


def send_by_key(conn: Connection, actor: Actor, key: str, to: dict[str, str], subject: str, body: str) -> str | None:
    """The id of the workspace's send made with idempotency key `key`, or None; a key used for another message
    is refused."""
    found = (
        conn.execute(
            select(EMAIL_SENDS).where(
                EMAIL_SENDS.c.workspace_id == actor.workspace_id, EMAIL_SENDS.c.idempotency_key == key
            )
        )
        .mappings()
        .first()
    )
    if found is None:
        return None
    if (found["recipients"], found["subject"], found["body"]) != (to, subject, body):
        raise CrmError(
            f"idempotency_key '{key}' was already used for send {found['id']} with other recipients, subject or "
            "body; use a new key for a new send. Nothing was sent."
        )
    return str(found["id"])


def send_row(conn: Connection, send_id: str) -> dict[str, Any]:
    row = conn.execute(select(EMAIL_SENDS).where(EMAIL_SENDS.c.id == send_id)).mappings().first()
    if row is None:
        raise CrmError(f"No email send {send_id}; its connection may have been deleted.")
    return dict(row)


def _actor_of(send: dict[str, Any], via: str) -> Actor:
    return Actor(workspace_id=send["workspace_id"], user_id=send["created_by"], via=via, tool="email_send")


def claim_next(conn: Connection, send_id: str, owner: str, now: datetime) -> Claimed | None:
    """The send's next pending message, marked sending, or None when none is left (the send is then marked
    finished). Recipients who opted out or were deleted since the send was queued are skipped; when the
    connection's daily limit is used up, every pending message is held instead."""
    send = send_row(conn, send_id)
    actor = _actor_of(send, "worker")
    # the connection row's lock makes the day's count and the claim one step for concurrent sends
    connection = dict(connection_row(conn, actor, send["connection_id"], lock=True))
    # fenced: once another process took the send over (its owner changed), this one claims nothing more
    still_mine = conn.execute(
        update(EMAIL_SENDS)
        .where(EMAIL_SENDS.c.id == send_id, EMAIL_SENDS.c.owner == owner)
        .values(heartbeat_at=db_now(conn))
    ).rowcount
    if not still_mine:
        return None
    while True:
        row = (
            conn.execute(
                select(EMAIL_OUTBOX)
                .where(EMAIL_OUTBOX.c.send_id == send_id, EMAIL_OUTBOX.c.state == "pending")
                .order_by(EMAIL_OUTBOX.c.position)
                .limit(1)
            )
            .mappings()
            .first()
        )
        if row is None:
            _finish_send_if_done(conn, send_id, now)
            return None
        why = _gone_or_opted_out(conn, actor, dict(row))
        if why is not None:
            _settle(conn, row["id"], "skipped", why, now)
            continue
        if sent_today(conn, connection["id"], now) >= connection["daily_limit"]:
            hold_rest(conn, send_id, f"the daily limit of {connection['daily_limit']} messages was reached", now)
            return None
        claimed = conn.execute(
            update(EMAIL_OUTBOX)
            .where(EMAIL_OUTBOX.c.id == row["id"], EMAIL_OUTBOX.c.state == "pending")
            .values(state="sending", attempted_at=now)
        ).rowcount
        if not claimed:  # another process got to it first
            continue
        return Claimed(dict(row) | {"state": "sending", "attempted_at": now}, connection)


def _gone_or_opted_out(conn: Connection, actor: Actor, row: dict[str, Any]) -> str | None:
    refs = [("leads", row["lead_id"])] if row["lead_id"] else [("contacts", row["contact_id"])]
    found = people(conn, actor, refs)
    if not found:
        return "deleted since the send was queued"
    return found[0].opt_out


def _settle(conn: Connection, row_id: str, state: str, error: str | None, now: datetime) -> None:
    conn.execute(
        update(EMAIL_OUTBOX)
        .where(EMAIL_OUTBOX.c.id == row_id, EMAIL_OUTBOX.c.state == "pending")
        .values(state=state, error=error, finished_at=now)
    )


def hold_claimed(conn: Connection, row_id: str, why: str, now: datetime) -> None:
    """A claimed message that was not handed over (the connection, TLS or login failed: nothing was sent) is held
    like the rest, not counted against the daily limit."""
    conn.execute(
        update(EMAIL_OUTBOX)
        .where(EMAIL_OUTBOX.c.id == row_id, EMAIL_OUTBOX.c.state == "sending")
        .values(state="held", error=f"not tried: {why}", attempted_at=None, finished_at=now)
    )


def hold_rest(conn: Connection, send_id: str, why: str, now: datetime) -> None:
    """Every pending message of the send is held (not tried) and the send finished: `mcp-crm email resume --send`
    tries them later."""
    conn.execute(
        update(EMAIL_OUTBOX)
        .where(EMAIL_OUTBOX.c.send_id == send_id, EMAIL_OUTBOX.c.state == "pending")
        .values(state="held", error=f"not tried: {why}", finished_at=now)
    )
    _finish_send_if_done(conn, send_id, now)


def _finish_send_if_done(conn: Connection, send_id: str, now: datetime) -> None:
    conn.execute(
        update(EMAIL_SENDS)
        .where(
            EMAIL_SENDS.c.id == send_id,
            ~select(EMAIL_OUTBOX.c.id)
            .where(EMAIL_OUTBOX.c.send_id == send_id, EMAIL_OUTBOX.c.state.in_(OPEN_STATES))
            .exists(),
        )
        .values(finished_at=now)
    )


@cache
def _email_activity() -> type[BaseModel]:
    """An activity as activities_create takes it, plus the email_* fields only a send sets."""
    return create_model(
        "EmailActivity",
        __base__=create_model_for(ACTIVITIES),
        email_status=(str, ...),
        email_to=(str, ...),
        email_message_id=(str, ...),
        email_error=(str | None, None),
    )


def finish(conn: Connection, claimed: dict[str, Any], state: str, error: str | None, via: str, now: datetime) -> bool:
    """Marks the message sent, failed or unknown and records it as an email activity on the person's timeline:
    True. False when the message is no longer sending (another process took the send over and settled it as
    unknown meanwhile, with its activity): that stays as it is, no second activity is recorded, and what this
    process saw is added to the row's error, so nothing flips from unknown to sent silently."""
    settled = conn.execute(
        update(EMAIL_OUTBOX)
        .where(EMAIL_OUTBOX.c.id == claimed["id"], EMAIL_OUTBOX.c.state == "sending")
        .values(state=state, error=error, finished_at=now)
    ).rowcount
    if not settled:
        current = conn.execute(
            select(EMAIL_OUTBOX.c.state, EMAIL_OUTBOX.c.error).where(EMAIL_OUTBOX.c.id == claimed["id"])
        )
        found = current.first()
        if found is not None and found.state == "unknown":
            seen = f"{state}: {error}" if error else state
            note = f"{found.error or ''} (the process that was sending it reported afterwards: {seen})".strip()
            conn.execute(update(EMAIL_OUTBOX).where(EMAIL_OUTBOX.c.id == claimed["id"]).values(error=note))
        return False
    send = send_row(conn, claimed["send_id"])
    activity_id = _record_activity(conn, _actor_of(send, via), claimed, state, error, now)
    conn.execute(update(EMAIL_OUTBOX).where(EMAIL_OUTBOX.c.id == claimed["id"]).values(activity_id=activity_id))
    return True


def _record_activity(
    conn: Connection, actor: Actor, row: dict[str, Any], state: str, error: str | None, now: datetime
) -> str | None:
    """The email activity's id; records deleted since the send was queued are left out of its links."""
    lead = rows_by_id(conn, actor, LEADS, [row["lead_id"]]).get(row["lead_id"]) if row["lead_id"] else None
    contact_id = row["contact_id"] or (lead or {}).get("contact_id")
    activity = _email_activity()(
        type="email",
        subject=_cut(row["subject"] or "(no subject)", SUBJECT_LIMIT),
        note=_cut(row["text"], NOTE_LIMIT),
        due_at=row["attempted_at"] or now,
        done=state == "sent",
        done_at=now if state == "sent" else None,
        contact_id=contact_id if _exists(conn, actor, CONTACTS, contact_id) else None,
        lead_id=lead["id"] if lead else None,
        owner_id=actor.user_id if _exists(conn, actor, ENTITIES["users"], actor.user_id) else None,
        email_status=state,
        email_to=row["to_address"],
        email_message_id=row["message_id"],
        email_error=_cut(error, 2000) if error else None,
    )
    try:
        (created,) = create_records(conn, actor, ACTIVITIES, [activity], bulk=False)
    except CrmError:
        return None  # the activity type was turned off meanwhile: the outbox row still tells what happened
    return str(created["id"])


def _exists(conn: Connection, actor: Actor, entity: Any, record_id: str | None) -> bool:
    return record_id is not None and bool(rows_by_id(conn, actor, entity, [record_id]))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- sends whose process stopped --------------------------------------------------------------------------------


def open_sends(conn: Connection, send_id: str | None = None) -> list[dict[str, Any]]:
    """Unfinished sends (or the one with `send_id`, if unfinished), oldest first."""
    query = select(EMAIL_SENDS).where(EMAIL_SENDS.c.finished_at.is_(None))
    if send_id is not None:
        query = query.where(EMAIL_SENDS.c.id == send_id)
    return [dict(row) for row in conn.execute(query.order_by(EMAIL_SENDS.c.id)).mappings()]


def take_over(
    conn: Connection, send: dict[str, Any], owner: str, via: str, now: datetime
) -> list[dict[str, Any]] | None:
    """Makes this process the send's sender (None when another process took it over first), and turns its
    messages left in sending into unknown ones, each recorded as such: those are returned."""
    taken = conn.execute(
        update(EMAIL_SENDS)
        .where(
            EMAIL_SENDS.c.id == send["id"],
            EMAIL_SENDS.c.finished_at.is_(None),
            EMAIL_SENDS.c.heartbeat_at == send["heartbeat_at"],
            EMAIL_SENDS.c.owner == send["owner"] if send["owner"] is not None else EMAIL_SENDS.c.owner.is_(None),
        )
        .values(owner=owner, heartbeat_at=db_now(conn))
    ).rowcount
    if not taken:
        return None
    stuck = (
        conn.execute(
            select(EMAIL_OUTBOX).where(EMAIL_OUTBOX.c.send_id == send["id"], EMAIL_OUTBOX.c.state == "sending")
        )
        .mappings()
        .all()
    )
    why = (
        "the sending process stopped while handing this message to the mail server; it may have arrived, so it is "
        "not sent again"
    )
    for row in stuck:
        finish(conn, dict(row), "unknown", why, via, now)
    _finish_send_if_done(conn, send["id"], now)
    return [dict(row) | {"state": "unknown", "error": why} for row in stuck]


def release_held(conn: Connection, send_id: str, owner: str, now: datetime) -> dict[str, Any] | None:
    """A finished send's held messages put back in line (after the daily limit reset, or the server was fixed),
    with `owner` as its sender: the send, or None when it has none held (or is still running)."""
    taken = conn.execute(
        update(EMAIL_SENDS)
        .where(
            EMAIL_SENDS.c.id == send_id,
            EMAIL_SENDS.c.finished_at.is_not(None),
            select(EMAIL_OUTBOX.c.id).where(EMAIL_OUTBOX.c.send_id == send_id, EMAIL_OUTBOX.c.state == "held").exists(),
        )
        .values(finished_at=None, owner=owner, heartbeat_at=db_now(conn))
    ).rowcount
    if not taken:
        return None
    conn.execute(
        update(EMAIL_OUTBOX)
        .where(EMAIL_OUTBOX.c.send_id == send_id, EMAIL_OUTBOX.c.state == "held")
        .values(state="pending", error=None, finished_at=None)
    )
    return send_row(conn, send_id)


def beat(conn: Connection, send_id: str, owner: str, now: datetime | None = None) -> None:
    """Refreshes the send's heartbeat with the database's clock, while `owner` still sends it."""
    conn.execute(
        update(EMAIL_SENDS)
        .where(EMAIL_SENDS.c.id == send_id, EMAIL_SENDS.c.owner == owner)
        .values(heartbeat_at=db_now(conn))
    )


# --- what happened ----------------------------------------------------------------------------------------------


def send_report(conn: Connection, send_id: str, since: int = 0) -> dict[str, Any]:
    """The send's messages (from position `since`) with their state, error, Message-ID and activity."""
    send = send_row(conn, send_id)
    rows = (
        conn.execute(
            select(EMAIL_OUTBOX)
            .where(EMAIL_OUTBOX.c.send_id == send_id, EMAIL_OUTBOX.c.position >= since)
            .order_by(EMAIL_OUTBOX.c.position)
        )
        .mappings()
        .all()
    )
    connection = conn.execute(select(EMAIL_CONNECTIONS).where(EMAIL_CONNECTIONS.c.id == send["connection_id"]))
    found = connection.mappings().first()
    return {
        "send_id": send_id,
        "workspace_id": send["workspace_id"],
        "finished": send["finished_at"] is not None,
        "messages": [_message_report(row) for row in rows],
        "daily_usage": usage(conn, found, datetime.now(UTC)) if found else None,
    }


def _message_report(row: Any) -> dict[str, Any]:
    return {
        "contact_id": row["contact_id"],
        "lead_id": row["lead_id"],
        "name": row["to_name"],
        "email": row["to_address"],
        "status": row["state"],
        "message_id": row["message_id"],
        "error": row["error"],
        "activity_id": row["activity_id"],
    }
