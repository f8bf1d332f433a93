"""The dispatcher: claims due deliveries from the outbox, POSTs them signed, and records every attempt.

Each subscription is a line: its deliveries go out one after another in the order their writes committed,
and a delivery waiting for a retry holds back the ones behind it. Claiming is safe with any number of
dispatchers on one database: on PostgreSQL a dispatcher takes a subscription's line under a transaction-level
advisory lock (others skip it) and marks what it took `sending` with a lease; on SQLite the claim is one write
transaction, and SQLite has one writer at a time. A dispatcher that dies mid-send leaves a lease that runs out,
and the delivery is attempted again: delivery is at least once, and receivers deduplicate by Webhook-Id."""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any

import anyio
import httpx2
from sqlalchemy import Connection, and_, bindparam, case, delete, func, insert, literal_column, select, update

from mcp_crm import __version__
from mcp_crm.errors import NotFound
from mcp_crm.ids import id_at, new_id
from mcp_crm.operations.actor import Actor
from mcp_crm.store import Database
from mcp_crm.store.tables import API_KEYS, ATTEMPTS, DELIVERIES, OAUTH_TOKENS, OUTBOX, WEBHOOKS
from mcp_crm.store.tables import CHANGE_EVENTS as EVENTS
from mcp_crm.store.types import UTCDateTime, json_text
from mcp_crm.webhooks.events import PING, body
from mcp_crm.webhooks.outbox import delivery, expand, take_place
from mcp_crm.webhooks.signing import headers as signed_headers
from mcp_crm.webhooks.targets import TargetRefused, pinned_request, resolve

log = logging.getLogger("mcp_crm.webhooks")

# waits after attempts 1-7 (Standard Webhooks' schedule); the 8th failure is final, about 27 hours in
RETRY_AFTER = tuple(timedelta(seconds=s) for s in (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600))
MAX_ATTEMPTS = len(RETRY_AFTER) + 1
JITTER = 0.1  # each wait is stretched or shrunk by up to this fraction, so retries of many events spread out
TIMEOUT = 10.0  # seconds per POST
DISABLE_AFTER = timedelta(days=3)  # a subscription failing this long is turned off
PER_CLAIM = 20  # deliveries one subscription's line gives a dispatcher at a time
SENDING_AT_ONCE = 16  # subscriptions a dispatcher claims and sends to at once
IDLE_POLL = 1.0  # seconds between looks at the outbox when nothing wakes the dispatcher
RESPONSE_KEPT = 500  # characters of a response body kept in the attempt log
RESPONSE_READ = 4096  # bytes of a response read at most: a receiver cannot fill the dispatcher's memory
KEEP_DELIVERIES = timedelta(days=30)  # delivered and failed deliveries are erased after this
PRUNE_BATCH = 1000


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Sending:
    id: str
    attempts: int  # made before this one
    retry_base: int  # attempts made before it was last resent
    body: bytes


@dataclass
class Claimed:
    webhook_id: str
    url: str
    secrets: list[str]
    deliveries: list[Sending]
    lease: datetime  # the deliveries' locked_until: only the holder of the lease records their outcome


@dataclass
class Outcome:
    delivered: bool
    status_code: int | None
    latency_ms: int
    error: str | None
    response: str | None
    started_at: datetime = field(default_factory=utcnow)


def is_open(status: Any) -> Any:
    """`status IN ('pending', 'sending')` written with literals, which lets SQLite use the partial index."""
    return status.in_([literal_column("'pending'"), literal_column("'sending'")])


def _head_due() -> Any:
    """When the first undelivered delivery of each subscription may go (a correlated subquery)."""
    head = DELIVERIES.alias("head")
    return (
        select(case((head.c.status == "pending", head.c.next_attempt_at), else_=head.c.locked_until))
        .where(head.c.webhook_id == WEBHOOKS.c.id, is_open(head.c.status))
        .order_by(head.c.sequence)
        .limit(1)
        .scalar_subquery()
    )


def _lines_due(conn: Connection, now: datetime) -> list[Any]:
    """Active subscriptions with something due: their first delivery, or (with none) their oldest queued write;
    the longest waiting first, as many as a dispatcher sends to at once (so no lease runs down in a queue)."""
    queued_since = select(func.min(OUTBOX.c.created_at)).where(OUTBOX.c.webhook_id == WEBHOOKS.c.id).scalar_subquery()
    due = func.coalesce(_head_due(), queued_since, type_=UTCDateTime)
    return (
        conn.execute(
            select(WEBHOOKS).where(WEBHOOKS.c.active.is_(True), due <= now).order_by(due).limit(SENDING_AT_ONCE)
        )
        .mappings()
        .all()
    )


def claim(conn: Connection, now: datetime, dialect: str) -> list[Claimed]:
    """Takes the due front of each subscription's line (up to PER_CLAIM deliveries), marks it `sending` with a
    lease long enough to send it all, and returns it with each delivery's body."""
    claimed = []
    for line in _lines_due(conn, now):
        if (
            dialect == "postgresql"
            and not conn.execute(
                select(func.pg_try_advisory_xact_lock(func.hashtextextended(line["id"], 0)))
            ).scalar_one()
        ):
            continue  # another dispatcher is claiming this line right now
        expand(conn, line["workspace_id"], line["id"], now)
        front = (
            conn.execute(
                select(DELIVERIES)
                .where(DELIVERIES.c.webhook_id == line["id"], is_open(DELIVERIES.c.status))
                .order_by(DELIVERIES.c.sequence)
                .limit(PER_CLAIM)
            )
            .mappings()
            .all()
        )
        taken = []
        for row in front:
            due = row["next_attempt_at"] if row["status"] == "pending" else row["locked_until"]
            if due is None or due > now:
                break  # the line stops at the first delivery that must wait
            taken.append(row)
        if not taken:
            continue
        lease = now + timedelta(seconds=TIMEOUT * len(taken) + 30)
        conn.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id.in_([row["id"] for row in taken]))
            .values(status="sending", locked_until=lease)
        )
        claimed.append(Claimed(line["id"], line["url"], signing_secrets(line, now), _bodies(conn, taken), lease))
    return claimed


def signing_secrets(webhook: Any, now: datetime) -> list[str]:
    """The secret, and the one it replaced while that still signs (for a day after a rotation)."""
    previous, until = webhook["previous_secret"], webhook["previous_secret_expires_at"]
    return [webhook["secret"]] + ([previous] if previous and until and until > now else [])


def _bodies(conn: Connection, deliveries: list[Any]) -> list[Sending]:
    change_ids = [row["change_id"] for row in deliveries if row["change_id"]]
    changes = (
        {row["id"]: row for row in conn.execute(select(EVENTS).where(EVENTS.c.id.in_(change_ids))).mappings()}
        if change_ids
        else {}
    )
    credentials = {row["credential_id"] for row in changes.values() if row["credential_id"]}
    vias = _credential_kinds(conn, credentials) if credentials else {}
    bodies = []
    for row in deliveries:
        change = changes.get(row["change_id"]) if row["change_id"] else None
        via = (vias.get(change["credential_id"]) or change["via"]) if change else "worker"
        payload = json_text(body(dict(row), dict(change) if change else None, via)).encode()
        bodies.append(Sending(row["id"], row["attempts"], row["retry_base"], payload))
    return bodies


def _credential_kinds(conn: Connection, ids: set[str]) -> dict[str, str]:
    """api_key or oauth, for the credentials that made changes over HTTP."""
    keys = conn.execute(select(API_KEYS.c.id).where(API_KEYS.c.id.in_(ids))).scalars()
    tokens = conn.execute(select(OAUTH_TOKENS.c.id).where(OAUTH_TOKENS.c.id.in_(ids))).scalars()
    return {i: "api_key" for i in keys} | {i: "oauth" for i in tokens}


def retry_delay(attempt: int, rng: random.Random) -> timedelta | None:
    """How long to wait after failed attempt number `attempt` (1-based, counted from the last resend); None when
    it was the last."""
    if attempt >= MAX_ATTEMPTS:
        return None
    return RETRY_AFTER[attempt - 1] * rng.uniform(1 - JITTER, 1 + JITTER)


def record(
    conn: Connection,
    webhook_id: str,
    sent: list[tuple[Sending, Outcome]],
    lease: datetime,
    now: datetime,
    rng: random.Random,
    final: bool = False,
) -> None:
    """Logs a line's attempts and moves each delivery on: delivered, waiting for its retry, or failed for good
    (`final`: no retries, as for a ping). A few statements for the whole line, whatever its length. Deliveries
    deleted meanwhile, or whose lease ran out and passed to another dispatcher, are left alone."""
    ids = [one.id for one, _ in sent]
    held = set(conn.execute(select(DELIVERIES.c.id).where(DELIVERIES.c.id.in_(ids), _holding(lease))).scalars())
    sent = [(one, outcome) for one, outcome in sent if one.id in held]
    if not sent:
        return
    attempts, changes = [], []
    for one, outcome in sent:
        attempt = one.attempts + 1
        attempts.append(
            {
                "id": new_id(),
                "delivery_id": one.id,
                "attempt": attempt,
                "started_at": outcome.started_at,
                "status_code": outcome.status_code,
                "latency_ms": outcome.latency_ms,
                "error": outcome.error,
                "response": outcome.response,
            }
        )
        wait = None if outcome.delivered or final else retry_delay(attempt - one.retry_base, rng)
        status = "succeeded" if outcome.delivered else "failed" if wait is None else "pending"
        changes.append(
            {
                "delivery": one.id,
                "attempts": attempt,
                "status": status,
                "next_attempt_at": wait and now + wait,
                "delivered_at": now if outcome.delivered else None,
                "locked_until": None,
                "last_attempt_at": outcome.started_at,
                "last_status_code": outcome.status_code,
                "last_latency_ms": outcome.latency_ms,
                "last_error": outcome.error,
            }
        )
    conn.execute(insert(ATTEMPTS), attempts)
    conn.execute(update(DELIVERIES).where(DELIVERIES.c.id == bindparam("delivery")), changes)
    if final:
        return
    if sent[-1][1].delivered:
        conn.execute(
            update(WEBHOOKS)
            .where(WEBHOOKS.c.id == webhook_id, WEBHOOKS.c.failing_since.is_not(None))
            .values(failing_since=None)
        )
    else:
        _note_failure(conn, webhook_id, now)


def _note_failure(conn: Connection, webhook_id: str, now: datetime) -> None:
    """Starts the subscription's failing streak, or turns it off when the streak has lasted DISABLE_AFTER."""
    since = conn.execute(select(WEBHOOKS.c.failing_since).where(WEBHOOKS.c.id == webhook_id)).scalar_one_or_none()
    if since is None:
        conn.execute(update(WEBHOOKS).where(WEBHOOKS.c.id == webhook_id).values(failing_since=now))
    elif now - since >= DISABLE_AFTER:
        reason = (
            f"Turned off {now:%Y-%m-%d %H:%M} UTC: every delivery since {since:%Y-%m-%d %H:%M} UTC failed. Fix the "
            "receiver, then webhooks_update(active: true); undelivered events are sent then."
        )
        conn.execute(update(WEBHOOKS).where(WEBHOOKS.c.id == webhook_id).values(active=False, disabled_reason=reason))
        log.warning("webhook %s turned off after failing since %s", webhook_id, since)


def record_line(
    conn: Connection,
    webhook_id: str,
    sent: list[tuple[Sending, Outcome]],
    unsent: list[str],
    lease: datetime,
    now: datetime,
    rng: random.Random,
) -> None:
    """Records a line's attempts in one transaction, and gives back what was claimed but not sent. (A dispatcher
    that dies before this resends the line's batch once the lease ends: at least once, deduplicated by id.)"""
    record(conn, webhook_id, sent, lease, now, rng)
    if unsent:
        conn.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id.in_(unsent), _holding(lease))
            .values(status="pending", locked_until=None)
        )


def _holding(lease: datetime) -> Any:
    return and_(DELIVERIES.c.status == "sending", DELIVERIES.c.locked_until == lease)


@cache
def _tls() -> ssl.SSLContext:
    """The certificate store, loaded once (loading it takes about 20 ms)."""
    return httpx2.create_ssl_context()


def _client(timeout: float) -> httpx2.AsyncClient:
    """A client for one subscription's batch: its connections are pooled by address, whatever host name TLS
    was checked for, so it is never shared between subscriptions. No redirects, no proxy settings from the
    environment."""
    return httpx2.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False, verify=_tls())


def prune_deliveries(conn: Connection, now: datetime) -> int:
    """Erases up to PRUNE_BATCH finished deliveries older than KEEP_DELIVERIES (with their attempts); the number
    erased. Ids are time-ordered, so the age test is a range of the primary key."""
    before = id_at(now - KEEP_DELIVERIES)
    old = (
        select(DELIVERIES.c.id)
        .where(DELIVERIES.c.id < before, DELIVERIES.c.status.in_(("succeeded", "failed")))
        .limit(PRUNE_BATCH)
    )
    return conn.execute(delete(DELIVERIES).where(DELIVERIES.c.id.in_(old.scalar_subquery()))).rowcount


async def post(
    client: httpx2.AsyncClient,
    url: str,
    secrets: list[str],
    delivery_id: str,
    payload: bytes,
    allow_local: bool,
    timeout: float = TIMEOUT,
) -> Outcome:
    """One signed POST to the address the URL's host resolved to, once it is checked; redirects are not followed."""
    started, clock = utcnow(), time.perf_counter()

    def outcome(status: int | None, error: str | None, response: str | None = None) -> Outcome:
        delivered = status is not None and 200 <= status < 300
        latency = round((time.perf_counter() - clock) * 1000)
        return Outcome(delivered, status, latency, error, response, started)

    try:
        with anyio.fail_after(timeout):  # the whole attempt, name lookup and a slowly trickled answer included
            target = await resolve(url, allow_local)
            address, host_headers, extensions = pinned_request(target)
            headers = host_headers | signed_headers(secrets, delivery_id, int(started.timestamp()), payload)
            headers["User-Agent"] = f"mcp-crm/{__version__} (webhooks)"
            request = client.build_request("POST", address, content=payload, headers=headers, extensions=extensions)
            response = await client.send(request, stream=True)
            try:
                head = b""
                async for chunk in response.aiter_bytes():
                    head += chunk
                    if len(head) >= RESPONSE_READ:
                        break
            finally:
                await response.aclose()
    except TargetRefused as exc:
        return outcome(None, str(exc))
    except TimeoutError:
        return outcome(None, f"no answer within {timeout:g} s")
    except httpx2.HTTPError as exc:
        return outcome(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    text = head.decode(response.encoding or "utf-8", errors="replace")[:RESPONSE_KEPT] or None
    error = None
    if response.is_redirect:
        error = f"redirected to {response.headers.get('location', '?')}; redirects are not followed"
    elif not response.is_success:
        error = f"answered {response.status_code}"
    return outcome(response.status_code, error, text)


class Dispatcher:
    """Delivers the outbox of one database. `clock` and `rng` are for tests that step time."""

    def __init__(
        self,
        db: Database,
        *,
        allow_local: bool = False,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.db = db
        self.allow_local = allow_local
        self.clock = clock
        self.rng = rng or random.Random()
        self.timeout = timeout
        self._wake = anyio.Event()

    def nudge(self) -> None:
        """Something was written: look at the outbox now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claims what is due and sends it; the number of attempts made."""
        now = self.clock()
        dialect = self.db.dialect
        claimed = await self.db.write(lambda conn: claim(conn, now, dialect))
        attempts = [0]

        async def send_line(line: Claimed) -> None:
            sent: list[tuple[Sending, Outcome]] = []
            try:
                async with _client(self.timeout) as client:
                    for one in line.deliveries:
                        outcome = await post(
                            client, line.url, line.secrets, one.id, one.body, self.allow_local, self.timeout
                        )
                        sent.append((one, outcome))
                        if not outcome.delivered:
                            break  # the rest of the line waits for this one's retry
                attempts[0] += len(sent)
                unsent = [one.id for one in line.deliveries[len(sent) :]]
                work = partial(
                    record_line,
                    webhook_id=line.webhook_id,
                    sent=sent,
                    unsent=unsent,
                    lease=line.lease,
                    now=self.clock(),
                    rng=self.rng,
                )
                await self.db.write(work)
            except Exception:  # this line's deliveries go again when their lease ends; the other lines go on
                log.exception("delivering to webhook %s failed", line.webhook_id)

        async with anyio.create_task_group() as group:
            for line in claimed:
                group.start_soon(send_line, line)
        return attempts[0]

    async def run(self) -> None:
        """Delivers until cancelled: whenever woken by a write, and at least every IDLE_POLL seconds."""
        while True:
            try:
                while await self.run_once():
                    pass
            except Exception:
                log.exception("delivering webhooks failed; trying again shortly")
            with anyio.move_on_after(IDLE_POLL):
                await self._wake.wait()
            self._wake = anyio.Event()


async def ping(
    db: Database, actor: Actor, webhook_id: str, allow_local: bool, timeout: float = TIMEOUT
) -> dict[str, Any]:
    """Sends a `ping` event to a subscription now, once, and reports what came back (kept in its delivery log)."""
    now = utcnow()

    def start(conn: Connection) -> tuple[Any, dict[str, Any]]:
        webhook = (
            conn.execute(
                select(WEBHOOKS).where(WEBHOOKS.c.workspace_id == actor.workspace_id, WEBHOOKS.c.id == webhook_id)
            )
            .mappings()
            .first()
        )
        if webhook is None:
            raise NotFound(f"No webhook {webhook_id} in this workspace; webhooks_list shows the workspace's webhooks.")
        row = delivery(actor.workspace_id, webhook_id, PING, take_place(conn, webhook_id), now)
        row["payload"] = {
            "id": row["id"],
            "event": PING,
            "occurred_at": now,
            "workspace_id": actor.workspace_id,
            "actor": {"user_id": actor.user_id, "via": actor.via, "tool": actor.tool},
            "data": {
                "webhook_id": webhook_id,
                "message": "A test event from mcp-crm: this endpoint receives its webhooks.",
            },
        }
        conn.execute(insert(DELIVERIES).values(row | {"status": "sending", "locked_until": lease}))
        return webhook, row

    lease = now + timedelta(seconds=timeout + 30)
    webhook, row = await db.write(start)
    async with _client(timeout) as client:
        payload = json_text(row["payload"]).encode()
        secrets = signing_secrets(webhook, now)
        outcome = await post(client, webhook["url"], secrets, row["id"], payload, allow_local, timeout)
    sent = [(Sending(row["id"], 0, 0, payload), outcome)]
    work = partial(record, webhook_id=webhook_id, sent=sent, lease=lease, now=utcnow(), rng=random.Random(), final=True)
    await db.write(work)
    return {
        "delivery_id": row["id"],
        "delivered": outcome.delivered,
        "status_code": outcome.status_code,
        "latency_ms": outcome.latency_ms,
        "error": outcome.error,
        "response": outcome.response,
    }
