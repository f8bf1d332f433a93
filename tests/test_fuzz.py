"""Generated calls, valid and hostile, through the in-memory MCP client.

1. Every tool that tools/list announces gets arguments generated from its own inputSchema (biased to valid
   values, with ids of live, trashed and other-workspace records) or deliberately wrong ones: wrong types,
   boundary and huge strings, odd unicode, filter trees past the depth and size limits, forged cursors.
   Each answer must be a result or a tool error with a readable message (no traceback, no "internal
   error", no protocol error, no hang), a refused call must leave every table exactly as it was, a read
   (or a dry run) must change nothing, and no answer may show a record of another workspace.
2. A state machine creates, updates, deletes, restores and purges contacts and organizations (linked
   both ways) and keeps a small model of them; after every step `*_list` (every page), `*_get` and
   `trash_list` must agree with the model: ids, field values, revisions, links, what is in the trash.

`pytest -m fuzz` runs them with the "ci" profile (bounded, derandomized); `--hypothesis-profile=long`
explores much more. Profiles are registered in conftest.py."""

from __future__ import annotations

import base64
import functools
import itertools
import json
import logging
import math
import re
import string
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import anyio
import jsonschema
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import given, note, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from mcp import Client
from mcp_types import CallToolResult, Tool
from sqlalchemy import Connection, MetaData, select

from mcp_crm.catalog.server import build_server
from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for
from mcp_crm.operations import Actor, Crm, ListQuery
from mcp_crm.operations.access import create_workspace
from mcp_crm.store import Database
from mcp_crm.store.tables import TRASH, WORKSPACES

pytestmark = pytest.mark.fuzz

CALL_TIMEOUT = 30.0  # seconds; a call that takes longer counts as a hang

Draw = Callable[[st.SearchStrategy[Any]], Any]


# ---------------------------------------------------------------------------------------------------------------
# Known bugs. Each entry turns one exact failure into a counted, printed "known" result instead of a test
# failure, so the suite stays green until it is fixed. Remove the entry with the fix: the fuzz then checks it.
# A failure matches when the tool name matches `tools` and the server log of the call matches `log`.
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownBug:
    name: str
    tools: str  # regular expression on the tool name
    log: str  # regular expression on what the server logs for the failure (the exception and its traceback)

    def matches(self, tool: str, server_log: str) -> bool:
        return re.fullmatch(self.tools, tool) is not None and re.search(self.log, server_log) is not None


KNOWN_BUGS: list[KnownBug] = [
    # None open. An entry looks like this (the first fuzz run found it; fixed since, its call is in REGRESSIONS):
    # KnownBug("date-time out of range in UTC", r".*_(create|update|list)", r"OverflowError: date value out of range"),
]

# Calls that broke the server once: they run first in every fuzz run, under the same checks.
REGRESSIONS: list[tuple[str, dict[str, Any]]] = [
    ("organizations_create", {"name": "Big", "employee_count": 2**63}),
    ("organizations_create", {"name": "Big", "employee_count": 2**31}),
    ("organizations_list", {"filter": {"field": "employee_count", "op": "eq", "value": 2**31}}),
    ("contacts_list", {"filter": {"field": "revision", "op": "lt", "value": 2**63}}),
    ("tasks_create", {"name": "t", "due_at": "0001-01-01T00:00:00+14:00"}),
    ("tasks_create", {"name": "t", "due_at": "9999-12-31T23:59:59-14:00"}),
    ("contacts_list", {"filter": {"field": "created_at", "op": "gt", "value": "9999-12-31T23:59:59-14:00"}}),
    (
        "contacts_list",
        {"filter": {"field": "created_at", "op": "between", "value": ["2026-01-01T00:00:00", "2026-01-02T00:00:00Z"]}},
    ),
    ("deals_list", {"filter": {"field": "value", "op": "gt", "value": "1e999999"}}),
    ("contacts_list", {"filter": {"field": "last_name", "op": "contains", "value": "x" * 50_001}}),
    ("notes_update", {"id": "<a note>", "record_type": None}),
    ("contacts_list", {"limit": 2, "cursor": "<a cursor past year 9999>"}),  # PostgreSQL: date value out of range
]


def _filled(s: Session, arguments: dict[str, Any]) -> dict[str, Any]:
    """A regression's arguments with its placeholders replaced by ids and cursors of this run."""
    real = s.cursors["contacts"][0]
    payload = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
    payload["v"][0] = "9999-12-31T23:59:59-14:00"
    values = {
        "<a note>": s.live["notes"][0],
        "<a cursor past year 9999>": base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("="),
    }
    return {k: values.get(v, v) if isinstance(v, str) else v for k, v in arguments.items()}


# ---------------------------------------------------------------------------------------------------------------
# A server and client on one database, driven from synchronous Hypothesis tests through an anyio portal.
# ---------------------------------------------------------------------------------------------------------------


class ServerLog(logging.Handler):
    """Collects what the server logs at WARNING and above (with tracebacks) during one call."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def take(self) -> str:
        text, self.lines = "\n".join(self.lines), []
        return text


class Snapshots:
    """Every row of every table, compared like tests.helpers.snapshot compares them, but in one statement that
    returns each table's row count and contents (PostgreSQL: an md5 of its rows as text, sorted; SQLite: its
    rows quoted and sorted), so it is cheap enough to take after every call."""

    def __init__(self, portal: BlockingPortal, url: str) -> None:
        self.portal = portal
        self.db: Database = portal.call(lambda: Database(url))
        meta = MetaData()
        portal.call(self.db.read, meta.reflect)
        postgres = self.db.dialect == "postgresql"
        parts = []
        for name, table in sorted(meta.tables.items()):
            if postgres:
                rows = "md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), ''))"
                parts.append(f"SELECT '{name}'::text, count(*), {rows} FROM \"{name}\" AS x")
            else:
                row = " || ',' || ".join(f'quote("{c.name}")' for c in table.c)
                rows = f'(SELECT group_concat(r, char(10)) FROM (SELECT {row} AS r FROM "{name}" ORDER BY 1))'
                parts.append(f"SELECT '{name}', (SELECT count(*) FROM \"{name}\"), {rows}")
        self.statement = " UNION ALL ".join(parts)

    def take(self) -> dict[str, tuple[int, str]]:
        rows = self.portal.call(self.db.read, lambda conn: conn.exec_driver_sql(self.statement).all())
        return {name: (count, contents or "") for name, count, contents in rows}

    def close(self) -> None:
        self.portal.call(self.db.dispose)


def snapshot_diff(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> str:
    changed = [t for t in sorted(set(before) | set(after)) if before.get(t) != after.get(t)]
    return "\n".join(
        f"{t}: {before.get(t, (0, ''))[0]} rows before, {after.get(t, (0, ''))[0]} after, contents differ"
        for t in changed
    )


def shorten(value: Any, depth: int = 0) -> Any:
    """The arguments as a failure message shows them: long text and deep trees abbreviated."""
    if depth > 12:
        return "..."
    if isinstance(value, str):
        return value if len(value) <= 80 else f"{value[:40]}...<{len(value)} chars>"
    if isinstance(value, list):
        items = [shorten(v, depth + 1) for v in value[:8]]
        return items + ([f"...<{len(value)} items>"] if len(value) > 8 else [])
    if isinstance(value, dict):
        return {shorten(k, depth + 1): shorten(v, depth + 1) for k, v in list(value.items())[:30]}
    return value


def shown(value: Any) -> str:
    return json.dumps(shorten(value), ensure_ascii=True, default=str)


@dataclass
class Stats:
    examples: int = 0
    calls: int = 0
    ok: int = 0
    refused: int = 0
    known: Counter[str] = field(default_factory=Counter)
    per_tool: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    lenient: list[str] = field(default_factory=list)  # schema-invalid arguments the server accepted


class Session:
    """One server and one client for a whole test (not per example): calls, checks and snapshots."""

    def __init__(self, portal: BlockingPortal, client: Client, url: str) -> None:
        self.portal, self.client, self.url = portal, client, url
        self.log = ServerLog()
        logging.getLogger().addHandler(self.log)
        self.snapshots = Snapshots(portal, url)
        self.tools: list[Tool] = portal.call(client.list_tools).tools
        self.validators = {t.name: jsonschema.Draft202012Validator(t.input_schema) for t in self.tools}
        self.read_only = {t.name for t in self.tools if t.annotations and t.annotations.read_only_hint}
        self.stats = Stats()
        self.lazy = False  # True: no snapshot after successful calls (see checked)
        self.last: dict[str, tuple[int, str]] | None = self.snapshots.take()
        # filled by build_world
        self.configs: dict[str, dict[str, Any]] = {}
        self.live: dict[str, list[str]] = defaultdict(list)
        self.trashed: dict[str, list[str]] = defaultdict(list)
        self.foreign: dict[str, list[str]] = defaultdict(list)
        self.foreign_state: Any = None
        self.cursors: dict[str, list[str]] = defaultdict(list)

    def close(self) -> None:
        logging.getLogger().removeHandler(self.log)
        self.snapshots.close()

    # -- calling -------------------------------------------------------------------------------------------------

    async def _call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        with anyio.fail_after(CALL_TIMEOUT):
            return await self.client.call_tool(tool, arguments)

    def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        """The raw result; a protocol error, an exception or a hang fails the test."""
        self.log.take()
        self.stats.calls += 1
        try:
            return self.portal.call(self._call, tool, arguments)
        except TimeoutError:
            raise AssertionError(
                f"{tool} did not answer within {CALL_TIMEOUT}s; arguments {shown(arguments)}"
            ) from None
        except Exception as exc:
            raise AssertionError(
                f"{tool} raised {exc!r} instead of answering; arguments {shown(arguments)}\n"
                f"server log:\n{self.log.take()}"
            ) from exc

    def must(self, tool: str, arguments: dict[str, Any] | None = None) -> Any:
        """Calls a tool that must succeed (setup and model steps)."""
        result = self.checked(tool, arguments or {}, expect="ok")
        return result.structured_content

    def refused(self, tool: str, arguments: dict[str, Any], *needles: str) -> str:
        """Calls a tool that must be refused (and change nothing); returns the message."""
        if self.last is None:
            self.last = self.snapshots.take()
        result = self.checked(tool, arguments, expect="error")
        text = result.content[0].text
        for needle in needles:
            assert needle in text, f"{tool} {shown(arguments)}: expected {needle!r} in the refusal, got {text!r}"
        return text

    def checked(self, tool: str, arguments: dict[str, Any], expect: str | None = None) -> CallToolResult:
        """Calls a tool and checks the answer: a result, or a refusal a model can read that changed nothing.

        The database is compared with `self.last`, the snapshot taken after the previous call. With `lazy`
        (the state machine) no snapshot follows a success; `refused` takes one before the call instead."""
        result = self.call(tool, arguments)
        text = result.content[0].text if result.content and hasattr(result.content[0], "text") else ""
        server_log = self.log.take()
        where = f"{tool} {shown(arguments)}"
        counts = self.stats.per_tool[tool]
        if result.is_error:
            self.stats.refused += 1
            counts["refused"] += 1
            problem = None
            if not text.strip():
                problem = "an empty error message"
            elif "traceback" in text.lower() or "internal error" in text.lower():
                problem = "an internal error"
            if problem is not None:
                known = next((b for b in KNOWN_BUGS if b.matches(tool, server_log)), None)
                if known is None:
                    raise AssertionError(f"{where} answered with {problem}: {text!r}\nserver log:\n{server_log}")
                self.stats.known[known.name] += 1
            assert expect != "ok", f"{where} should have succeeded but was refused: {text[:2000]}"
            if self.last is not None:
                after = self.snapshots.take()
                assert after == self.last, f"{where} was refused ({text[:300]!r}) but changed the database:\n" + (
                    snapshot_diff(self.last, after)
                )
            return result

        self.stats.ok += 1
        counts["ok"] += 1
        assert isinstance(result.structured_content, dict), f"{where} succeeded without structured content: {text!r}"
        for foreign_id in self.all_foreign:
            assert foreign_id not in text, f"{where} answered with a record of another workspace ({foreign_id})"
        if self.lazy:
            if tool not in self.read_only:
                self.last = None
        else:
            after = self.snapshots.take()
            if tool in self.read_only or arguments.get("dry_run") is True:
                assert after == self.last, f"{where} is a read or a dry run but changed the database:\n" + (
                    snapshot_diff(self.last or {}, after)
                )
            self.last = after
        assert expect != "error", f"{where} should have been refused but succeeded: {text[:500]}"
        if not self.validators[tool].is_valid(arguments) and len(self.stats.lenient) < 1000:
            self.stats.lenient.append(f"{tool} {shown(arguments)[:300]}")
        return result

    @property
    def all_foreign(self) -> list[str]:
        return [i for ids in self.foreign.values() for i in ids]

    # -- the data the fuzz points at -----------------------------------------------------------------------------

    def build_world(self) -> None:
        """Records of every entity in this workspace (some in the trash), cursors of real list pages, and
        records in a second workspace whose ids must behave as missing here."""
        m = self.must
        for entity in ENTITIES:
            self.configs[entity] = m(f"{entity}_config")
        me = m("users_me")["id"]
        users = [m("users_create", {"name": f"User {i}", "email": f"user{i}@example.com"})["id"] for i in range(3)]
        orgs = [
            m("organizations_create", {"name": f"Org {i}", "employee_count": i * 10, "tags": ["t"] * (i % 2)})["id"]
            for i in range(4)
        ]
        items = [
            {
                "first_name": f"First{i}",
                "last_name": f"Last{i % 7}",
                "job_title": None if i % 3 else f"Title {i}",
                "organization_ids": orgs[: i % 3],
                "emails": [{"value": f"p{i}@example.com"}],
                "tags": ["vip"] if i % 4 == 0 else [],
            }
            for i in range(30)
        ]
        m("contacts_create_many", {"items": items})
        contacts = [c["id"] for c in self.pages("contacts_list", {})]
        services = [
            m("services_create", {"name": f"Service {i}", "amount": f"{10 * i}.50", "sku": f"SKU-{i}"})["id"]
            for i in range(4)
        ]
        deals = [
            m(
                "deals_create",
                {
                    "name": f"Deal {i}",
                    "organization_ids": orgs[:2],
                    "contact_ids": contacts[:2],
                }
                # a deal with line items is worth their total; the others have a value set by hand
                | (
                    {"services": [{"service_id": services[i % 2], "quantity": "2"}]}
                    if i % 2
                    else {"value": str(1000 * i)}
                ),
            )["id"]
            for i in range(4)
        ]
        tasks = [
            m(
                "tasks_create",
                {
                    "name": f"Task {i}",
                    "contact_id": contacts[i],
                    "organization_id": orgs[0],
                    "deal_id": deals[0],
                    "due_at": "2026-05-01T10:00:00Z",
                },
            )["id"]
            for i in range(4)
        ]
        ids = {
            "users": [me, *users],
            "organizations": orgs,
            "contacts": contacts,
            "services": services,
            "deals": deals,
            "tasks": tasks,
        }
        m("notes_create", {"body": "Met at the fair.", "record_type": "contacts", "record_id": contacts[0]})
        for entity, entity_ids in ids.items():
            m(f"{entity}_delete", {"id": entity_ids[-1]})  # the last of each (never a used service or me)
        for entity in ENTITIES:
            if cursor := m(f"{entity}_list", {"limit": 2})["next_cursor"]:
                self.cursors[entity].append(cursor)
        self.foreign = self.portal.call(_foreign_workspace, self.url)
        self.foreign_state = self.portal.call(_foreign_view, self.url, self.foreign)
        self.last = self.snapshots.take()

    def pages(self, tool: str, arguments: dict[str, Any], limit: int = 200) -> list[dict[str, Any]]:
        """Every item of a list tool, page by page."""
        items: list[dict[str, Any]] = []
        cursor = None
        for _ in range(1000):
            page = self.must(tool, arguments | {"limit": limit} | ({"cursor": cursor} if cursor else {}))
            items += page["items"]
            assert page["has_more"] == (page["next_cursor"] is not None), page
            if not page["has_more"]:
                return items
            cursor = page["next_cursor"]
        raise AssertionError(f"{tool} {arguments}: more than 1000 pages")

    def refresh_ids(self) -> None:
        """The ids the fuzz points at: this workspace's records and trash as they are now (reads the tables)."""
        live, trashed = self.portal.call(self.snapshots.db.read, self._ids)
        self.live, self.trashed = defaultdict(list, live), defaultdict(list, trashed)

    def _ids(self, conn: Connection) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        workspace = conn.execute(select(WORKSPACES.c.id).where(WORKSPACES.c.slug == "local")).scalar_one()
        live = {
            name: list(
                conn.execute(select(table.c.id).where(table.c.workspace_id == workspace).order_by(table.c.id)).scalars()
            )
            for name, table in ((name, e.table.__table__) for name, e in ENTITIES.items())  # type: ignore[attr-defined]
        }
        trashed: dict[str, list[str]] = defaultdict(list)
        for entity, record_id in conn.execute(
            select(TRASH.c.entity, TRASH.c.record_id).where(TRASH.c.workspace_id == workspace).order_by(TRASH.c.id)
        ):
            trashed[entity].append(record_id)
        return live, trashed

    def check_foreign_untouched(self) -> None:
        assert self.portal.call(_foreign_view, self.url, self.foreign) == self.foreign_state, (
            "a record of another workspace changed"
        )


async def _foreign_workspace(url: str) -> dict[str, list[str]]:
    """A second workspace (made as hosted mode makes one) with records of every entity and one contact in its
    trash; returns its ids by entity."""
    db = Database(url)
    try:
        made = await db.write(lambda c: create_workspace(c, "other", "Other", "Their owner", "them@other.example"))
        actor = Actor(workspace_id=made["id"], user_id=made["owner"]["id"], via="cli")
        crm = Crm(db)

        async def make(entity: str, **fields: Any) -> str:
            return (await crm.create(actor, ENTITIES[entity], create_model_for(ENTITIES[entity])(**fields)))["id"]

        org = await make("organizations", name="Their org")
        contact = await make("contacts", first_name="Their", last_name="Contact", organization_ids=[org])
        service = await make("services", name="Their service", amount="5", sku="SKU-1")
        deal = await make(
            "deals",
            name="Their deal",
            organization_ids=[org],
            contact_ids=[contact],
            services=[{"service_id": service}],
        )
        await make("tasks", name="Their task", contact_id=contact, organization_id=org, deal_id=deal)
        gone = await make("contacts", first_name="Their", last_name="Trashed")
        await crm.delete(actor, ENTITIES["contacts"], gone)
        ids = {
            name: [r["id"] for r in (await crm.list(actor, entity, ListQuery(limit=200))).items]
            for name, entity in ENTITIES.items()
        }
        ids["contacts"].append(gone)  # trashed: last, so _foreign_view reads the live ones
        return ids
    finally:
        await db.dispose()


async def _foreign_view(url: str, foreign: dict[str, list[str]]) -> Any:
    """Everything the other workspace sees: its records and its trash."""
    db = Database(url)
    try:
        crm = Crm(db)
        workspace_id = await db.read(
            lambda c: c.execute(select(WORKSPACES.c.id).where(WORKSPACES.c.slug == "other")).scalar_one()
        )
        actor = Actor(workspace_id=workspace_id, user_id=None, via="cli")
        records = {}
        for name, ids in foreign.items():
            for rid in ids[:-1] if name == "contacts" else ids:
                records[rid] = await crm.get(actor, ENTITIES[name], rid)
        trash, _ = await crm.trash(actor, None, 200, None)
        return records, trash
    finally:
        await db.dispose()


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(Client(build_server(database_url))) as client,
    ):
        crm = Session(portal, client, database_url)
        try:
            yield crm
        finally:
            crm.close()


# ---------------------------------------------------------------------------------------------------------------
# Values: valid-looking, boundary and hostile.
# ---------------------------------------------------------------------------------------------------------------

ODD_TEXT = [
    "\x00",  # NUL: refused by name before it reaches PostgreSQL
    "\u202eRTL override",
    "\u0645\u0631\u062d\u0628\u0627",  # Arabic
    "\u05e9\u05dc\u05d5\u05dd",  # Hebrew
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",  # emoji joined by ZWJ
    "\U0001f600",
    "\ufeffBOM",
    "e\u0301",  # combining accent
    "\u6f22\u5b57",
    "\U0010fffd",
    "\u2028\u2029",
    "\t\n\r",
    " ",
    "%_\\",
    "'; DROP TABLE contacts; --",
    "Robert'); --",
    '"quoted"',
    "\u0130\u0131\u00df",  # case folding oddities
    "\uff11\uff12",  # fullwidth digits
    "null",
    "NaN",
]
UNICODE = st.characters(codec="utf-8")  # every code point except surrogates


def text_value(draw: Draw, min_len: int = 0, max_len: int | None = None) -> str:
    """Text within the length limits: plain, any unicode, or odd pieces (RTL, emoji, combining marks...)."""
    cap = 24 if max_len is None else min(max_len, 24)
    kind = draw(st.sampled_from(["plain", "unicode", "odd"]))
    if kind == "odd":
        text = "".join(draw(st.lists(st.sampled_from(ODD_TEXT[1:]), min_size=1, max_size=3)))
        if min_len <= len(text) <= (max_len or len(text)):
            return text
    alphabet = UNICODE if kind == "unicode" else string.ascii_letters + string.digits + " .-@"
    return draw(st.text(alphabet, min_size=min(min_len, cap), max_size=cap))


WRONG = [None, "", 0, -1, 2**64, 1.5, True, False, [], {}, [None], {"a": 1}, "x" * 5000, "\x00", [[[[[]]]]]]
INT_EDGES = [0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 1.5, "7"]
NUMBER_EDGES = [
    -0.0, 1e308, -1e308, 5e-324, 10**30, 2**63, 0.005, -1, "1e999999", "-1e-999999", "1e308", "0.005", "-1", "1e3",
    "NaN", "Infinity", "sNaN", " 12 ", "1_000", "\uff11\uff12", "0x10", "", "abc", "99999999999999.99",
]  # fmt: skip
DATE_EDGES = ["0001-01-01", "9999-12-31", "2026-02-29", "2024-02-29", "0000-00-00", "2026-05-01T10:00:00Z"]
DATETIME_EDGES = [
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00", "9999-12-31T23:59:59", "2026-05-01T10:00:00", "2026-05-01T10:00:00+23:59",
    "2026-05-01T10:00:00.123456789Z", "1969-12-31T23:59:59Z", "0001-01-01", "9999-12-31", 0, 1e12,
]  # fmt: skip
TEXT_EDGES = ["", " ", *ODD_TEXT, "x" * 100_001]
KIND_EDGES = {
    "number": [*INT_EDGES, "1", "1e999999", 1e308],
    "money": [*NUMBER_EDGES, 10**30, "99999999999999.99", "100000000000000"],
    "date": [*DATE_EDGES, *DATETIME_EDGES],
    "datetime": [*DATETIME_EDGES, *DATE_EDGES],
    "boolean": ["true", 1, None, "yes"],
    "field": ["emial", "", "id ", "ID", "organizations", "workspace_id", "revision; --"],
}


def number_value(draw: Draw, integer: bool, low: float | None = None, high: float | None = None) -> Any:
    """A number within the limits, small or at the limits."""
    lo = math.ceil(low) if low is not None else -(2**63)
    hi = int(high) if high is not None else 2**63 - 1
    if draw(st.integers(0, 3)):
        near = max(lo, min(hi, 0))
        lo, hi = max(lo, near - 1000), min(hi, near + 1000)
    if integer:
        return draw(st.integers(lo, hi))
    return round(draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False)), 2)  # money has cents


def money_value(draw: Draw) -> Any:
    if draw(st.booleans()):
        return str(draw(st.decimals(0, 10**9, places=draw(st.integers(0, 2)), allow_nan=False, allow_infinity=False)))
    return number_value(draw, False, 0, 10**9)


def date_value(draw: Draw) -> str:
    return draw(st.dates()).isoformat()


def datetime_value(draw: Draw) -> str:
    """ISO 8601 date-times in any year, naive or with any offset, or a bare date."""
    if not draw(st.integers(0, 5)):
        return draw(st.dates()).isoformat()
    zone = draw(
        st.one_of(
            st.just(UTC),
            st.none(),
            st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
        )
    )
    moment = draw(st.datetimes(timezones=st.just(zone) if zone is not None else st.none()))
    text = moment.isoformat()
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


def _json_value(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(UNICODE, max_size=12),
        st.sampled_from(ODD_TEXT),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(UNICODE, max_size=8), inner, max_size=3),
        max_leaves=max_leaves,
    )


JSON = _json_value()  # any JSON value, small


SHAPES = {
    "is_null": "none",
    "is_not_null": "none",
    "in": "list",
    "not_in": "list",
    "between": "pair",
    "contains": "text",
    "starts_with": "text",
    "ends_with": "text",
}
ALL_OPERATORS = [
    "eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in",
    "contains", "starts_with", "ends_with", "is_null", "is_not_null",
]  # fmt: skip
ID_TARGETS = {"owner": "users", "assignee": "users", "author": "users", "user": "users"}


def is_id_name(name: str | None) -> bool:
    return name is not None and (name in ("id", "ids") or name.endswith(("_id", "_ids")))


def id_target(stem: str) -> str | None:
    """The entity an `<stem>_id` / `<stem>_ids` argument names: owner -> users, activity -> activities."""
    if stem in ID_TARGETS:
        return ID_TARGETS[stem]
    plural = stem[:-1] + "ies" if stem.endswith("y") else stem + "s"
    return plural if plural in ENTITIES else None


# ---------------------------------------------------------------------------------------------------------------
# Arguments for one tool, generated from its inputSchema.
# ---------------------------------------------------------------------------------------------------------------


class Arguments:
    """Draws arguments for one tool as (arguments, expectation); expectation is None (any clean answer), "ok"
    or "error". Generation follows the tool's inputSchema and remembers every value it placed (a leaf: its
    container, key and schema), so an "edge" case can swap one of them for a boundary value of its type."""

    def __init__(self, session: Session, tool: Tool) -> None:
        self.s = session
        self.tool = tool
        self.name = tool.name
        self.root = tool.input_schema
        prefix = tool.name.split("_", 1)[0]
        self.entity = prefix if prefix in ENTITIES else None
        self.config = session.configs.get(self.entity) if self.entity else None
        self.is_list = tool.name.endswith("_list") and self.config is not None
        self.leaves: list[tuple[Any, Any, dict[str, Any]]] = []
        self.validators: dict[str, jsonschema.Draft202012Validator] = {}
        self.clean = False

    # -- entry point -----------------------------------------------------------------------------------------------

    def draw(self, draw: Draw) -> tuple[dict[str, Any], str | None]:
        kinds = ["valid", "extreme", "extreme", "edge", "mutated", "junk"]
        if self.is_list:
            kinds += ["hostile", "cursor"] if self.s.cursors.get(self.entity or "") else ["hostile"]
        kind = draw(st.sampled_from(kinds))
        if kind == "hostile":
            return self.hostile(draw)
        if kind == "cursor":
            return self.cursor_case(draw)
        if kind == "junk":
            return draw(st.dictionaries(st.text(UNICODE, max_size=10), JSON, max_size=4)), None
        self.leaves = []
        self.clean = kind in ("valid", "extreme")
        arguments = self.value(draw, self.root, None, 0)
        if kind == "extreme":  # one to three values at the far ends of what the schema allows
            targets = [leaf for leaf in self.leaves for _ in range(self.weight(leaf[2]))]
            for container, key, schema in (
                draw(st.lists(st.sampled_from(targets), min_size=1, max_size=3)) if targets else []
            ):
                allowed = [e for e in self.edges(schema) if "\x00" not in str(e) and self.allows(schema, e)]
                if allowed:
                    container[key] = draw(st.sampled_from(allowed))
        elif kind == "edge" and self.leaves:  # one value at or past an edge, allowed or not
            container, key, schema = draw(st.sampled_from(self.leaves))
            container[key] = draw(st.sampled_from(self.edges(schema)))
        elif kind == "mutated":
            arguments = self.mutate(draw, arguments)
        return arguments, None

    def weight(self, schema: dict[str, Any], depth: int = 0) -> int:
        """How often a value is picked for an extreme: unbounded numbers, dates and filter values break most."""
        schema = self.resolve(schema)
        if "x-kind" in schema:
            return 0 if schema["x-kind"] == "field" else 4
        if "anyOf" in schema or "oneOf" in schema:
            options = schema.get("anyOf", []) + schema.get("oneOf", [])
            return max((self.weight(o, depth + 1) for o in options), default=0) if depth < 2 else 0
        kinds = schema.get("type") or []
        kinds = {kinds} if isinstance(kinds, str) else set(kinds)
        if "enum" in schema or not kinds - {"null", "boolean", "object"}:
            return 0
        if kinds & {"integer", "number"}:
            return 1 if "minimum" in schema and "maximum" in schema else 4
        if "format" in schema:
            return 4
        return 1

    def allows(self, schema: dict[str, Any], value: Any) -> bool:
        """Whether the schema accepts the value (filter values, checked by the server only, always are)."""
        if "x-kind" in schema:
            return True
        key = json.dumps(schema, sort_keys=True)
        if key not in self.validators:
            self.validators[key] = jsonschema.Draft202012Validator({"$defs": self.root.get("$defs", {}), **schema})
        return self.validators[key].is_valid(value)

    # -- schema-driven values --------------------------------------------------------------------------------------

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def value(self, draw: Draw, schema: dict[str, Any], name: str | None, depth: int) -> Any:
        schema = self.resolve(schema)
        special = self.special(draw, schema, name)
        if special is not _NONE:
            return special
        if "enum" in schema:
            return draw(st.sampled_from(schema["enum"]))
        if "const" in schema:
            return schema["const"]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = schema[key]
                if depth > 5:  # stop recursing through filter-like unions
                    options = [o for o in options if "$ref" not in o] or options[:1]
                return self.value(draw, draw(st.sampled_from(options)), name, depth + 1)
        types = schema.get("type")
        if types is None:
            return draw(JSON)
        if isinstance(types, list):
            types = draw(st.sampled_from(sorted(types, key=lambda t: t == "null")))  # null last: rarely chosen
        if types == "null":
            return None
        if types == "boolean":
            return draw(st.booleans())
        if types in ("integer", "number"):
            low = schema.get("minimum", schema["exclusiveMinimum"] + 0.01 if "exclusiveMinimum" in schema else None)
            return number_value(draw, types == "integer", low, schema.get("maximum"))
        if types == "string":
            return self.string(draw, schema)
        if types == "array":
            low = schema.get("minItems", 0)
            high = min(schema.get("maxItems", low + 3), low + 3)
            items: list[Any] = []
            for index in range(draw(st.integers(low, max(low, high)))):
                items.append(self.value(draw, schema.get("items", {}), name, depth + 1))
                self.leaves.append((items, index, self.resolve(schema.get("items", {}))))
            return items
        if types == "object":
            result: dict[str, Any] = {}
            required = set(schema.get("required", ()))
            for prop, sub in schema.get("properties", {}).items():
                if prop in required or draw(st.booleans()):
                    result[prop] = self.value(draw, sub, prop, depth + 1)
                    self.leaves.append((result, prop, self.resolve(sub)))
            return result
        return draw(JSON)

    def string(self, draw: Draw, schema: dict[str, Any]) -> str:
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        fmt = schema.get("format")
        if fmt == "date":
            return date_value(draw)
        if fmt == "date-time":
            return datetime_value(draw)
        if "pattern" in schema:
            return draw(_regex(schema["pattern"], low, high or 500))
        return text_value(draw, low, high)

    def special(self, draw: Draw, schema: dict[str, Any], name: str | None) -> Any:
        """Values chosen by what a property means rather than by its JSON type."""
        if name is None:
            return _NONE
        if name == "filter" and self.config is not None and draw(st.integers(0, 4)):
            return self.filter(draw, 1)
        if name == "sort" and self.config is not None and draw(st.integers(0, 4)):
            sortable = [f["name"] for f in self.config["fields"] if f["sortable"]]
            keys = st.fixed_dictionaries(
                {"field": st.sampled_from([*sortable, "emial"])},
                optional={"direction": st.sampled_from(["asc", "desc", "sideways"])},
            )
            return draw(st.lists(keys, max_size=5))
        if name == "fields" and self.config is not None and draw(st.integers(0, 4)):
            names = [f.get("output_key", f["name"]) for f in self.config["fields"]] + ["organization_ids", "nope"]
            return draw(st.lists(st.sampled_from(names), max_size=5))
        if name == "cursor" and self.entity and self.s.cursors.get(self.entity) and draw(st.booleans()):
            return draw(st.sampled_from(self.s.cursors[self.entity]))
        if name == "expected_revision" and draw(st.integers(0, 3)):
            return draw(st.integers(1, 4))
        if name == "idempotency_key" and draw(st.integers(0, 2)):
            return draw(st.sampled_from(["key-1", "key-2", "key-3"]))
        if name in ("value", "amount", "quantity") and "pattern" not in schema and "anyOf" in schema:
            return money_value(draw)
        if is_id_name(name) and schema.get("type") in ("string", ["string", "null"]):
            stem = name.removesuffix("_ids").removesuffix("_id")
            target = None if self.name == "trash_purge" else self.entity if stem in ("id", "ids") else id_target(stem)
            return self.id_value(draw, target)
        return _NONE

    def id_value(self, draw: Draw, target: str | None) -> str:
        """An id for an argument naming a record of `target` (None: any entity): mostly one that is there, or
        one in the trash, one of another workspace, one of another entity, or made up."""
        kinds = ["live", "live", "trashed", "foreign", "other_entity", "random"]
        if self.clean:  # arguments meant to pass every check: mostly ids that are there
            kinds = ["live"] * 6 + kinds
        if self.name.endswith(("_restore", "_purge")):
            kinds = ["trashed", "trashed", "live", "foreign", "random"]
        kind = draw(st.sampled_from(kinds))
        pools = {
            "live": self.s.live.get(target) if target else [i for ids in self.s.live.values() for i in ids],
            "trashed": self.s.trashed.get(target) if target else [i for v in self.s.trashed.values() for i in v],
            "foreign": self.s.foreign.get(target) if target else self.s.all_foreign,
            "other_entity": [i for e, ids in self.s.live.items() if e != target for i in ids],
        }
        pool = pools.get(kind)
        if pool:
            return draw(st.sampled_from(pool))
        if draw(st.booleans()):
            return str(draw(st.uuids()))
        return text_value(draw, 0, 40)

    # -- boundary values -------------------------------------------------------------------------------------------

    def edges(self, schema: dict[str, Any], depth: int = 0) -> list[Any]:
        """Values at and past the edges of what `schema` (or a filter field kind, "x-kind") allows."""
        schema = self.resolve(schema)
        if "x-kind" in schema:
            return KIND_EDGES.get(schema["x-kind"], TEXT_EDGES)
        found: list[Any] = []
        for key in ("anyOf", "oneOf"):
            for option in schema.get(key, []) if depth < 2 else []:
                found += self.edges(option, depth + 1)
        if "enum" in schema:
            found += ["NOPE", str(schema["enum"][0]).upper(), None]
        types = schema.get("type") or []
        for kind in types if isinstance(types, list) else [types]:
            if kind == "integer":
                found += INT_EDGES
                found += [schema[k] + d for k, d in (("minimum", -1), ("maximum", 1)) if k in schema]
            elif kind == "number":
                found += NUMBER_EDGES
            elif kind == "string" and schema.get("format") == "date":
                found += DATE_EDGES
            elif kind == "string" and schema.get("format") == "date-time":
                found += DATETIME_EDGES
            elif kind == "string":
                low, high = schema.get("minLength", 0), schema.get("maxLength")
                found += TEXT_EDGES
                if high is not None:
                    found += ["\U0001f600" * high, "\u00e9" * (high + 1), "a" * (high + 1)]
                if low:
                    found += ["a" * (low - 1)]
            elif kind == "array":
                found += [[], [None], ["x"] * (schema.get("maxItems", 500) + 1)]
            elif kind == "boolean":
                found += ["true", 1, "yes"]
            elif kind == "object":
                found += [{}, "{}", []]
            elif kind == "null":
                found += [None]
        return found or WRONG

    # -- filters -------------------------------------------------------------------------------------------------

    def filter(self, draw: Draw, depth: int) -> dict[str, Any]:
        if depth >= 4 or not draw(st.integers(0, 2)):
            return self.condition(draw)
        kind = draw(st.sampled_from(["and", "or", "not"]))
        if kind == "not":
            return {"not": self.filter(draw, depth + 1)}
        return {kind: [self.filter(draw, depth + 1) for _ in range(draw(st.integers(1, 3)))]}

    def condition(self, draw: Draw) -> dict[str, Any]:
        assert self.config is not None
        filterable = [f for f in self.config["fields"] if f["filterable"]]
        spec = draw(st.sampled_from(filterable))
        op = draw(st.sampled_from(spec["operators"]))
        shape = SHAPES.get(op, "one")
        condition: dict[str, Any] = {"field": spec["name"], "op": op}
        self.leaves.append((condition, "field", {"type": "string", "x-kind": "field"}))
        self.leaves.append((condition, "op", {"enum": ALL_OPERATORS}))
        kind = {"x-kind": spec["type"]}
        if shape in ("list", "pair"):
            size = 2 if shape == "pair" else draw(st.integers(1, 4))
            values = condition["value"] = [self.scalar(draw, spec) for _ in range(size)]
            self.leaves += [(values, index, kind) for index in range(size)]
        elif shape == "text":
            condition["value"] = text_value(draw, 0, 40)
            self.leaves.append((condition, "value", {"type": "string"}))
        elif shape == "one":
            condition["value"] = self.scalar(draw, spec)
            self.leaves.append((condition, "value", kind))
        return condition

    def scalar(self, draw: Draw, spec: dict[str, Any]) -> Any:
        kind = spec["type"]
        if kind == "number":
            return number_value(draw, True, 0)
        if kind == "money":
            return money_value(draw)
        if kind == "date":
            return date_value(draw)
        if kind == "datetime":
            return datetime_value(draw)
        if kind == "boolean":
            return draw(st.booleans())
        if kind == "enum":
            return draw(st.sampled_from(spec.get("values") or ["nope"]))
        if kind in ("relation", "relations"):
            return self.id_value(draw, spec.get("references") or self.entity)
        return text_value(draw, 0, 40)

    def hostile(self, draw: Draw) -> tuple[dict[str, Any], str | None]:
        """Filters at and past the limits (depth 8, 100 conditions, 500 values per list)."""
        leaf = {"field": "id", "op": "eq", "value": str(draw(st.uuids()))}
        kind = draw(st.sampled_from(["deep", "wide", "at_depth_limit", "at_condition_limit", "long_list"]))
        if kind in ("deep", "at_depth_limit"):
            wrappers = 7 if kind == "at_depth_limit" else draw(st.integers(8, 120))
            node: dict[str, Any] = leaf
            for _ in range(wrappers):
                how = draw(st.sampled_from(["not", "and", "or"]))
                node = {"not": node} if how == "not" else {how: [node]}
            return {"filter": node}, ("ok" if kind == "at_depth_limit" else "error")
        if kind in ("wide", "at_condition_limit"):
            count = 100 if kind == "at_condition_limit" else draw(st.integers(101, 400))
            split = draw(st.integers(1, 4))
            groups = [[leaf] * (count // split) for _ in range(split)]
            groups[-1] += [leaf] * (count - sum(len(g) for g in groups))
            tree = {draw(st.sampled_from(["and", "or"])): [{"or": g} for g in groups]}
            return {"filter": tree, "include_total": True}, ("ok" if kind == "at_condition_limit" else "error")
        count = draw(st.sampled_from([500, 501, 5000]))
        values = [str(draw(st.uuids()))] * count
        return {"filter": {"field": "id", "op": draw(st.sampled_from(["in", "not_in"])), "value": values}}, (
            "ok" if count <= 500 else "error"
        )

    def cursor_case(self, draw: Draw) -> tuple[dict[str, Any], str | None]:
        """A real next_cursor with its own arguments (must work), with other arguments, or tampered with."""
        assert self.entity is not None
        real = self.s.cursors[self.entity][0]
        kind = draw(st.sampled_from(["real", "other_sort", "tampered", "garbage"]))
        if kind == "real":
            return {"limit": 2, "cursor": real}, "ok"
        if kind == "other_sort":
            return {"limit": 2, "cursor": real, "sort": [{"field": "updated_at", "direction": "desc"}]}, "error"
        if kind == "garbage":
            return {"cursor": text_value(draw, 0, 2000)}, None
        payload = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
        how = draw(st.sampled_from(["values", "values", "length", "shape"]))
        if how == "values":
            edges = INT_EDGES + NUMBER_EDGES + DATETIME_EDGES + DATE_EDGES + WRONG
            payload["v"] = [draw(st.one_of(st.sampled_from(edges), JSON)) for _ in payload["v"]]
        elif how == "length":
            payload["v"] = payload["v"][: draw(st.integers(0, len(payload["v"]) - 1))] or payload["v"] * 2
        else:
            payload = draw(st.one_of(JSON, st.just({"v": payload["v"]}), st.just({"q": payload["q"]})))
        encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
        return {"limit": 2, "cursor": encoded}, None

    # -- mutations -----------------------------------------------------------------------------------------------

    def mutate(self, draw: Draw, arguments: dict[str, Any]) -> dict[str, Any]:
        """One thing made wrong somewhere in otherwise generated arguments."""
        spots = list(_spots(arguments))  # (container, key) pairs
        how = draw(st.sampled_from(["wrong_value", "wrong_value", "drop", "unknown_key", "all_null"]))
        if how == "all_null":
            return {k: None for k in arguments}
        if how == "unknown_key" or not spots:
            containers = [arguments] + [c for c, _ in spots if isinstance(c, dict)]
            target = draw(st.sampled_from(containers))
            typo = draw(st.sampled_from(["emial", "nmae", "ID", "filter ", "$where", "__proto__"]))
            target[typo] = draw(JSON)
            return arguments
        container, key = draw(st.sampled_from(spots))
        if how == "drop" and isinstance(container, dict):
            del container[key]
        else:
            container[key] = draw(st.one_of(st.sampled_from(WRONG + INT_EDGES + NUMBER_EDGES), JSON))
        return arguments


_NONE = object()


@functools.cache
def _regex(pattern: str, low: int, high: int) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True).filter(lambda s: low <= len(s) <= high)


def _spots(value: Any, depth: int = 0) -> Iterator[tuple[Any, Any]]:
    if depth > 20:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield value, key
            yield from _spots(item, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield value, index
            yield from _spots(item, depth + 1)


# ---------------------------------------------------------------------------------------------------------------
# 1. Every tool, generated arguments.
# ---------------------------------------------------------------------------------------------------------------


def _fuzz(s: Session, tool: Tool) -> Callable[[st.DataObject], None]:
    arguments = Arguments(s, tool)

    def fuzz_one(data: st.DataObject) -> None:
        s.stats.examples += 1
        for _ in range(data.draw(st.integers(1, 3), label="calls")):
            args, expect = arguments.draw(data.draw)
            note(f"{tool.name} {shown(args)} expect={expect}")
            s.checked(tool.name, args, expect)

    return fuzz_one


def test_every_tool_answers_generated_arguments_cleanly_and_refusals_change_nothing(session: Session) -> None:
    s = session
    s.build_world()
    s.refresh_ids()
    for tool, arguments in REGRESSIONS:
        if any(t.name == tool for t in s.tools):
            s.checked(tool, _filled(s, arguments))
    per_tool = max(3, math.ceil(settings.default.max_examples / len(s.tools)))
    for tool in s.tools:
        s.refresh_ids()
        run = settings(max_examples=per_tool)(given(data=st.data())(_fuzz(s, tool)))
        if settings.default.derandomize:  # a different (fixed) sequence for each tool
            run = seed(zlib.crc32(tool.name.encode()))(run)
        run()
    s.check_foreign_untouched()

    stats = s.stats
    print(
        f"\nfuzz [{s.url.split(':')[0]}]: {len(s.tools)} tools, {stats.examples} examples, {stats.calls} calls, "
        f"{stats.ok} ok, {stats.refused} refused, known bugs hit: {dict(stats.known) or 'none'}, "
        f"schema-invalid arguments accepted: {len(stats.lenient)}"
    )
    for line in stats.lenient[:5]:
        print(f"  accepted although schema-invalid: {line}")
    untouched = [t.name for t in s.tools if not stats.per_tool[t.name]]
    assert not untouched, f"tools never called: {untouched}"
    assert stats.ok >= stats.calls // 10, f"only {stats.ok} of {stats.calls} calls succeeded: the generator is off"


# ---------------------------------------------------------------------------------------------------------------
# 2. A model of contacts and organizations, checked against the server after every step.
# ---------------------------------------------------------------------------------------------------------------

MODELLED = ("contacts", "organizations")
OTHER = {"contacts": "organizations", "organizations": "contacts"}
LINK_INPUT = {"contacts": "organization_ids", "organizations": "contact_ids"}
LINK_OUTPUT = {"contacts": "organizations", "organizations": "contacts"}
NAME = st.text(st.sampled_from("aAbZ \u00e4\u00e9\u00df\U0001f600\u0639"), min_size=1, max_size=5)  # few letters: ties
TAGS = st.lists(st.sampled_from(["vip", "VIP", "lead", "\u00df", "\U0001f600"]), max_size=3, unique=True)
REQUIRED = {"contacts": {"first_name": NAME, "last_name": NAME}, "organizations": {"name": NAME}}
OPTIONAL = {
    "contacts": {"job_title": st.none() | NAME, "tags": TAGS},
    "organizations": {"industry": st.none() | NAME, "employee_count": st.none() | st.integers(0, 3), "tags": TAGS},
}
DEFAULTS = {
    "contacts": {"job_title": None, "tags": []},
    "organizations": {"industry": None, "employee_count": None, "tags": []},
}
NOT_FOUND = {"contacts": "No contact with id", "organizations": "No organization with id"}


def rarely(data: st.DataObject) -> bool:
    """True about one time in six (a step's invalid variant)."""
    return data.draw(st.sampled_from([False] * 5 + [True]))


def _moment(value: Any) -> Any:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value


def _in_order(a: dict[str, Any], b: dict[str, Any], keys: list[tuple[str, bool]]) -> bool:
    """Whether a may come before b: empty values first ascending and last descending, then the id."""
    for name, desc in [*keys, ("id", keys[-1][1])]:
        x, y = a[name], b[name]
        if name.endswith("_at"):
            x, y = _moment(x), _moment(y)
        if x == y:
            continue
        smaller = x is None or (y is not None and x < y)
        return smaller != desc
    return True


class ContactsAndOrganizations(RuleBasedStateMachine):
    """The model: live records (field values, revision, created_at), the trash (records as deleted), and the
    membership pairs (contact id, organization id), kept while neither end is purged and shown while both are live."""

    s: ClassVar[Session]

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in MODELLED}
        self.trash: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in MODELLED}
        self.purged: dict[str, list[str]] = {e: [] for e in MODELLED}
        self.pairs: set[tuple[str, str]] = set()
        self.touched: set[tuple[str, str]] = set()
        self.sortable = {e: [f["name"] for f in self.s.configs[e]["fields"] if f["sortable"]] for e in MODELLED}
        self.kinds = {e: {f["name"]: f["type"] for f in self.s.configs[e]["fields"]} for e in MODELLED}

    # -- the model ---------------------------------------------------------------------------------------------------

    @staticmethod
    def pair(entity: str, own: str, other: str) -> tuple[str, str]:
        return (own, other) if entity == "contacts" else (other, own)

    def shown_links(self, entity: str, rid: str) -> list[str]:
        other = OTHER[entity]
        if entity == "contacts":
            return sorted(o for c, o in self.pairs if c == rid and o in self.live[other])
        return sorted(c for c, o in self.pairs if o == rid and c in self.live[other])

    def set_links(self, entity: str, rid: str, ids: list[str]) -> None:
        """`organization_ids` / `contact_ids` replace the links to live records; links to trashed ones stay."""
        other = OTHER[entity]
        self.touched |= {(other, x) for x in [*ids, *self.shown_links(entity, rid)]}
        own, their = MODELLED.index(entity), MODELLED.index(other)
        self.pairs = {p for p in self.pairs if not (p[own] == rid and p[their] in self.live[other])}
        self.pairs |= {self.pair(entity, rid, x) for x in ids}

    def expect(self, entity: str, rid: str, record: dict[str, Any]) -> None:
        model = self.live[entity][rid]
        where = f"{entity} {rid}"
        got = {k: record[k] for k in model["values"]}
        assert got == model["values"], f"{where}: fields {got} but the model has {model['values']}"
        assert record["revision"] == model["revision"], (
            f"{where}: revision {record['revision']}, model {model['revision']}"
        )
        assert record["created_at"] == model["created_at"], f"{where}: created_at changed"
        links = sorted(x["id"] for x in record[LINK_OUTPUT[entity]])
        assert links == self.shown_links(entity, rid), f"{where}: links {links}, model {self.shown_links(entity, rid)}"

    def created(self, entity: str, record: dict[str, Any], values: dict[str, Any]) -> None:
        self.live[entity][record["id"]] = {
            "values": DEFAULTS[entity] | {k: v for k, v in values.items() if k != LINK_INPUT[entity]},
            "revision": 1,
            "created_at": record["created_at"],
        }
        self.set_links(entity, record["id"], values.get(LINK_INPUT[entity], []))
        self.touched.add((entity, record["id"]))

    def changed(self, entity: str, rid: str, changes: dict[str, Any]) -> None:
        model = self.live[entity][rid]
        fields = {k: v for k, v in changes.items() if k in model["values"]}
        links = changes.get(LINK_INPUT[entity])
        effective = any(model["values"][k] != v for k, v in fields.items()) or (
            links is not None and sorted(links) != self.shown_links(entity, rid)
        )
        model["values"] |= fields
        if links is not None:
            self.set_links(entity, rid, links)
        if effective:
            model["revision"] += 1
        self.touched.add((entity, rid))

    # -- drawing -----------------------------------------------------------------------------------------------------

    def values(self, data: st.DataObject, entity: str, partial: bool) -> dict[str, Any]:
        fields = REQUIRED[entity] | OPTIONAL[entity]
        if partial:
            return data.draw(st.fixed_dictionaries({}, optional=fields))
        return data.draw(st.fixed_dictionaries(REQUIRED[entity], optional=OPTIONAL[entity]))

    def some(self, data: st.DataObject, ids: Any, low: int = 0, high: int = 2) -> list[str]:
        ids = sorted(ids)
        if not ids:
            return []
        return data.draw(st.lists(st.sampled_from(ids), min_size=min(low, len(ids)), max_size=high, unique=True))

    def gone_id(self, data: st.DataObject, entity: str) -> str | None:
        """An id that cannot be linked or changed: trashed, purged, or never there."""
        choices = sorted(self.trash[entity]) + self.purged[entity] + [str(data.draw(st.uuids()))]
        return data.draw(st.sampled_from(choices))

    def links(self, data: st.DataObject, entity: str) -> list[str] | None:
        if not data.draw(st.booleans()):
            return None
        return self.some(data, self.live[OTHER[entity]])

    # -- steps -------------------------------------------------------------------------------------------------------

    @rule(data=st.data(), entity=st.sampled_from(MODELLED))
    def create(self, data: st.DataObject, entity: str) -> None:
        values = self.values(data, entity, partial=False)
        links = self.links(data, entity)
        if links is not None:
            values[LINK_INPUT[entity]] = links
        if rarely(data):  # a link to a record that is not there: refused whole
            values[LINK_INPUT[entity]] = [*(links or []), self.gone_id(data, OTHER[entity])]
            self.s.refused(f"{entity}_create", values)
            return
        record = self.s.must(f"{entity}_create", values)
        self.created(entity, record, values)
        self.expect(entity, record["id"], record)

    @rule(data=st.data(), entity=st.sampled_from(MODELLED))
    def create_many(self, data: st.DataObject, entity: str) -> None:
        items = [self.values(data, entity, partial=False) for _ in range(data.draw(st.integers(1, 3)))]
        for item in items:
            if (links := self.links(data, entity)) is not None:
                item[LINK_INPUT[entity]] = links
        if rarely(data):  # one bad item: nothing is created
            bad = data.draw(st.sampled_from(items))
            bad[next(iter(REQUIRED[entity]))] = ""
            self.s.refused(f"{entity}_create_many", {"items": items})
            return
        result = self.s.must(f"{entity}_create_many", {"items": items})
        assert result["count"] == len(items)
        for summary, item in zip(result["items"], items, strict=True):
            record = self.s.must(f"{entity}_get", {"id": summary["id"]})
            self.created(entity, record, item)

    @precondition(lambda self: any(self.live.values()))
    @rule(data=st.data())
    def update(self, data: st.DataObject) -> None:
        entity = data.draw(st.sampled_from([e for e in MODELLED if self.live[e]]))
        rid = data.draw(st.sampled_from(sorted(self.live[entity])))
        changes = self.values(data, entity, partial=True)
        if (links := self.links(data, entity)) is not None:
            changes[LINK_INPUT[entity]] = links
        revision = self.live[entity][rid]["revision"]
        how = data.draw(st.sampled_from(["plain", "plain", "plain", "expected", "stale", "gone_link", "null"]))
        arguments = changes | {"id": rid}
        if how == "expected":
            arguments["expected_revision"] = revision
        elif how == "stale":
            arguments["expected_revision"] = data.draw(
                st.sampled_from([r for r in (revision - 1, revision + 1) if r >= 1])
            )
            self.s.refused(f"{entity}_update", arguments)
            return
        elif how == "gone_link":
            arguments[LINK_INPUT[entity]] = [*(links or []), self.gone_id(data, OTHER[entity])]
            self.s.refused(f"{entity}_update", arguments)
            return
        elif how == "null":  # a required field cannot be emptied
            arguments[next(iter(REQUIRED[entity]))] = None
            self.s.refused(f"{entity}_update", arguments, "cannot be null")
            return
        record = self.s.must(f"{entity}_update", arguments)
        self.changed(entity, rid, changes)
        self.expect(entity, rid, record)

    @precondition(lambda self: any(len(ids) >= 2 for ids in self.live.values()))
    @rule(data=st.data())
    def update_many(self, data: st.DataObject) -> None:
        entity = data.draw(st.sampled_from([e for e in MODELLED if len(self.live[e]) >= 2]))
        ids = self.some(data, self.live[entity], low=2, high=3)
        items = [self.values(data, entity, partial=True) | {"id": rid} for rid in ids]
        if rarely(data):  # one item names a record that is not there: nothing changes
            items.append(self.values(data, entity, partial=True) | {"id": self.gone_id(data, entity)})
            self.s.refused(f"{entity}_update_many", {"items": items}, NOT_FOUND[entity])
            return
        self.s.must(f"{entity}_update_many", {"items": items})
        for item in items:
            self.changed(entity, item["id"], {k: v for k, v in item.items() if k != "id"})

    @precondition(lambda self: any(self.live.values()))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        entity = data.draw(st.sampled_from([e for e in MODELLED if self.live[e]]))
        rid = data.draw(st.sampled_from(sorted(self.live[entity])))
        revision = self.live[entity][rid]["revision"]
        expected = data.draw(st.sampled_from([None, revision, revision + 1]))
        arguments = {"id": rid} | ({"expected_revision": expected} if expected else {})
        if expected == revision + 1:
            self.s.refused(f"{entity}_delete", arguments)
            return
        deleted = self.s.must(f"{entity}_delete", arguments)["deleted"]
        self.expect(entity, rid, deleted)
        self.trashed(entity, [rid])

    @precondition(lambda self: any(self.live.values()))
    @rule(data=st.data())
    def delete_many(self, data: st.DataObject) -> None:
        entity = data.draw(st.sampled_from([e for e in MODELLED if self.live[e]]))
        ids = self.some(data, self.live[entity], low=1, high=3)
        if rarely(data):  # one of them is already gone: nothing is deleted
            self.s.refused(f"{entity}_delete_many", {"ids": [*ids, self.gone_id(data, entity)]}, NOT_FOUND[entity])
            return
        result = self.s.must(f"{entity}_delete_many", {"ids": ids})
        assert sorted(result["deleted_ids"]) == sorted(ids)
        self.trashed(entity, ids)

    def trashed(self, entity: str, ids: list[str]) -> None:
        for rid in ids:
            self.trash[entity][rid] = self.live[entity].pop(rid)
            self.touched.add((entity, rid))
            self.touched |= {(OTHER[entity], x) for x in self.shown_links_any(entity, rid)}

    def shown_links_any(self, entity: str, rid: str) -> list[str]:
        index = MODELLED.index(entity)
        return [p[1 - index] for p in self.pairs if p[index] == rid]

    @precondition(lambda self: any(self.trash.values()))
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        entity = data.draw(st.sampled_from([e for e in MODELLED if self.trash[e]]))
        ids = self.some(data, self.trash[entity], low=1, high=2)
        how = data.draw(st.sampled_from(["ok", "ok", "ok", "ok", "live", "purged"]))
        if how == "live" and self.live[entity]:  # restoring a live record is refused, and so is the whole call
            live = data.draw(st.sampled_from(sorted(self.live[entity])))
            self.s.refused(f"{entity}_restore", {"ids": [*ids, live]}, "is not deleted")
            return
        if how == "purged" and self.purged[entity]:
            gone = data.draw(st.sampled_from(self.purged[entity]))
            self.s.refused(f"{entity}_restore", {"ids": [gone, *ids]}, "is not in the trash")
            return
        result = self.s.must(f"{entity}_restore", {"ids": ids})
        assert [i["id"] for i in result["items"]] == ids
        for rid in ids:
            self.live[entity][rid] = self.trash[entity].pop(rid)
            self.live[entity][rid]["revision"] += 1
            self.touched.add((entity, rid))
            self.touched |= {(OTHER[entity], x) for x in self.shown_links_any(entity, rid)}

    @precondition(lambda self: any(self.trash.values()))
    @rule(data=st.data())
    def purge(self, data: st.DataObject) -> None:
        ids = self.some(data, [(e, rid) for e in MODELLED for rid in self.trash[e]], low=1, high=2)
        if rarely(data) and any(self.live.values()):  # a live id: nothing is purged
            entity = data.draw(st.sampled_from([e for e in MODELLED if self.live[e]]))
            live = data.draw(st.sampled_from(sorted(self.live[entity])))
            self.s.refused("trash_purge", {"ids": [rid for _, rid in ids] + [live]}, "Not in the trash")
            return
        result = self.s.must("trash_purge", {"ids": [rid for _, rid in ids]})
        assert sorted((i["entity"], i["id"]) for i in result["items"]) == sorted(ids)
        for entity, rid in ids:
            del self.trash[entity][rid]
            self.purged[entity].append(rid)
            index = MODELLED.index(entity)
            self.pairs = {p for p in self.pairs if p[index] != rid}
            self.touched.add((entity, rid))

    @precondition(lambda self: any(self.trash.values()) or any(self.purged.values()))
    @rule(data=st.data(), verb=st.sampled_from(["update", "delete", "get"]))
    def touch_a_gone_record(self, data: st.DataObject, verb: str) -> None:
        """Updating, deleting or reading a trashed or purged record is refused and changes nothing."""
        entity = data.draw(st.sampled_from([e for e in MODELLED if self.trash[e] or self.purged[e]]))
        rid = data.draw(st.sampled_from(sorted(self.trash[entity]) + self.purged[entity]))
        arguments = {"id": rid} | (self.values(data, entity, partial=True) if verb == "update" else {})
        self.s.refused(f"{entity}_{verb}", arguments, NOT_FOUND[entity])

    @precondition(lambda self: any(self.live.values()))
    @rule(data=st.data())
    def restore_a_live_record(self, data: st.DataObject) -> None:
        entity = data.draw(st.sampled_from([e for e in MODELLED if self.live[e]]))
        rid = data.draw(st.sampled_from(sorted(self.live[entity])))
        self.s.refused(f"{entity}_restore", {"ids": [rid]}, "is not deleted")

    @rule(data=st.data(), entity=st.sampled_from(MODELLED))
    def list_sorted_in_pages(self, data: st.DataObject, entity: str) -> None:
        """Any sort, any page size: the pages hold every live record once, in the order one big page has."""
        fields = st.sampled_from(self.sortable[entity])
        keys = data.draw(
            st.lists(
                st.fixed_dictionaries({"field": fields, "direction": st.sampled_from(["asc", "desc"])}),
                min_size=1,
                max_size=3,
                unique_by=lambda k: k["field"],
            )
        )
        whole = self.s.pages(f"{entity}_list", {"sort": keys}, limit=200)
        paged = self.s.pages(f"{entity}_list", {"sort": keys}, limit=data.draw(st.integers(1, 3)))
        assert [i["id"] for i in paged] == [i["id"] for i in whole], f"pages disagree with one page, sort {keys}"
        assert sorted(i["id"] for i in whole) == sorted(self.live[entity])
        ordered = [(k["field"], k["direction"] == "desc") for k in keys]
        if all(self.kinds[entity][name] != "text" for name, _ in ordered):  # text order is the database's collation
            for a, b in itertools.pairwise(whole):
                assert _in_order(a, b, ordered), f"sort {keys}: {a['id']} listed before {b['id']}"

    # -- the check after every step ----------------------------------------------------------------------------------

    @invariant()
    def server_agrees_with_the_model(self) -> None:
        for entity in MODELLED:
            items = self.s.pages(f"{entity}_list", {}, limit=10)
            expected = sorted(self.live[entity], key=lambda r: (_moment(self.live[entity][r]["created_at"]), r))
            assert [i["id"] for i in items] == expected, f"{entity}_list disagrees with the model"
            for item in items:
                self.expect(entity, item["id"], item)
        trash = self.s.pages("trash_list", {}, limit=10)
        assert sorted((t["entity"], t["id"]) for t in trash) == sorted(
            (e, rid) for e in MODELLED for rid in self.trash[e]
        ), "trash_list disagrees with the model"
        for entity, rid in sorted(self.touched):
            if rid in self.live[entity]:
                self.expect(entity, rid, self.s.must(f"{entity}_get", {"id": rid}))
            else:
                self.s.refused(f"{entity}_get", {"id": rid}, NOT_FOUND[entity])
        self.touched.clear()

    def teardown(self) -> None:
        """Empties the workspace for the next example, from what the server lists (not from the model)."""
        for entity in MODELLED:
            ids = [i["id"] for i in self.s.pages(f"{entity}_list", {})]
            for start in range(0, len(ids), 50):
                self.s.must(f"{entity}_delete_many", {"ids": ids[start : start + 50]})
        ids = [t["id"] for t in self.s.pages("trash_list", {})]
        for start in range(0, len(ids), 50):
            self.s.must("trash_purge", {"ids": ids[start : start + 50]})


def test_lists_gets_and_the_trash_agree_with_a_model_of_contacts_and_organizations(session: Session) -> None:
    session.lazy = True
    session.configs = {e: session.must(f"{e}_config") for e in MODELLED}
    ContactsAndOrganizations.s = session
    examples = max(20, settings.default.max_examples // 25)  # ci: 20, long: 200
    run_state_machine_as_test(ContactsAndOrganizations, settings=settings(max_examples=examples))
    print(f"\nstate machine [{session.url.split(':')[0]}]: {examples} examples, {session.stats.calls} calls")
