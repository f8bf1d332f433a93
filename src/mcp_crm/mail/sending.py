"""The email verbs of the operations layer (`Crm.email`): connections, sends and their resumption.

No message is sent inside a database transaction: a send is queued in one transaction, then each message is
claimed (commit), handed to the SMTP server, and settled with its activity (commit); see operations/email_sends.py.
While it runs, the sending process refreshes the send's heartbeat; a send whose process died (its heartbeat older
than STALE_AFTER, or its process gone from this machine) is taken over by `resume`.

Over HTTP (hosted mode) an SMTP host must resolve to public addresses only, unless the server runs with
--allow-local-smtp: checked when a connection is created, changed or tested, and again before a send, which then
connects to the checked addresses (mail/smtp.py). Local use (stdio, the CLI) may use a relay on this machine."""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from mcp_crm.errors import CrmError
from mcp_crm.ids import new_id
from mcp_crm.mail import unsubscribe
from mcp_crm.mail.render import BodyFormat, Rendered, address, build_message
from mcp_crm.mail.smtp import Delivery, Mailer, SmtpSettings, check_login
from mcp_crm.operations import email_connections as connections
from mcp_crm.operations import email_sends as sends
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.preview import CONFIRM_ABOVE
from mcp_crm.webhooks.targets import TargetRefused, checked_addresses

if TYPE_CHECKING:
    from mcp_crm.operations import Crm

T = TypeVar("T")
log = logging.getLogger("mcp_crm")
HEARTBEAT_EVERY = 15  # seconds
STALE_AFTER = 60  # seconds without a heartbeat before another process takes a send over
SHOWN = 100  # rendered messages a dry run shows
RUNNING: set[str] = set()  # the sends this process is delivering now
PUBLIC_ONLY = (
    "over HTTP, email connections go only to mail servers at public addresses (start the server with "
    "--allow-local-smtp to allow loopback and private ones, for tests or a relay on the server's own network)."
)


def _now() -> datetime:
    return datetime.now(UTC)


def owner() -> str:
    """This process as a send's owner, host:pid; asked each time, so that a forked process names itself."""
    return f"{socket.gethostname()}:{os.getpid()}"


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
    """Whether the send's process stopped: its heartbeat is older than STALE_AFTER (by the database's clock,
    `now`), or, sooner, its process on this machine is gone (or, for this process, its call was cancelled)."""
    if send["heartbeat_at"] < now - timedelta(seconds=STALE_AFTER):
        return True
    if send["owner"] == owner():  # this process: abandoned when its call was cancelled (a client's timeout)
        return send["id"] not in RUNNING
    return _alive(send["owner"]) is False


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
        host = values.get("host") or ""
        await self._public(actor.via, host, values.get("port") or connections.DEFAULTS["port"], "Nothing was saved.")
        return await self._commit(actor, lambda c: connections.create_connection(c, actor, values))

    async def connections_list(self, actor: Actor) -> list[dict[str, Any]]:
        return await self._read(lambda c: connections.list_connections(c, actor))

    async def connections_get(self, actor: Actor, connection_id: str) -> dict[str, Any]:
        return await self._read(lambda c: connections.get_connection(c, actor, connection_id))

    async def connections_update(self, actor: Actor, connection_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        if self._guarded(actor.via) and any(changes.get(name) is not None for name in ("host", "port")):
            before = await self._read(lambda c: connections.connection_row(c, actor, connection_id))
            host, port = changes.get("host") or before["host"], changes.get("port") or before["port"]
            await self._public(actor.via, host, port, "Nothing was changed.")
        return await self._commit(actor, lambda c: connections.update_connection(c, actor, connection_id, changes))

    async def connections_delete(self, actor: Actor, connection_id: str) -> dict[str, Any]:
        return await self._commit(actor, lambda c: connections.delete_connection(c, actor, connection_id))

    async def connections_test(self, actor: Actor, connection_id: str) -> dict[str, Any]:
        """Connects and logs in as a send would, sends nothing: {ok, error, latency_ms}."""
        settings = await self._read(lambda c: connections.smtp_settings(c, actor, connection_id))
        settings = await self._pinned(settings, actor.via, "Nothing was tried.")
        return await anyio.to_thread.run_sync(check_login, settings)

    def _guarded(self, via: str) -> bool:
        """Whether an SMTP host must be public: over HTTP, unless the server allows local SMTP hosts."""
        return via == "http" and not self.crm.allow_local_smtp

    async def _public(self, via: str, host: str, port: int, outcome: str) -> tuple[str, ...]:
        """() when `via` may use any host; else the addresses `host` resolves to, all public, or a CrmError that
        says why not and ends with `outcome`. A host that is not one (connections._checked names it) passes."""
        if not self._guarded(via) or not connections.HOST.match(host):
            return ()
        try:
            return await checked_addresses(host, port, False, f"The SMTP host {host}", PUBLIC_ONLY)
        except TargetRefused as exc:
            raise CrmError(f"{exc} {outcome}") from None

    async def _pinned(self, settings: SmtpSettings, via: str, outcome: str) -> SmtpSettings:
        """The settings, with the checked addresses to connect to when `via` must use a public host."""
        return replace(settings, addresses=await self._public(via, settings.host, settings.port, outcome))

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
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """A dry run's rendered messages, or the report of a real send. `request` identifies the call for its
        confirm token (needed to write to a list of more than CONFIRM_ABOVE people)."""
        if dry_run:

            def dry(c: Connection) -> sends.Plan:
                sends.email_type_check(c, actor)  # as the real send does
                return sends.plan_send(c, actor, connection_id, to, subject, body, body_format)

            plan = await self._read(dry)
            token = await self.crm.confirm_token(actor, request) if _needs_token(to, plan.members) else None
            return _dry_report(plan, token)
        if idempotency_key is not None:
            earlier = await self._read(lambda c: sends.send_by_key(c, actor, idempotency_key, to, subject, body))
            if earlier is not None:  # a retry: that send's report, nothing sent again
                return await self._repeat(earlier)
        confirmed = bool(to.get("list_id")) and await self.crm.confirmed(actor, request, confirm)
        # a password this key cannot decrypt, or a host this actor may not use, is reported now, before anything
        # is queued
        chosen = await self._read(
            lambda c: connections.settings_of(connections.chosen_connection(c, actor, connection_id))
        )
        await self._public(actor.via, chosen.host, chosen.port, "Nothing was sent.")

        def allowed(members: int) -> None:
            if _needs_token(to, members) and not confirmed:
                given = (
                    " The confirm token given has expired (tokens last 10 minutes) or was made for other arguments."
                    if confirm
                    else ""
                )
                raise CrmError(
                    f"Not sent: the list has {members} members, more than {CONFIRM_ABOVE}.{given} Call email_send "
                    "with the same arguments and dry_run: true, check the messages, then call it again with the "
                    "confirm token the dry run returns (valid 10 minutes). Nothing was sent."
                )

        send_id = new_id()
        RUNNING.add(send_id)  # from its first commit, so this process's worker leaves it alone
        stopped: str | None = None
        try:
            try:
                queued, plan = await self._commit(
                    actor,
                    lambda c: sends.queue_send(
                        c,
                        actor,
                        connection_id,
                        to,
                        subject,
                        body,
                        body_format,
                        allowed,
                        send_id,
                        owner(),
                        idempotency_key,
                    ),
                )
            except IntegrityError:  # the same key, queued by a concurrent retry
                earlier = await self._read(
                    lambda c: sends.send_by_key(c, actor, idempotency_key or "", to, subject, body)
                )
                if idempotency_key is None or earlier is None:
                    raise
                return await self._repeat(earlier)
            if queued is None:
                return _report(plan.members, plan.skipped, None, plan.usage)
            try:
                await self._run(send_id, actor)
            except Exception as exc:  # the outbox is committed: what was sent stays sent, the worker does the rest
                log.exception("email send %s stopped", send_id)
                stopped = _reason(exc)
        finally:
            RUNNING.discard(send_id)
        try:
            report = await self._read(lambda c: sends.send_report(c, send_id))
        except Exception as exc:
            log.exception("email send %s: its report could not be read", send_id)
            stopped = stopped or _reason(exc)
            report = {"send_id": send_id, "messages": [], "daily_usage": plan.usage}
        result = _report(plan.members, plan.skipped, report, report["daily_usage"] or plan.usage)
        if stopped is not None:
            result["summary"] += (
                f" The send stopped partway ({stopped}): what went out stays recorded, and the worker carries on "
                f"with the rest of send {send_id} (or an admin with `mcp-crm email resume --send {send_id}`). Do not "
                "send it again."
            )
        return result

    async def _repeat(self, send_id: str) -> dict[str, Any]:
        """The report of a send made earlier with the same idempotency key."""
        report = await self._read(lambda c: sends.send_report(c, send_id))
        result = _report(len(report["messages"]), [], report, report["daily_usage"])
        result["summary"] = (
            f"Already sent with this idempotency_key (send {send_id}); nothing was sent again. " + (result["summary"])
        )
        return result

    async def _run(self, send_id: str, actor: Actor) -> None:
        """Delivers the send's pending messages, one at a time, while keeping its heartbeat."""
        try:
            settings, via = await self._read(lambda c: _sender_of(c, send_id))
            # the host checked again, by the way the send came (over HTTP: public addresses only), and pinned
            settings = await self._pinned(settings, via, "The messages not sent yet are held.")
        except CrmError as exc:  # the password cannot be decrypted with this key, or the host is not public
            why = str(exc)
            await self._commit(actor, lambda c: sends.hold_rest(c, send_id, why, _now()))
            return
        mailer = Mailer(settings)
        base = unsubscribe.base_url(self.crm.public_url)
        secret = await self.crm._secret(actor) if base else ""

        def link(contact_id: str | None) -> str | None:
            return unsubscribe.link(base, secret, actor.workspace_id, contact_id)

        RUNNING.add(send_id)  # a resumed send; a new one is in already
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._keep_heartbeat, send_id, actor)
                await self._deliver_all(send_id, actor, mailer, link)
                group.cancel_scope.cancel()
        finally:
            RUNNING.discard(send_id)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(mailer.close)

    async def _keep_heartbeat(self, send_id: str, actor: Actor) -> None:
        while True:
            await anyio.sleep(HEARTBEAT_EVERY)
            await self._commit(actor, lambda c: sends.beat(c, send_id, owner()))

    async def _deliver_all(
        self, send_id: str, actor: Actor, mailer: Mailer, link: Callable[[str | None], str | None]
    ) -> None:
        """`link(contact_id)`: the contact's one-click unsubscribe link, or None."""
        while True:
            # a cancelled call (a client's timeout, a shutdown) stops here, between messages; the worker carries on
            await anyio.lowlevel.checkpoint()
            with anyio.CancelScope(shield=True):  # a claimed message is delivered and settled, whatever happens
                claimed = await self._commit(actor, lambda c: sends.claim_next(c, send_id, owner(), _now()))
                if claimed is None:
                    return
                one_click = link(claimed.row["contact_id"])
                delivery = await anyio.to_thread.run_sync(_deliver, mailer, claimed, one_click)
                if delivery.connection_failed:  # nothing was sent: this message is held with the rest
                    why = f"the connection failed ({delivery.error})"

                    def hold(c: Connection, row_id: str = claimed.row["id"], why: str = why) -> None:
                        sends.hold_claimed(c, row_id, why, _now())
                        sends.hold_rest(c, send_id, why, _now())

                    await self._commit(actor, hold)
                    return
                await self._commit(
                    actor,
                    lambda c, row=claimed.row, done=delivery: sends.finish(
                        c, row, done.outcome, done.error, actor.via, _now()
                    ),
                )

    # --- resuming ---------------------------------------------------------------------------------------------

    async def resume(self, via: str, send_id: str | None = None) -> list[dict[str, Any]]:
        """Carries on with sends whose process stopped: messages left in sending become unknown, never sent
        twice; pending ones are sent. With `send_id`, that send, its held messages (daily limit, failed connection)
        put back in line first. One report per send carried on with."""
        now = await self._read(sends.db_now)
        if send_id is not None:
            released = await self.crm.db.write(lambda c: sends.release_held(c, send_id, owner(), now))
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
            unknown = await self._commit(
                _actor(send, via), lambda c, s=send: sends.take_over(c, s, owner(), via, _now())
            )
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


def _reason(exc: BaseException) -> str:
    """A short, safe reason for an error that stopped a send after it was queued."""
    if isinstance(exc, CrmError):
        return str(exc)
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_reason(inner) for inner in exc.exceptions)
    return f"{exc.__class__.__name__}, logged on the server"


def _needs_token(to: dict[str, str], members: int) -> bool:
    return bool(to.get("list_id")) and members > CONFIRM_ABOVE


def _sender_of(conn: Connection, send_id: str) -> tuple[SmtpSettings, str]:
    """The settings of the send's connection (password decrypted), and how the send came (its `via`)."""
    send = sends.send_row(conn, send_id)
    actor = Actor(workspace_id=send["workspace_id"], user_id=None, via="worker")
    return connections.settings_of(connections.connection_row(conn, actor, send["connection_id"])), send["via"]


def _deliver(mailer: Mailer, claimed: sends.Claimed, one_click: str | None = None) -> Delivery:
    """Builds the message from its outbox row, with its List-Unsubscribe headers (the one-click link when there is
    one), and hands it to the server (on a worker thread)."""
    row, connection = claimed.row, claimed.connection
    try:
        message = build_message(
            sender=address(connection["from_address"], connection["from_name"]),
            recipient=address(row["to_address"], row["to_name"]),
            rendered=Rendered(subject=row["subject"], text=row["text"], html=row["html"]),
            message_id=row["message_id"],
            date=row["attempted_at"],
            extra_headers=unsubscribe.headers(connection["from_address"], one_click),
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
        | {"skipped": len(skipped)}
        | ({"not_yet": not_yet} if (not_yet := counts.get("pending", 0) + counts.get("sending", 0)) else {}),
        "messages": _shown(messages),
        "more_messages": max(0, len(messages) - SHOWN),
        "skipped": skipped,
        "daily_usage": usage,
        "confirm": None,
        "summary": summary_of(counts, len(skipped), messages, usage),
    }


def _shown(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most SHOWN messages: those that did not go first (failed, unknown, held), then the sent ones, in order."""
    if len(messages) <= SHOWN:
        return messages
    first = [m for m in messages if m["status"] != "sent"][:SHOWN]
    return first + [m for m in messages if m["status"] == "sent"][: SHOWN - len(first)]


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
            " An admin sends them later with `mcp-crm email resume --send <send_id>`; do not email_send them again "
            "yourself, or the resume would write to them a second time."
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
