"""Crash safety: `mcp-crm serve` killed with SIGKILL in the middle of bulk writes loses no acknowledged write
and never leaves a partial one, on SQLite and on PostgreSQL.

Each iteration starts the real server as a subprocess (stdio transport) on the same database and talks to it
with a minimal newline-delimited JSON-RPC client, so the test owns the server's pid and every byte on the pipe.
Two workers send 500-item `contacts_create_many` and `contacts_update_many` calls back to back, each call
carrying its own marker (creates: `job_title`; updates: `notes`, each row updated at most once) and that marker
as its idempotency key; an update first gets its `confirm` token from a dry run, when the tool asks for one.
The server is then SIGKILLed: either after a random delay, or (every other iteration) as soon as the database
shows a write transaction in progress (SQLite: the write lock is held; PostgreSQL: a server backend has a
transaction id, i.e. has already written). The seed of the kill schedule is printed;
set MCP_CRM_CRASH_SEED to replay it (thread timing still varies from run to run).

After each kill, before the next start, the database is read directly (sqlite3 / asyncpg):
- SQLite: `PRAGMA integrity_check` is ok and `PRAGMA foreign_key_check` is empty;
- every acknowledged call (the client got its result) is fully there: all 500 rows, with the ids it returned /
  all 500 updated values, a change event per record, and its idempotency key;
- every unacknowledged call is all there or not there at all, and so are its events and its idempotency key.
The next server start retries the unacknowledged calls with the same idempotency keys (as a client does after
a timeout): a call that did commit must not be written twice. After the last kill a final server drains the
retries, and then every call must be there exactly once.

A cold start of the server costs about five seconds on a 2-core machine (imports, then building the tool
catalog), too much for 20 restarts. So the first server and the last one are cold `python -m mcp_crm serve`
processes with stdio on pipes, and the 19 in between are forked from a fork server that did the imports and
built the (cached) catalog without opening any database: each child runs the same `mcp-crm serve
--database-url ...` command line through `mcp_crm.cli.app`, with a socket as its stdin/stdout. Either way the
pid killed is the server process itself, and its stdout closing is how the client learns it is gone."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from anyio.abc import ByteReceiveStream, ByteSendStream, Process, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

pytestmark = pytest.mark.anyio

ITERATIONS = 20
BATCH = 500  # items per bulk call, the tools' maximum
WORKERS = 2  # calls in flight at once
RANDOM_DELAY = (0.2, 3.0)  # seconds from the server's first answer to the kill, in "random" iterations
PROBE_DELAY = (0.0, 1.5)  # seconds before watching for a write transaction, in "probe" iterations
PROBE_DEADLINE = 5.0  # seconds to wait for a write transaction before killing anyway
ITERATION_TIMEOUT = 90.0
MAX_LINE = 64 * 1024 * 1024
PROTOCOL_VERSION = "2025-06-18"
PREFIX = "crash-"

# A fork server: imports mcp_crm and builds the (cached) tool catalog once, opening no database, then forks one
# child per start. The child puts the socket it was handed on fd 0 and 1 (stdin/stdout) and the log on fd 2, and
# runs the `mcp-crm serve --database-url ...` command line through `mcp_crm.cli.app`, as `python -m mcp_crm` does.
# Commands come over a SOCK_SEQPACKET control socket (fds passed with SCM_RIGHTS); it answers with a number.
FORK_SERVER = """
import json, os, socket, sys, traceback
import mcp_crm.cli
from mcp_crm.catalog.server import build_server
build_server("sqlite:///:memory:")
control = socket.socket(fileno=int(sys.argv[1]))
while True:
    message, fds, _flags, _address = socket.recv_fds(control, 65536, 2)
    if not message:
        break
    command, argument = json.loads(message)
    if command == "wait":
        control.send(str(os.waitstatus_to_exitcode(os.waitpid(argument, 0)[1])).encode())
        continue
    pid = os.fork()
    if pid == 0:
        control.close()
        os.dup2(fds[0], 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in fds:
            os.close(fd)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        sys.argv = ["mcp-crm", "serve", "--database-url", argument]
        code = 1
        try:
            mcp_crm.cli.app()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    control.send(str(pid).encode())
"""


# --- a minimal MCP client over the server's stdin/stdout ------------------------------------------------


class ServerGone(Exception):
    """The server's stdout closed before the answer came."""


class RpcClient:
    def __init__(self, send: ByteSendStream, receive: ByteReceiveStream) -> None:
        self._stdin = send
        self._stdout = BufferedByteReceiveStream(receive)
        self._send_lock = anyio.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, anyio.Event] = {}
        self._replies: dict[int, dict[str, Any]] = {}
        self.closed = False

    async def read_loop(self) -> None:
        try:
            while True:
                message = json.loads(await self._stdout.receive_until(b"\n", MAX_LINE))
                rid = message.get("id")
                if rid in self._waiting and ("result" in message or "error" in message):
                    self._replies[rid] = message
                    self._waiting.pop(rid).set()
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            self.closed = True
            for event in self._waiting.values():
                event.set()
            self._waiting.clear()

    async def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        try:
            async with self._send_lock:
                await self._stdin.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass  # the server is gone; the read loop sees it too

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        rid = next(self._ids)
        event = self._waiting[rid] = anyio.Event()
        if self.closed:
            raise ServerGone
        await self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        await event.wait()
        reply = self._replies.pop(rid, None)
        if reply is None:
            raise ServerGone
        assert "error" not in reply, f"{method} failed: {reply['error']}"
        return reply["result"]

    async def initialize(self) -> None:
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "crash", "version": "0"},
        }
        result = await self.request("initialize", params)
        assert result["serverInfo"]["name"] == "mcp-crm", result
        await self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await self.request("tools/call", {"name": name, "arguments": arguments})
        text = result["content"][0]["text"] if result.get("content") else ""
        assert not result.get("isError"), f"{name} failed: {text[:2000]}"
        structured: dict[str, Any] = result["structuredContent"]
        return structured

    async def tool_arguments(self, name: str) -> set[str]:
        params: dict[str, Any] = {}
        while True:
            page = await self.request("tools/list", params)
            for tool in page["tools"]:
                if tool["name"] == name:
                    return set(tool["inputSchema"].get("properties", {}))
            assert page.get("nextCursor"), f"no tool {name}"
            params = {"cursor": page["nextCursor"]}

    async def aclose(self) -> None:
        await self._stdin.aclose()
        await self._stdout.aclose()

    async def close_input(self) -> None:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await self._stdin.aclose()


@dataclass
class Server:
    pid: int
    client: RpcClient
    wait: Callable[[], Awaitable[int]]  # the exit code; minus the signal number when a signal ended it
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


class Servers:
    """Starts `mcp-crm serve` on one database, cold (`python -m mcp_crm serve`, stdio over pipes) or forked from
    the fork server; every process started here is killed (by its pid) and reaped at the end."""

    def __init__(self, database_url: str, log_dir: Path) -> None:
        self.database_url = database_url
        self.log_dir = log_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_CRM_")}
        self.processes: list[Process] = []
        self.children: list[int] = []
        self.control: socket.socket | None = None
        self.count = 0

    def _log_path(self) -> Path:
        self.count += 1
        return self.log_dir / f"server-{self.count}.log"

    async def cold(self) -> Server:
        log_path = self._log_path()
        with log_path.open("wb") as log:
            process = await anyio.open_process(
                [sys.executable, "-m", "mcp_crm", "serve", "--database-url", self.database_url],
                stderr=log,
                env=self.env,
            )
        self.processes.append(process)
        assert process.stdin is not None and process.stdout is not None
        return Server(process.pid, RpcClient(process.stdin, process.stdout), process.wait, log_path)

    async def start_fork_server(self) -> None:
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs, (self.log_dir / "fork-server.log").open("wb") as log:
            process = await anyio.open_process(
                [sys.executable, "-c", FORK_SERVER, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=self.env,
                pass_fds=[theirs.fileno()],
            )
        self.processes.append(process)

    def _ask(self, command: list[Any], fds: Sequence[int] = ()) -> int:
        assert self.control is not None
        socket.send_fds(self.control, [json.dumps(command).encode()], list(fds))
        answer = self.control.recv(64)
        assert answer, f"the fork server died:\n{(self.log_dir / 'fork-server.log').read_text()[-4000:]}"
        return int(answer)

    async def forked(self) -> Server:
        log_path = self._log_path()
        ours, theirs = socket.socketpair()
        with theirs, log_path.open("wb") as log:
            pid = await anyio.to_thread.run_sync(
                self._ask, ["spawn", self.database_url], [theirs.fileno(), log.fileno()]
            )
        self.children.append(pid)
        stream = await SocketStream.from_socket(ours)

        async def wait() -> int:
            code = await anyio.to_thread.run_sync(self._ask, ["wait", pid])
            self.children.remove(pid)
            return code

        return Server(pid, RpcClient(stream, stream), wait, log_path)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            for pid in self.children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if self.control is not None:
                self.control.close()
            for process in self.processes:
                with anyio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                await process.aclose()


# --- the calls and what must have become of them -----------------------------------------------------------


@dataclass
class Call:
    marker: str
    tool: str
    arguments: dict[str, Any]
    targets: list[str] = field(default_factory=list)  # updates: the ids they change
    ids: list[str] = field(default_factory=list)  # acknowledged creates: the ids they returned
    acked: bool = False
    attempts: int = 0

    @property
    def is_create(self) -> bool:
        return self.tool == "contacts_create_many"


class Ledger:
    """Every call sent, acknowledged or not, and the ids an update may still change (each row at most once)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.calls: list[Call] = []
        self.retries: list[Call] = []
        self.unclaimed: list[str] = []  # ids of acknowledged creates no update has claimed yet
        self.confirm_updates: bool | None = None  # whether contacts_update_many takes a `confirm` token
        self._numbers = itertools.count()

    def next_call(self, *, new: bool = True) -> Call | None:
        if self.retries:
            return self.retries.pop(0)
        if not new:
            return None
        n = next(self._numbers)
        if n % 2 and len(self.unclaimed) >= BATCH:
            marker = f"{PREFIX}{self.tag}-u{n}"
            targets, self.unclaimed = self.unclaimed[:BATCH], self.unclaimed[BATCH:]
            items = [{"id": rid, "notes": marker} for rid in targets]
            call = Call(marker, "contacts_update_many", {"items": items, "idempotency_key": marker}, targets=targets)
        else:
            marker = f"{PREFIX}{self.tag}-c{n}"
            items = [
                {
                    "first_name": f"Crash{i}",
                    "last_name": f"Batch{n}",
                    "job_title": marker,
                    "emails": [{"value": f"{marker}.{i}@example.com", "label": "work", "primary": True}],
                    "tags": ["crash", f"batch-{n}"],
                }
                for i in range(BATCH)
            ]
            call = Call(marker, "contacts_create_many", {"items": items, "idempotency_key": marker})
        self.calls.append(call)
        return call

    def acknowledge(self, call: Call, result: dict[str, Any]) -> None:
        ids = [item["id"] for item in result["items"]]
        assert result["count"] == len(ids) == BATCH, (call.marker, result["count"])
        if call.is_create:
            call.ids = ids
            self.unclaimed.extend(ids)
        else:
            assert ids == call.targets, call.marker
        call.acked = True

    def unacknowledged(self) -> list[Call]:
        return [call for call in self.calls if not call.acked]


async def worker(client: RpcClient, ledger: Ledger, *, new: bool = True) -> None:
    """Sends calls one after another until the server is gone (or, with new=False, the retries are done)."""
    while (call := ledger.next_call(new=new)) is not None:
        call.attempts += 1
        try:
            if not call.is_create and ledger.confirm_updates and "confirm" not in call.arguments:
                # a bulk update of more than a few records runs with the token of its own dry run
                rehearsal = await client.call_tool(call.tool, call.arguments | {"dry_run": True})
                call.arguments["confirm"] = rehearsal["preview"]["confirm"]
            result = await client.call_tool(call.tool, call.arguments)
        except ServerGone:
            ledger.retries.append(call)
            return
        ledger.acknowledge(call, result)


# --- reading the database directly -------------------------------------------------------------------------


@dataclass
class Contents:
    rows: dict[str, tuple[str, str | None, int]]  # crash contact id -> (job_title, notes, revision)
    contacts: int  # all contacts
    events: Counter[tuple[str, str]]  # (record_id, action) of contact change events
    keys: set[str]  # idempotency keys of crash calls


ROWS_SQL = f"SELECT id, job_title, notes, revision FROM contacts WHERE job_title LIKE '{PREFIX}%'"
CONTACTS_SQL = "SELECT count(*) FROM contacts"
EVENTS_SQL = "SELECT record_id, action FROM change_events WHERE entity = 'contacts'"
KEYS_SQL = f"SELECT key FROM idempotency_keys WHERE key LIKE '{PREFIX}%'"


class SqliteInspector:
    def __init__(self, database_url: str) -> None:
        self.path = database_url.removeprefix("sqlite:///")

    def _connect(self, timeout: float = 10.0) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=timeout, isolation_level=None)

    async def writing(self) -> bool:
        """Whether a write transaction holds the lock (the server writes under BEGIN IMMEDIATE)."""
        conn = self._connect(timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return True
            raise
        else:
            conn.execute("ROLLBACK")
            return False
        finally:
            conn.close()

    async def after_kill(self) -> None:
        """The file as the crash left it (read before any server opens it again) is sound."""
        conn = self._connect()
        try:
            integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            assert integrity == ["ok"], integrity
            foreign = conn.execute("PRAGMA foreign_key_check").fetchall()
            assert foreign == [], foreign[:10]
        finally:
            conn.close()

    async def contents(self) -> Contents:
        conn = self._connect()
        try:
            return Contents(
                rows={r[0]: (r[1], r[2], r[3]) for r in conn.execute(ROWS_SQL)},
                contacts=conn.execute(CONTACTS_SQL).fetchone()[0],
                events=Counter((r[0], r[1]) for r in conn.execute(EVENTS_SQL)),
                keys={r[0] for r in conn.execute(KEYS_SQL)},
            )
        finally:
            conn.close()

    async def aclose(self) -> None:
        pass


class PostgresInspector:
    OTHERS = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'"
    )

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, database_url: str) -> PostgresInspector:
        return cls(await asyncpg.connect(database_url, timeout=10))

    async def writing(self) -> bool:
        """Whether a server backend is in a transaction that has already written (it has a transaction id)."""
        found = await self.conn.fetchval(f"{self.OTHERS} AND backend_xid IS NOT NULL")
        return bool(found)

    async def after_kill(self) -> None:
        """Waits until PostgreSQL has noticed the dead client and ended its sessions (rolling back what they had
        not committed), so what is read next is final."""
        deadline = time.monotonic() + 15
        while (left := await self.conn.fetchval(self.OTHERS)) > 0:
            assert time.monotonic() < deadline, f"{left} sessions of the killed server are still open"
            await anyio.sleep(0.02)

    async def contents(self) -> Contents:
        async with self.conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await self.conn.fetch(ROWS_SQL)
            contacts = await self.conn.fetchval(CONTACTS_SQL)
            events = await self.conn.fetch(EVENTS_SQL)
            keys = await self.conn.fetch(KEYS_SQL)
        return Contents(
            rows={r[0]: (r[1], r[2], r[3]) for r in rows},
            contacts=contacts,
            events=Counter((r[0], r[1]) for r in events),
            keys={r[0] for r in keys},
        )

    async def aclose(self) -> None:
        await self.conn.close()


def check(ledger: Ledger, found: Contents) -> dict[str, bool]:
    """Asserts the crash-safety invariants; returns whether each call is applied (marker -> bool)."""
    by_create: dict[str, set[str]] = defaultdict(set)
    by_update: dict[str, set[str]] = defaultdict(set)
    for rid, (job_title, notes, revision) in found.rows.items():
        by_create[job_title].add(rid)
        if notes is not None:
            by_update[notes].add(rid)
        # each crash row is created once and updated at most once, each time with one change event
        assert revision == (2 if notes else 1), (rid, job_title, notes, revision)
        assert found.events[(rid, "created")] == 1, (rid, found.events[(rid, "created")])
        assert found.events[(rid, "updated")] == (1 if notes else 0), (rid, notes, found.events[(rid, "updated")])
    assert found.contacts == len(found.rows), "contacts that no call of this test wrote"
    assert found.events.total() == len(found.rows) + sum(map(len, by_update.values())), "events without their rows"

    markers = {call.marker for call in ledger.calls}
    assert set(by_create) <= markers, set(by_create) - markers
    assert set(by_update) <= markers, set(by_update) - markers
    assert found.keys <= markers, found.keys - markers
    applied = {}
    for call in ledger.calls:
        ids = (by_create if call.is_create else by_update).get(call.marker, set())
        expected = set(call.ids) if call.is_create else set(call.targets)
        if call.is_create:
            assert len(ids) in (0, BATCH), f"{call.marker}: {len(ids)} of {BATCH} rows there (partial create)"
        else:
            assert ids in (set(), expected), f"{call.marker}: {len(ids & expected)} of {BATCH} rows updated (partial)"
        if call.acked:
            assert ids == expected, f"{call.marker}: acknowledged, but {len(ids & expected)} of {BATCH} rows there"
        assert (call.marker in found.keys) == bool(ids), f"{call.marker}: idempotency key and write disagree"
        applied[call.marker] = bool(ids)
    return applied


# --- the test ----------------------------------------------------------------------------------------------


@dataclass
class Figures:
    kills: int = 0
    probe_kills: int = 0
    kills_in_write: int = 0  # kills while the database showed a write transaction in progress
    kills_with_unacked: int = 0
    unacked_at_kill: int = 0
    unacked_creates: int = 0
    unacked_updates: int = 0
    unacked_applied: int = 0
    unacked_absent: int = 0
    rows_checked: int = 0


async def kill_at_random_moment(
    pid: int, inspector: SqliteInspector | PostgresInspector, probe: bool, delay: float
) -> bool:
    """SIGKILLs the server; returns whether a write transaction was seen in progress just before."""
    await anyio.sleep(delay)
    seen = False
    if probe:
        deadline = time.monotonic() + PROBE_DEADLINE
        while not (seen := await inspector.writing()) and time.monotonic() < deadline:
            await anyio.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    return seen


async def work_until_killed(
    server: Server,
    ledger: Ledger,
    inspector: SqliteInspector | PostgresInspector,
    probe: bool,
    delay: float,
    total: int,
) -> bool:
    """Checks the restarted server sees `total` contacts, keeps WORKERS bulk calls in flight, kills it."""
    client = server.client
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.read_loop)
            await client.initialize()
            page = await client.call_tool("contacts_list", {"limit": 1, "include_total": True})
            assert page["total"] == total, f"the restarted server sees {page['total']} contacts, not {total}"
            if ledger.confirm_updates is None:
                ledger.confirm_updates = "confirm" in await client.tool_arguments("contacts_update_many")
            for _ in range(WORKERS):
                tg.start_soon(worker, client, ledger)
            seen = await kill_at_random_moment(server.pid, inspector, probe, delay)
    finally:
        await client.aclose()
    code = await server.wait()
    assert code == -signal.SIGKILL, f"exit {code}:\n{server.log()}"
    return seen


async def drain_retries(server: Server, ledger: Ledger) -> None:
    """Retries every unacknowledged call, then closes stdin: the server must exit on its own, with 0."""
    client = server.client
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.read_loop)
            await client.initialize()
            async with anyio.create_task_group() as workers:
                for _ in range(WORKERS):
                    workers.start_soon(partial(worker, client, ledger, new=False))
            await client.close_input()
    finally:
        await client.aclose()
    code = await server.wait()
    assert code == 0, f"exit {code}:\n{server.log()}"


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(socket, "send_fds") or not hasattr(os, "fork"), reason="POSIX fork and SCM_RIGHTS")
async def test_sigkill_mid_bulk_write_loses_nothing_acknowledged_and_leaves_nothing_partial(
    database_url: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("MCP_CRM_CRASH_SEED") or random.SystemRandom().randrange(10**9))
    rng = random.Random(seed)
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    print(f"\n[crash {backend}] seed {seed} (MCP_CRM_CRASH_SEED={seed} replays the kill schedule)")
    started = time.monotonic()

    ledger = Ledger(tag=f"{seed}")
    figures = Figures()
    servers = Servers(database_url, tmp_path)
    inspector: SqliteInspector | PostgresInspector = (
        SqliteInspector(database_url) if backend == "sqlite" else await PostgresInspector.open(database_url)
    )
    total = 0  # contacts in the database
    committed_unacked: set[str] = set()  # calls that committed but whose answer the kill cut off
    try:
        await servers.start_fork_server()  # imports while the first, cold, server works
        for iteration in range(ITERATIONS):
            probe = iteration % 2 == 1
            delay = rng.uniform(*(PROBE_DELAY if probe else RANDOM_DELAY))
            with anyio.fail_after(ITERATION_TIMEOUT):
                server = await (servers.cold() if iteration == 0 else servers.forked())
                seen = await work_until_killed(server, ledger, inspector, probe, delay, total)
                await inspector.after_kill()
                found = await inspector.contents()
            applied = check(ledger, found)

            unacked = ledger.unacknowledged()
            committed_unacked |= {c.marker for c in unacked if applied[c.marker]}
            figures.kills += 1
            figures.probe_kills += probe
            figures.kills_in_write += seen
            figures.kills_with_unacked += bool(unacked)
            figures.unacked_at_kill += len(unacked)
            figures.unacked_creates += sum(c.is_create for c in unacked)
            figures.unacked_updates += sum(not c.is_create for c in unacked)
            figures.unacked_applied += sum(applied[c.marker] for c in unacked)
            figures.unacked_absent += sum(not applied[c.marker] for c in unacked)
            figures.rows_checked += len(found.rows)
            total = found.contacts
            outcome = ", ".join(
                f"{c.marker.rsplit('-', 1)[1]} {'there' if applied[c.marker] else 'absent'}" for c in unacked
            )
            print(
                f"[crash {backend}] {iteration + 1:2d}/{ITERATIONS} {'probe ' if probe else 'random'} "
                f"kill after {delay:.2f}s{' in a write transaction' if seen else ''}; "
                f"{sum(c.acked for c in ledger.calls)}/{len(ledger.calls)} calls acknowledged; "
                f"unacknowledged: {outcome or 'none'}; {len(found.rows)} rows checked"
            )

        # A last, cold, start of `python -m mcp_crm serve`: it retries what is still unacknowledged.
        with anyio.fail_after(ITERATION_TIMEOUT):
            await drain_retries(await servers.cold(), ledger)
            found = await inspector.contents()
        check(ledger, found)
        assert ledger.unacknowledged() == [], "every call is acknowledged after the final retries"
        creates = [c for c in ledger.calls if c.is_create]
        updates = [c for c in ledger.calls if not c.is_create]
        assert found.contacts == len(found.rows) == BATCH * len(creates), "each create is there exactly once"
        assert sum(notes is not None for _, notes, _ in found.rows.values()) == BATCH * len(updates)
        figures.rows_checked += len(found.rows)
    finally:
        await servers.aclose()
        await inspector.aclose()

    f = figures
    print(
        f"[crash {backend}] {f.kills} kills ({f.probe_kills} probed, {f.kills_in_write} inside a write "
        f"transaction); {len(creates)} contacts_create_many + {len(updates)} contacts_update_many calls of {BATCH} "
        f"items, all acknowledged in the end; {f.unacked_at_kill} calls cut off by {f.kills_with_unacked} kills "
        f"({f.unacked_creates} creates, {f.unacked_updates} updates): {f.unacked_absent} had not committed, "
        f"{f.unacked_applied} had ({len(committed_unacked)} distinct calls, whose retries were replayed, not applied "
        f"twice); {f.rows_checked} rows checked; {time.monotonic() - started:.1f}s"
    )
    # Not vacuous: kills cut off both kinds of call, some before they committed, and probed kills hit open write
    # transactions.
    assert figures.kills == ITERATIONS
    assert figures.kills_with_unacked >= ITERATIONS // 2, figures
    assert figures.unacked_creates >= 1 and figures.unacked_updates >= 1, figures
    assert figures.unacked_absent >= 1, figures
    assert figures.kills_in_write >= figures.probe_kills // 2, figures
