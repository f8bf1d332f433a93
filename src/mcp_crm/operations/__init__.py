"""The one place reads and writes happen. Every call is one transaction; every write records its
change events in that same transaction. This layer knows nothing about MCP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from mcp_crm.entities import Entity
from mcp_crm.entities.custom import all_definitions, definitions
from mcp_crm.errors import Conflict, CrmError
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.associations import Mode, associate
from mcp_crm.operations.audit import list_changes
from mcp_crm.operations.config import describe_entity
from mcp_crm.operations.dashboard import crm_summary, resolve_period
from mcp_crm.operations.idempotency import Idempotency, remember, replay
from mcp_crm.operations.lists import MemberRequest, change_members, list_members
from mcp_crm.operations.merge import Prefer, find_duplicates, merge_records
from mcp_crm.operations.pipeline import convert_lead, reorder_lead_stages, reorder_stages
from mcp_crm.operations.preview import Journal, confirm_token, confirmed, journaling, rehearsing
from mcp_crm.operations.reads import ListPage, ListQuery, get_record, list_records
from mcp_crm.operations.search import fetch_record, search_records
from mcp_crm.operations.timeline import record_timeline
from mcp_crm.operations.trash import list_trash, purge, purge_expired, restore_records, trash_records
from mcp_crm.operations.webhooks import (
    create_webhook,
    delete_webhook,
    get_webhook,
    list_deliveries,
    list_webhooks,
    resend_deliveries,
    rotate_secret,
    update_webhook,
)
from mcp_crm.operations.workspace import workspace_secret
from mcp_crm.operations.writes import create_records, update_records
from mcp_crm.query import FilterNode
from mcp_crm.store import Database

if TYPE_CHECKING:
    from mcp_crm.mail.sending import EmailService
    from mcp_crm.transfer.plan import Plan, Planned, Report, Row
from mcp_crm.webhooks.dispatcher import ping
from mcp_crm.webhooks.outbox import queued_here
from mcp_crm.webhooks.targets import TargetRefused, check_url, resolve

T = TypeVar("T")
RETRIES = 3
RETRYABLE = {"40001", "40P01"}  # serialization failure, deadlock detected

__all__ = ["Actor", "Crm", "Idempotency", "ListPage", "ListQuery"]


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _explained(exc: DBAPIError) -> Exception:
    """The error a caller can act on for a failed write, or the original when it is a bug."""
    if isinstance(exc, IntegrityError):
        # checks run before writing: a concurrent write got there first (or the same idempotency key
        # is being used by a call still running); retrying answers correctly either way
        return Conflict(
            "A concurrent change conflicts with this one; read the records again and retry. Nothing was changed."
        )
    message = str(exc.orig)
    if _sqlstate(exc) in RETRYABLE or "locked" in message or "busy" in message:
        return Conflict("The database is busy with other writes; retry in a moment. Nothing was changed.")
    return exc


class _Rehearsed(Exception):
    """Carries a rehearsed write's result out of the transaction it rolls back."""

    def __init__(self, result: Any) -> None:
        self.result = result


def _rehearse(conn: Connection, work: Callable[[Connection], T], journal: Journal) -> T:
    with journaling(conn, journal):
        result = work(conn)
    raise _Rehearsed(result)


def _confirm_scope(actor: Actor, request: str) -> str:
    return f"{actor.workspace_id}:{actor.user_id}:{request}"


class Crm:
    def __init__(
        self,
        db: Database,
        allow_local_webhooks: bool = False,
        *,
        allow_local_smtp: bool = False,
        public_url: str | None = None,
    ) -> None:
        self.db = db
        self.allow_local_webhooks = allow_local_webhooks
        self.allow_local_smtp = allow_local_smtp  # SMTP hosts at local addresses also over HTTP (mail/sending.py)
        self.public_url = public_url  # where the server's HTTP app is reached, for one-click unsubscribe links
        self.on_queued: list[Callable[[], None]] = []  # told when a committed write queued webhook deliveries
        self._secrets: dict[str, str] = {}

    @cached_property
    def email(self) -> EmailService:
        """Outbound email: SMTP connections, sends and their resumption (mcp_crm/mail/sending.py)."""
        from mcp_crm.mail.sending import EmailService

        return EmailService(self)

    async def _read(self, work: Callable[[Connection], T]) -> T:
        return await self.db.read(work)

    async def _write(self, actor: Actor, work: Callable[[Connection], T], idempotency: Idempotency | None) -> T:
        """Runs a write in one transaction: replayed from its idempotency key when it was done before, and
        rehearsed (run, then rolled back) inside `preview.dry_run()`."""
        journal = rehearsing()
        if journal is not None:
            return await self._transaction(lambda conn: _rehearse(conn, work, journal))

        def once(conn: Connection) -> tuple[T, bool]:
            queued_here(conn)  # left by an earlier transaction on this connection that rolled back
            if idempotency is None:
                return work(conn), queued_here(conn)
            seen, first_result = replay(conn, actor, idempotency)
            if seen:
                return first_result, False
            result = work(conn)
            remember(conn, actor, idempotency, result)
            return result, queued_here(conn)

        result, queued = await self._transaction(once)
        if queued:
            for listener in self.on_queued:
                listener()
        return result

    async def _transaction(self, work: Callable[[Connection], T]) -> T:
        for attempt in range(RETRIES):
            try:
                return await self.db.write(work)
            except _Rehearsed as done:
                return done.result  # type: ignore[no-any-return]
            except DBAPIError as exc:
                # a deadlock victim or serialization failure was rolled back whole: running it again is safe
                if _sqlstate(exc) in RETRYABLE and attempt < RETRIES - 1:
                    continue
                explained = _explained(exc)
                if explained is exc:
                    raise
                raise explained from exc
        raise AssertionError("unreachable")

    async def confirm_token(self, actor: Actor, request: str) -> str:
        """A token that lets exactly this request (tool and arguments) through for the next 10 minutes."""
        return confirm_token(await self._secret(actor), _confirm_scope(actor, request))

    async def confirmed(self, actor: Actor, request: str, token: str | None) -> bool:
        return confirmed(await self._secret(actor), _confirm_scope(actor, request), token)

    async def _secret(self, actor: Actor) -> str:
        if actor.workspace_id not in self._secrets:
            self._secrets[actor.workspace_id] = await self.db.read(lambda c: workspace_secret(c, actor.workspace_id))
        return self._secrets[actor.workspace_id]

    async def create(
        self, actor: Actor, entity: Entity, item: BaseModel, idempotency: Idempotency | None = None
    ) -> dict[str, Any]:
        (record,) = await self._write(
            actor, lambda c: create_records(c, actor, entity, [item], bulk=False), idempotency
        )
        return record

    async def create_many(
        self, actor: Actor, entity: Entity, items: list[BaseModel], idempotency: Idempotency | None = None
    ) -> list[dict[str, Any]]:
        return await self._write(actor, lambda c: create_records(c, actor, entity, items, bulk=True), idempotency)

    async def get(self, actor: Actor, entity: Entity, record_id: str) -> dict[str, Any]:
        return await self._read(lambda c: get_record(c, actor, entity, record_id))

    async def list(self, actor: Actor, entity: Entity, query: ListQuery) -> ListPage:
        return await self._read(lambda c: list_records(c, actor, entity, query))

    async def update(
        self, actor: Actor, entity: Entity, record_id: str, changes: BaseModel, idempotency: Idempotency | None = None
    ) -> dict[str, Any]:
        (record,) = await self._write(
            actor, lambda c: update_records(c, actor, entity, [(record_id, changes)], bulk=False), idempotency
        )
        return record

    async def update_many(
        self,
        actor: Actor,
        entity: Entity,
        changes: list[tuple[str, BaseModel]],
        idempotency: Idempotency | None = None,
    ) -> list[dict[str, Any]]:
        return await self._write(actor, lambda c: update_records(c, actor, entity, changes, bulk=True), idempotency)

    async def delete(
        self,
        actor: Actor,
        entity: Entity,
        record_id: str,
        expected_revision: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> dict[str, Any]:
        (record,) = await self._write(
            actor,
            lambda c: trash_records(c, actor, entity, [record_id], bulk=False, expected_revision=expected_revision),
            idempotency,
        )
        return record

    async def delete_many(
        self, actor: Actor, entity: Entity, ids: list[str], idempotency: Idempotency | None = None
    ) -> list[dict[str, Any]]:
        return await self._write(actor, lambda c: trash_records(c, actor, entity, ids, bulk=True), idempotency)

    async def restore(
        self, actor: Actor, entity: Entity, ids: list[str], idempotency: Idempotency | None = None
    ) -> dict[str, Any]:
        """{"records": [...], "notes": [what could not come back]}."""
        return await self._write(actor, lambda c: restore_records(c, actor, entity, ids, bulk=True), idempotency)

    async def trash(
        self, actor: Actor, entity: Entity | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        return await self._read(lambda c: list_trash(c, actor, entity, limit, cursor))

    async def purge(self, actor: Actor, ids: list[str], idempotency: Idempotency | None = None) -> list[dict[str, str]]:
        return await self._write(actor, lambda c: purge(c, actor, ids), idempotency)

    async def audit(
        self, actor: Actor, filter: FilterNode | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        return await self._read(lambda c: list_changes(c, actor, filter, limit, cursor))

    async def reorder_stages(
        self, actor: Actor, pipeline_id: str, stage_ids: list[str], idempotency: Idempotency | None = None
    ) -> list[dict[str, Any]]:
        return await self._write(actor, lambda c: reorder_stages(c, actor, pipeline_id, stage_ids), idempotency)

    async def reorder_lead_stages(
        self, actor: Actor, stage_ids: list[str], idempotency: Idempotency | None = None
    ) -> list[dict[str, Any]]:
        return await self._write(actor, lambda c: reorder_lead_stages(c, actor, stage_ids), idempotency)

    async def convert_lead(
        self,
        actor: Actor,
        lead_id: str,
        pipeline_id: str | None = None,
        stage_id: str | None = None,
        idempotency: Idempotency | None = None,
    ) -> dict[str, Any]:
        """{"deal": the new deal, "lead": the lead, now converted}."""
        return await self._write(actor, lambda c: convert_lead(c, actor, lead_id, pipeline_id, stage_id), idempotency)

    async def associate(
        self,
        actor: Actor,
        source: Entity,
        source_id: str,
        target: Entity,
        target_ids: list[str],
        mode: Mode,
        idempotency: Idempotency | None = None,
    ) -> dict[str, Any]:
        """Attach, detach or sync the `target` records linked to one `source` record."""
        return await self._write(
            actor, lambda c: associate(c, actor, source, source_id, target, target_ids, mode), idempotency
        )

    async def change_members(self, actor: Actor, list_id: str, request: MemberRequest, adding: bool) -> dict[str, Any]:
        """Adds (or removes) members of a static list: {list, added|removed, already_there|not_there, skipped,
        members}. See operations/lists.py."""
        return await self._write(actor, lambda c: change_members(c, actor, list_id, request, adding), None)

    async def list_members(self, actor: Actor, list_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        """A page of a list's members with their email status."""
        return await self._read(lambda c: list_members(c, actor, list_id, limit, cursor))

    async def purge_expired(self) -> int:
        """Empties the trash of entries past their workspace's retention (the worker's job)."""
        return await self.db.write(purge_expired)

    async def custom_fields(self, actor: Actor) -> list[dict[str, Any]]:
        """Every custom field defined in the workspace."""
        return await self._read(lambda c: all_definitions(c, actor.workspace_id))

    async def config(self, actor: Actor, entity: Entity) -> dict[str, Any]:
        if "custom" not in entity.fields:
            return describe_entity(entity, [])
        defined = await self._read(lambda c: definitions(c, actor.workspace_id, entity))
        return describe_entity(entity, list(defined.values()))

    async def summary(
        self,
        actor: Actor,
        period: str | None = None,
        since: date | None = None,
        until: date | None = None,
        owner_id: str | None = None,
        pipeline_id: str | None = None,
    ) -> dict[str, Any]:
        """The sales dashboard: a named period (default this_month) or since/until days, both inclusive, UTC;
        owner_id "me" is the acting user. See operations/dashboard.py."""
        now = datetime.now(UTC)
        window = resolve_period(period, since, until, now.date())
        return await self._read(lambda c: crm_summary(c, actor, window, owner_id, pipeline_id, now))

    async def timeline(
        self,
        actor: Actor,
        record_type: str,
        record_id: str,
        kinds: list[str] | None = None,
        limit: int = 25,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One record's feed, newest first: {record, items, next_cursor}. See operations/timeline.py."""
        return await self._read(lambda c: record_timeline(c, actor, record_type, record_id, kinds, limit, cursor))

    async def search(
        self, actor: Actor, query: str, types: list[str] | None = None, limit: int = 10
    ) -> list[dict[str, Any]]:
        """Ranked full-text search over the searchable entities (all, or `types`): [{entity, record_id, title,
        snippet, score}], best first. See mcp_crm/search."""
        return await self._read(lambda c: search_records(c, actor, query, types, limit))

    async def fetch(self, actor: Actor, entity: Entity, record_id: str) -> dict[str, Any]:
        """One record as {title, text, metadata}: all of it, links and related records named, as plain text."""
        return await self._read(lambda c: fetch_record(c, actor, entity, record_id))

    async def _webhook_url(self, url: str) -> str:
        """The URL, once its shape and the addresses it resolves to are allowed (checked again at each send)."""
        try:
            checked = check_url(url, self.allow_local_webhooks)
            await resolve(checked, self.allow_local_webhooks)
        except TargetRefused as exc:
            raise CrmError(str(exc)) from exc
        return checked

    async def webhooks_create(
        self, actor: Actor, url: str, events: list[str], description: str | None = None
    ) -> dict[str, Any]:
        """A new subscription, with its signing secret (returned this once)."""
        checked = await self._webhook_url(url)
        return await self._write(actor, lambda c: create_webhook(c, actor, checked, events, description), None)

    async def webhooks_list(self, actor: Actor) -> list[dict[str, Any]]:
        return await self._read(lambda c: list_webhooks(c, actor))

    async def webhooks_get(self, actor: Actor, webhook_id: str) -> dict[str, Any]:
        return await self._read(lambda c: get_webhook(c, actor, webhook_id))

    async def webhooks_update(self, actor: Actor, webhook_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        if changes.get("url") is not None:
            changes = changes | {"url": await self._webhook_url(changes["url"])}
        return await self._write(actor, lambda c: update_webhook(c, actor, webhook_id, changes), None)

    async def webhooks_delete(self, actor: Actor, webhook_id: str) -> dict[str, Any]:
        return await self._write(actor, lambda c: delete_webhook(c, actor, webhook_id), None)

    async def webhooks_rotate_secret(self, actor: Actor, webhook_id: str) -> dict[str, Any]:
        return await self._write(actor, lambda c: rotate_secret(c, actor, webhook_id), None)

    async def webhooks_test(self, actor: Actor, webhook_id: str) -> dict[str, Any]:
        """Sends a ping now and reports the response."""
        return await ping(self.db, actor, webhook_id, self.allow_local_webhooks)

    async def webhook_deliveries(
        self, actor: Actor, webhook_id: str, status: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        return await self._read(lambda c: list_deliveries(c, actor, webhook_id, status, limit, cursor))

    async def webhook_deliveries_resend(self, actor: Actor, ids: list[str]) -> list[dict[str, Any]]:
        return await self._write(actor, lambda c: resend_deliveries(c, actor, list(dict.fromkeys(ids))), None)

    async def find_duplicates(
        self,
        actor: Actor,
        entity: Entity,
        record_id: str | None = None,
        by: list[str] | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """Groups of likely duplicate contacts or organizations, or those of one record. See operations/merge.py."""
        return await self._read(lambda c: find_duplicates(c, actor, entity, record_id, by, limit, cursor))

    async def merge(
        self,
        actor: Actor,
        entity: Entity,
        primary_id: str,
        duplicate_ids: list[str],
        prefer: Prefer = "primary",
        idempotency: Idempotency | None = None,
    ) -> dict[str, Any]:
        """Merges the duplicates into the primary and trashes them: {record, merged_ids, fields, moved}."""
        return await self._write(
            actor, lambda c: merge_records(c, actor, entity, primary_id, duplicate_ids, prefer), idempotency
        )

    async def import_plan(
        self,
        actor: Actor,
        entity: Entity,
        headers: list[str],
        mapping: dict[str, str | None] | None = None,
        match: str | None = None,
        create_missing: bool = False,
        day_first: bool = False,
        strip_prefix: bool = False,
    ) -> Plan:
        """How an import of rows with these columns goes (transfer/columns.py, transfer/importing.py)."""
        from mcp_crm.transfer.columns import map_columns  # the transfer modules build on this one
        from mcp_crm.transfer.importing import check_match
        from mcp_crm.transfer.plan import Plan

        check_match(entity, match)
        custom = await self._read(lambda c: definitions(c, actor.workspace_id, entity))
        columns = map_columns(entity, headers, custom, mapping, strip_prefix)
        return Plan(entity, columns, custom, match, create_missing, day_first)

    async def import_batch(
        self,
        actor: Actor,
        plan: Plan,
        rows: list[Row],
        write: bool,
        planned: Planned,
        run: tuple[str, int, Report] | None = None,
        set_aside: Callable[[list[tuple[Row, str]]], None] | None = None,
    ) -> tuple[Report, list[tuple[Row, str]]]:
        """One batch of an import, written in one transaction (with `run`: (import id, rows done after this
        batch, the report before it), whose progress is saved in that same transaction), or only checked.
        `set_aside` is told the bad rows before the commit; without it a bad row rolls the batch back."""
        from mcp_crm.transfer.importing import import_batch
        from mcp_crm.transfer.plan import Report
        from mcp_crm.transfer.runs import record_progress

        if not write:

            def check(conn: Connection) -> None:
                raise _Rehearsed(import_batch(conn, actor, plan, rows, False, planned))

            return await self._transaction(check)  # type: ignore[func-returns-value]

        def work(conn: Connection) -> tuple[Report, list[tuple[Row, str]]]:
            report, bad = import_batch(conn, actor, plan, rows, True, planned)
            if bad and set_aside is None:
                line, reason = bad[0][0].line, bad[0][1]
                raise CrmError(f"Line {line} is bad ({reason}); its batch, from line {rows[0].line}, was not written.")
            if bad and set_aside is not None:
                set_aside(bad)
            if run is not None:
                run_id, rows_done, before = run
                total = Report.from_dict(before.as_dict())
                total.add(report)
                record_progress(conn, run_id, rows_done, total)
            return report, bad

        return await self._write(actor, work, None)

    async def import_rows(
        self,
        actor: Actor,
        entity: Entity,
        rows: list[dict[str, Any]],
        mapping: dict[str, str | None] | None = None,
        match: str | None = None,
        create_missing: bool = False,
        skip_bad_rows: bool = False,
        idempotency: Idempotency | None = None,
    ) -> dict[str, Any]:
        """Up to MAX_ROWS rows of plain values, as an import of a file reads its lines: {mapping, ignored, report}.
        Without skip_bad_rows one bad row writes nothing (a dry run still reports every row)."""
        from mcp_crm.transfer.importing import import_batch
        from mcp_crm.transfer.plan import MAX_ROWS, Planned, Row
        from mcp_crm.transfer.reader import cell_text

        if len(rows) > MAX_ROWS:
            raise CrmError(f"At most {MAX_ROWS} rows per call; send the rest in further calls.")
        headers = list(dict.fromkeys(key for row in rows for key in row))
        plan = await self.import_plan(actor, entity, headers, mapping, match, create_missing)
        batch = [Row(index, {k: cell_text(v) for k, v in row.items()}) for index, row in enumerate(rows)]
        checking = rehearsing() is not None

        def work(conn: Connection) -> dict[str, Any]:
            report, bad = import_batch(conn, actor, plan, batch, True, Planned())
            if bad and not skip_bad_rows and not checking:
                listed = "\n".join(f"- rows[{row.line}]: {reason}" for row, reason in bad[:50])
                raise CrmError(
                    f"{len(bad)} of {len(rows)} rows are bad; nothing was imported. Fix them, or pass "
                    f"skip_bad_rows to import the others:\n{listed}"
                )
            return {
                "mapping": [{"column": h, "field": t.spec} for h, t in plan.mapping.columns.items()],
                "ignored": [{"column": h, "why": why} for h, why in plan.mapping.ignored.items()],
                "report": report.as_dict(),
            }

        return await self._write(actor, work, idempotency)
