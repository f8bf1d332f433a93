"""The database: runs a unit of work (a plain function of a SQLAlchemy Connection) in one transaction.

SQLite: the standard sqlite3 driver on a worker thread, one thread hop per call (a driver that hops to its
thread for every cursor operation costs several times more per call); WAL, foreign keys on, a busy timeout,
and write transactions that take the write lock up front. PostgreSQL: asyncpg, the same work run through
SQLAlchemy's greenlet bridge. The operations layer is the same code on both."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mcp_crm.store.types import json_text

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite", "sqlite+aiosqlite")


class UnsupportedDatabase(ValueError):
    pass


class Database:
    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.url = url
        self.is_sqlite = parsed.drivername in SQLITE_DRIVERS
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
                pool_pre_ping=True,
                hide_parameters=True,  # errors are logged; the values (secrets, personal data) stay out of logs
            )
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
            return await anyio.to_thread.run_sync(_in_transaction, self._sqlite, work, write)
        assert self._postgres is not None
        async with self._postgres.connect() as conn, conn.begin():
            return await conn.run_sync(work)

    async def dispose(self) -> None:
        if self._sqlite is not None:
            self._sqlite.dispose()
        if self._postgres is not None:
            await self._postgres.dispose()


def _in_transaction(engine: Engine, work: Callable[[Connection], T], write: bool) -> T:
    with engine.connect() as conn:
        conn = conn.execution_options(write=write)
        with conn.begin():
            return work(conn)


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
        url, json_serializer=json_text, connect_args={"check_same_thread": False}, hide_parameters=True
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
        write = connection.get_execution_options().get("write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
