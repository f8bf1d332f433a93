"""The database: runs a unit of work (a plain function of a SQLAlchemy Connection) in one transaction.

SQLite: the standard sqlite3 driver on a worker thread, one thread hop per call (a driver that hops to its
thread for every cursor operation costs several times more per call); WAL, foreign keys on, a busy timeout,
and write transactions that take the write lock up front. The hop goes to the database's own threads rather
than anyio's (`_in_thread`), each thread keeps its connection between calls, and the process's write
transactions take turns on a lock before SQLite's (`_transaction`). PostgreSQL:
asyncpg, the same work run through SQLAlchemy's greenlet bridge. The operations layer is the same code on both."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mcp_crm.store.types import json_text, json_value

T = TypeVar("T")
log = logging.getLogger("mcp_crm")
SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite", "sqlite+aiosqlite")
# Calls at once; more wait for a free thread. Each thread keeps a connection of SQLAlchemy's pool, which holds that
# many (it allowed 5 + 10 overflow before, so as many calls at once as now).
SQLITE_THREADS = 15
POSTGRES_TRUSTED_IDLE_S = 5.0  # a pooled connection used this recently is not pinged before its next use
SQLITE_THREAD_IDLE_S = 10.0  # a thread idle this long ends, closing its connection (anyio's threads: 10 s too)


class UnsupportedDatabase(ValueError):
    pass


class Database:
    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.url = url
        self.is_sqlite = parsed.drivername in SQLITE_DRIVERS
        self._threads: _Threads | None = None  # SQLite's, started with its first call
        self._kept = threading.local()  # each of those threads' connection, kept between its calls
        # This process's writes take turns here rather than in SQLite's busy handler, which polls with sleeps of
        # up to 100 ms: with 8 writers at once the slowest create took 1.25 s that way. Other processes on the
        # same file still meet the busy timeout.
        self._writing = threading.Lock()
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self._sqlite: Engine | None = _sqlite_engine(str(parsed.set(drivername="sqlite+pysqlite")))
            self._postgres: AsyncEngine | None = None
        elif parsed.get_backend_name() == "postgresql":
            self._sqlite = None
            self._postgres = create_async_engine(
                str(parsed.set(drivername="postgresql+asyncpg")),
                json_serializer=json_text,
                json_deserializer=json_value,
                hide_parameters=True,  # errors are logged; the values (secrets, personal data) stay out of logs
            )
            _ping_when_idle(self._postgres)
        else:
            raise UnsupportedDatabase(
                f"unsupported URL scheme {parsed.drivername!r}; use sqlite:////absolute/path.db or "
                "postgresql://user:password@host:5432/db"
            )

    @property
    def dialect(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await self._run(work, write=False)

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Committed when `work` returns, rolled back when it raises."""
        return await self._run(work, write=True)

    async def _run(self, work: Callable[[Connection], T], write: bool) -> T:
        if self._sqlite is not None:
            return await self._in_thread(self._transaction, work, write)
        assert self._postgres is not None
        async with self._postgres.connect() as conn, conn.begin():
            return await conn.run_sync(work)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on one of the database's threads, as anyio.to_thread.run_sync would run it (in a copy of the
        caller's context; a caller cancelled meanwhile still waits for it to finish, so a transaction never outlives
        its call), with less bookkeeping around it: the thread hands the result straight to the event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on asyncio (trio): anyio's threads
            return await anyio.to_thread.run_sync(fn, *args)
        await anyio.lowlevel.checkpoint_if_cancelled()
        done: asyncio.Future[T] = loop.create_future()
        context = contextvars.copy_context()
        if self._threads is None:
            self._threads = _Threads(SQLITE_THREADS, SQLITE_THREAD_IDLE_S, at_exit=self._release_kept)
        self._threads.submit(lambda: context.run(fn, *args), lambda result, exc: _hand_over(loop, done, result, exc))
        with anyio.CancelScope(shield=True):
            return await done

    def _transaction(self, work: Callable[[Connection], T], write: bool) -> T:
        """On a database thread: `work` in one transaction, on the connection this thread keeps between its calls
        (taking one from the pool and giving it back for each call cost ~10 us in a loop, ~50 us inside a whole tool
        call). A connection whose call failed, or that `work` gave execution options of its own, is closed instead
        of kept, so each call starts as on a fresh connection."""
        assert self._sqlite is not None
        conn: Connection | None = getattr(self._kept, "conn", None)
        self._kept.conn = None
        if conn is None:
            conn = self._sqlite.connect()
        keep = False
        try:
            conn.execution_options(write=write)
            with self._writing if write else contextlib.nullcontext(), conn.begin():
                result = work(conn)
            keep = conn.get_execution_options() == {"write": write} and not conn.invalidated
            return result
        finally:
            if keep:
                self._kept.conn = conn
            else:
                conn.close()

    def _release_kept(self) -> None:
        """On a database thread that ends: its kept connection goes back to the pool."""
        conn: Connection | None = getattr(self._kept, "conn", None)
        self._kept.conn = None
        if conn is not None:
            conn.close()

    async def dispose(self) -> None:
        if self._threads is not None:
            threads, self._threads = self._threads, None
            await anyio.to_thread.run_sync(threads.close)  # a call still running finishes first
        if self._sqlite is not None:
            self._sqlite.dispose()
        if self._postgres is not None:
            await self._postgres.dispose()


class _Threads:
    """The threads a SQLite database runs its calls on. A call goes to an idle thread, else to a new one while
    there are fewer than `limit`, else waits for the first one to finish. A thread counts as idle again before it
    hands its result over, so back-to-back calls stay on one thread and its kept connection (with a
    ThreadPoolExecutor, whose threads count as idle only after, they spread over several threads and connections,
    each colder). A thread idle for `idle_s` ends, as all do at close(); each calls `at_exit` on its way out."""

    def __init__(self, limit: int, idle_s: float, at_exit: Callable[[], None]) -> None:
        self._limit, self._idle_s, self._at_exit = limit, idle_s, at_exit
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Callable[[Any, BaseException | None], None]] | None]
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._idle = 0  # threads waiting for a job that no call has claimed yet
        self._queued = 0  # jobs that found every thread busy and no room for another

    def submit(self, work: Callable[[], Any], deliver: Callable[[Any, BaseException | None], None]) -> None:
        """Runs `work` on a thread, then `deliver(result, None)` or `deliver(None, exception)` there."""
        with self._lock:
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self._limit:
                thread = threading.Thread(target=self._serve, name=f"mcp-crm-sqlite-{len(self._threads)}", daemon=True)
                self._threads.add(thread)
                thread.start()
            else:
                self._queued += 1
        self._jobs.put((work, deliver))

    def close(self) -> None:
        """Ends every thread once the calls already submitted are done, and waits for them."""
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join()

    def _serve(self) -> None:
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=self._idle_s)
                except queue.Empty:
                    with self._lock:
                        if not self._idle:  # every idle thread is claimed by a call whose job is on its way
                            continue
                        self._idle -= 1
                        return
                if job is None:
                    return
                work, deliver = job
                try:
                    result, error = work(), None
                except BaseException as exc:  # handed to the caller, which raises it
                    result, error = None, exc
                with self._lock:
                    if self._queued:  # the next job waiting in the queue is this thread's
                        self._queued -= 1
                    else:
                        self._idle += 1
                try:
                    deliver(result, error)
                except Exception:
                    log.exception("could not hand a database call's result over")
                del job, work, deliver, result, error
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())
            self._at_exit()


def _hand_over(
    loop: asyncio.AbstractEventLoop, done: asyncio.Future[Any], result: Any, exc: BaseException | None
) -> None:
    """Settles `done` on its event loop, from a database thread."""

    def settle() -> None:
        if done.cancelled():
            return
        if exc is None:
            done.set_result(result)
        else:
            done.set_exception(exc)

    with contextlib.suppress(RuntimeError):  # the event loop closed meanwhile: nobody is waiting any more
        loop.call_soon_threadsafe(settle)


def _in_transaction(engine: Engine, work: Callable[[Connection], T], write: bool) -> T:
    """`work` in one transaction on a connection of its own (Database uses its threads' kept connections)."""
    with engine.connect() as conn:
        conn = conn.execution_options(write=write)
        with conn.begin():
            return work(conn)


def _ping_when_idle(engine: AsyncEngine) -> None:
    """A pooled PostgreSQL connection idle for a while is pinged before use, and replaced when the server dropped
    it (a restart, a proxy's idle timeout). SQLAlchemy's pool_pre_ping pings before every use, a round trip that
    was a quarter of a contacts_get; a connection returned moments ago is trusted."""

    @event.listens_for(engine.sync_engine, "connect")
    @event.listens_for(engine.sync_engine, "checkin")
    def _used(_dbapi_connection: Any, record: Any) -> None:
        record.info["used_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _alive(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("used_at", 0.0) <= POSTGRES_TRUSTED_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection was dropped: {exc}") from exc  # the pool takes another
        record.info["used_at"] = time.monotonic()


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (a lasting property of the file). Two processes opening a new file at once
    can collide here, and SQLite answers "locked" at once rather than waiting, so retry for a while."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_engine(url: str) -> Engine:
    engine = create_sync_engine(
        url,
        json_serializer=json_text,
        json_deserializer=json_value,
        connect_args={"check_same_thread": False},
        hide_parameters=True,
        pool_size=SQLITE_THREADS,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy's "begin" event below issues BEGIN itself (the driver's own implicit
        # transactions cannot say IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A write transaction takes the write lock up front, so it waits on busy_timeout instead of
        # failing with "database is locked" when it would upgrade from a read lock later.
        # A read's BEGIN (deferred: it takes no lock, so it cannot be busy) goes to the driver directly, which
        # costs a tenth of a statement executed through SQLAlchemy.
        if connection.get_execution_options().get("write", False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.connection.driver_connection.execute("BEGIN")

    return engine
