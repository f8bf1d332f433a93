"""The email verbs of the operations layer (`Crm.email`): connections, sends and their resumption.

No message is sent inside a database transaction: a send is queued in one transaction, then each message is
claimed (commit), handed to the SMTP server, and settled with its activity (commit); see operations/email_sends.py.
While it runs, the sending process refreshes the send's heartbeat; a send whose process died (its heartbeat older
than STALE_AFTER, or its process gone from this machine) is taken over by `resume`."""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
from sqlalchemy import Connection

from mcp_crm.errors import CrmError
from mcp_crm.ids import new_id
from mcp_crm.mail.render import BodyFormat, Rendered, address, build_message
from mcp_crm.mail.smtp import Delivery, Mailer, check_login
from mcp_crm.operations import email_connections as connections
from mcp_crm.operations import email_sends as sends
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.preview import CONFIRM_ABOVE

if TYPE_CHECKING:
    from mcp_crm.operations import Crm

T = TypeVar("T")
log = logging.getLogger("mcp_crm")
HEARTBEAT_EVERY = 15  # seconds
STALE_AFTER = 60  # seconds without a heartbeat before another process takes a send over
SHOWN = 100  # rendered messages a dry run shows
OWNER = f"{socket.gethostname()}:{os.getpid()}"
RUNNING: set[str] = set()  # the sends this process is delivering now


def _now() -> datetime:
    return datetime.now(UTC)


def _alive(owner: str | None) -> bool | None:
    """Whether the process named `owner` (host:pid) runs, when it ran on this machine; None when unknown."""
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _abandoned(send: dict[str, Any], now: datetime) -> bool:
    if send["owner"] == OWNER:  # this process: abandoned when its call was cancelled (a client's timeout)
        return send["id"] not in RUNNING
    alive = _alive(send["owner"])
    if alive is not None:
        return not alive
    return send["heartbeat_at"] < now - timedelta(seconds=STALE_AFTER)


class EmailService:
    """Outbound email for one Crm: its transactions are the Crm's."""

    def __init__(self, crm: Crm) -> None:
        self.crm = crm

    async def _read(self, work: Callable[[Connection], T]) -> T:
        return await self.crm.db.read(work)

    async def _commit(self, actor: Actor, work: Callable[[Connection], T]) -> T:
        return await self.crm._write(actor, work, None)

    # --- connections ------------------------------------------------------------------------------------------

    async def connections_create(self, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
        return await self._commit(actor, lambda c: connections.create_connection(c, actor, values))

    async def connections_list(self, actor: Actor) -> list[dict[str, Any]]:
        return await self._read(lambda c: connections.list_connections(c, actor))

    async def connections_get(self, actor: Actor, connection_id: str) -> dict[str, Any]:
        return await self._read(lambda c: connections.get_connection(c, actor, connection_id))

    async def connections_update(self, actor: Actor, connection_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return await self._commit(actor, lambda c: connections.update_connection(c, actor, connection_id, changes))

    async def connections_delete(self, actor: Actor, connection_id: str) -> dict[str, Any]:
        return await self._commit(actor, lambda c: connections.delete_connection(c, actor, connection_id))

    async def connections_test(self, actor: Actor, connection_id: str) -> dict[str, Any]:
        """Connects and logs in as a send would, sends nothing: {ok, error, latency_ms}."""
        settings = await self._read(lambda c: connections.smtp_settings(c, actor, connection_id))
        return await anyio.to_thread.run_sync(check_login, settings)

    # --- sending ----------------------------------------------------------------------------------------------

    async def send(
        self,
        actor: Actor,
        connection_id: str | None,
        to: dict[str, str],
        subject: str,
        body: str,
        body_format: BodyFormat,
        dry_run: bool,
        request: str,
        confirm: str | None,
    ) -> dict[str, Any]:
        """A dry run's rendered messages, or the report of a real send. `request` identifies the call for its
        confirm token (needed to write to a list of more than CONFIRM_ABOVE people)."""
        if dry_run:
            plan = await self._read(lambda c: sends.plan_send(c, actor, connection_id, to, subject, body, body_format))
            token = await self.crm.confirm_token(actor, request) if _needs_token(to, plan.members) else None
            return _dry_report(plan, token)
        confirmed = bool(to.get("list_id")) and await self.crm.confirmed(actor, request, confirm)
        # a password this key cannot decrypt is reported now, before anything is queued
        await self._read(lambda c: connections.settings_of(connections.chosen_connection(c, actor, connection_id)))

        def allowed(members: int) -> None:
            if _needs_token(to, members) and not confirmed:
                raise CrmError(
                    f"Not sent: the list has {members} members, more than {CONFIRM_ABOVE}. Call email_send with "
                    "the same arguments and dry_run: true, check the messages, then call it again with the "
                    "confirm token the dry run returns (valid 10 minutes). Nothing was sent."
                )

        send_id = new_id()
        RUNNING.add(send_id)  # from its first commit, so this process's worker leaves it alone
        try:
            queued, plan = await self._commit(
                actor,
                lambda c: sends.queue_send(
                    c, actor, connection_id, to, subject, body, body_format, allowed, send_id, OWNER
                ),
            )
            if queued is None:
                return _report(plan.members, plan.skipped, None, plan.usage)
            await self._run(send_id, actor)
        finally:
            RUNNING.discard(send_id)
        report = await self._read(lambda c: sends.send_report(c, send_id))
        return _report(plan.members, plan.skipped, report, report["daily_usage"])

    async def _run(self, send_id: str, actor: Actor) -> None:
        """Delivers the send's pending messages, one at a time, while keeping its heartbeat."""
        try:
            settings = await self._read(lambda c: connections.settings_of(_connection_of(c, send_id)))
        except CrmError as exc:  # the password cannot be decrypted with this key
            why = str(exc)
            await self._commit(actor, lambda c: sends.hold_rest(c, send_id, why, _now()))
            return
        mailer = Mailer(settings)
        RUNNING.add(send_id)  # a resumed send; a new one is in already
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._keep_heartbeat, send_id, actor)
                await self._deliver_all(send_id, actor, mailer)
                group.cancel_scope.cancel()
        finally:
            RUNNING.discard(send_id)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(mailer.close)

    async def _keep_heartbeat(self, send_id: str, actor: Actor) -> None:
        while True:
            await anyio.sleep(HEARTBEAT_EVERY)
            await self._commit(actor, lambda c: sends.beat(c, send_id, OWNER, _now()))

    async def _deliver_all(self, send_id: str, actor: Actor, mailer: Mailer) -> None:
        while True:
            # a cancelled call (a client's timeout, a shutdown) stops here, between messages; the worker carries on
            await anyio.lowlevel.checkpoint()
            with anyio.CancelScope(shield=True):  # a claimed message is delivered and settled, whatever happens
                claimed = await self._commit(actor, lambda c: sends.claim_next(c, send_id, OWNER, _now()))
                if claimed is None:
                    return
                delivery = await anyio.to_thread.run_sync(_deliver, mailer, claimed)
                await self._commit(
                    actor,
                    lambda c, row=claimed.row, done=delivery: sends.finish(
                        c, row, done.outcome, done.error, actor.via, _now()
                    ),
                )
                if delivery.connection_failed:
                    why = f"the connection failed ({delivery.error})"
                    await self._commit(actor, lambda c, why=why: sends.hold_rest(c, send_id, why, _now()))
                    return

    # --- resuming ---------------------------------------------------------------------------------------------

    async def resume(self, via: str, send_id: str | None = None) -> list[dict[str, Any]]:
        """Carries on with sends whose process stopped: messages left in sending become unknown, never sent
        twice; pending ones are sent. With `send_id`, that send, its held messages (daily limit, failed connection)
        put back in line first. One report per send carried on with."""
        now = _now()
        if send_id is not None:
            released = await self.crm.db.write(lambda c: sends.release_held(c, send_id, OWNER, now))
            if released is not None:
                return [await self._carry_on(released, via, [])]
        candidates = await self._read(lambda c: sends.open_sends(c, send_id))
        if send_id is not None and not candidates:
            raise CrmError(f"Send {send_id} has nothing left to send, or there is no such send.")
        reports = []
        for send in candidates:
            if not _abandoned(send, now):
                if send_id is not None:
                    raise CrmError(
                        f"Send {send_id} is being sent right now by {send['owner']}; nothing was changed. If that "
                        f"process is gone, try again {STALE_AFTER} seconds after it stopped."
                    )
                continue
            unknown = await self._commit(_actor(send, via), lambda c, s=send: sends.take_over(c, s, OWNER, via, _now()))
            if unknown is not None:  # else another process took it over first
                reports.append(await self._carry_on(send, via, unknown))
        return reports

    async def _carry_on(self, send: dict[str, Any], via: str, unknown: list[dict[str, Any]]) -> dict[str, Any]:
        await self._run(send["id"], _actor(send, via))
        report = await self._read(lambda c: sends.send_report(c, send["id"]))
        return report | {"resumed_unknown": len(unknown)}


def _actor(send: dict[str, Any], via: str) -> Actor:
    """Who a resumed send acts as: the user who sent it."""
    return Actor(workspace_id=send["workspace_id"], user_id=send["created_by"], via=via, tool="email_send")


def _needs_token(to: dict[str, str], members: int) -> bool:
    return bool(to.get("list_id")) and members > CONFIRM_ABOVE


def _connection_of(conn: Connection, send_id: str) -> Any:
    send = sends.send_row(conn, send_id)
    actor = Actor(workspace_id=send["workspace_id"], user_id=None, via="worker")
    return connections.connection_row(conn, actor, send["connection_id"])


def _deliver(mailer: Mailer, claimed: sends.Claimed) -> Delivery:
    """Builds the message from its outbox row and hands it to the server (on a worker thread)."""
    row, connection = claimed.row, claimed.connection
    try:
        message = build_message(
            sender=address(connection["from_address"], connection["from_name"]),
            recipient=address(row["to_address"], row["to_name"]),
            rendered=Rendered(subject=row["subject"], text=row["text"], html=row["html"]),
            message_id=row["message_id"],
            date=row["attempted_at"],
        )
    except (ValueError, TypeError) as exc:  # an address the email package refuses: nothing was sent
        return Delivery("failed", f"the message could not be written: {exc}")
    delivery = mailer.deliver(message, connection["from_address"], row["to_address"])
    if delivery.outcome != "sent":
        log.warning("email %s to %s: %s (%s)", row["message_id"], row["to_address"], delivery.outcome, delivery.error)
    return delivery


def _dry_report(plan: sends.Plan, token: str | None) -> dict[str, Any]:
    messages = [
        message.person.summary() | {"subject": message.rendered.subject, "text": message.rendered.text}
        for message in plan.messages[:SHOWN]
    ]
    would, remaining = len(plan.messages), plan.usage["remaining_today"]
    summary = f"Would send {would} message(s) through {plan.connection['from_address']} and skip {len(plan.skipped)}."
    if would > remaining:
        summary += (
            f" Only {remaining} more may go today (daily limit {plan.usage['limit']}): the other {would - remaining} "
            f"would be held until the limit resets at {plan.usage['resets_at']:%Y-%m-%d %H:%M} UTC."
        )
    if token:
        summary += " To send, call email_send again with the same arguments and this confirm token."
    return {
        "dry_run": True,
        "send_id": None,
        "members": plan.members,
        "counts": {"would_send": would, "skipped": len(plan.skipped)},
        "messages": messages,
        "more_messages": max(0, would - SHOWN),
        "skipped": plan.skipped,
        "daily_usage": plan.usage,
        "confirm": token,
        "summary": summary,
    }


def _report(
    members: int, skipped: list[dict[str, Any]], report: dict[str, Any] | None, usage: dict[str, Any]
) -> dict[str, Any]:
    """What a real send did: each message's status, who was skipped and why, and a sentence saying it."""
    messages = [m for m in (report or {}).get("messages", []) if m["status"] != "skipped"]
    skipped = skipped + [
        {k: m[k] for k in ("contact_id", "lead_id", "name", "email")} | {"reason": m["error"]}
        for m in (report or {}).get("messages", [])
        if m["status"] == "skipped"
    ]
    counts = Counter(m["status"] for m in messages)
    return {
        "dry_run": False,
        "send_id": report["send_id"] if report else None,
        "members": members,
        "counts": {state: counts.get(state, 0) for state in ("sent", "failed", "unknown", "held")}
        | {"skipped": len(skipped)},
        "messages": messages,
        "more_messages": 0,
        "skipped": skipped,
        "daily_usage": usage,
        "confirm": None,
        "summary": summary_of(counts, len(skipped), messages, usage),
    }


def summary_of(counts: Counter[str], skipped: int, messages: list[dict[str, Any]], usage: dict[str, Any]) -> str:
    parts = [f"Sent {counts.get('sent', 0)} of {len(messages) + skipped}"]
    if counts.get("failed"):
        parts.append(f"{counts['failed']} failed (see each message's error)")
    if counts.get("unknown"):
        parts.append(f"{counts['unknown']} unknown (the connection broke while sending; not sent again)")
    if skipped:
        parts.append(f"{skipped} skipped (see skipped)")
    text = "; ".join(parts) + "."
    held = [m for m in messages if m["status"] == "held"]
    if held:
        why = (held[0]["error"] or "").removeprefix("not tried: ")
        text += f" {len(held)} were held and not sent: {why}."
        if "daily limit" in why:
            text += f" The limit resets at {usage['resets_at']:%Y-%m-%d %H:%M} UTC."
        text += (
            " An admin sends them later with `mcp-crm email resume --send <send_id>`, or email_send them one by one "
            "(each held message names its contact or lead)."
        )
    return text


async def resume_sends(crm: Crm, every: float = STALE_AFTER) -> None:
    """The worker's part: every `every` seconds, carries on with sends whose process stopped."""
    while True:
        try:
            for report in await crm.email.resume("worker"):
                log.warning("resumed email send %s after its process stopped: %s", report["send_id"], _states(report))
        except Exception:
            log.exception("resuming email sends failed; trying again in a minute")
        await anyio.sleep(every)


def _states(report: dict[str, Any]) -> str:
    counts = Counter(m["status"] for m in report["messages"])
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
