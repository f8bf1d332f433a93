"""What the benchmarks share: running on SQLite and a scratch PostgreSQL database, the machine a run was on,
and the SQL a call sent."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

PG_ADMIN = os.environ.get("MCP_CRM_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def scratch_postgres() -> str:
    """A new, empty database on the local server (drop it with drop_postgres)."""
    name = f"mcp_crm_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"


async def drop_postgres(url: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


def machine_info() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=Path(__file__).parent)
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "src")
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "src_modified_files": len(dirty.splitlines()) if dirty else 0,
    }


@contextmanager
def captured_sql(into: list[tuple[str, Any]]) -> Iterator[None]:
    """Records every statement any engine in this process sends to its driver."""

    def listener(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        into.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", listener)
    try:
        yield
    finally:
        event.remove(Engine, "before_cursor_execute", listener)


def run_each(
    bench: str,
    measure: Callable[[str], Awaitable[dict[str, Any]]],
    report: Callable[[dict[str, Any]], None],
    postgres: bool,
    database_url: str | None = None,
) -> None:
    """Measures on a fresh SQLite file (or `database_url`) and, with `postgres`, on a scratch PostgreSQL database
    dropped afterwards even on failure; reports each run, then prints all of them as one JSON line."""
    results = []
    with tempfile.TemporaryDirectory(prefix="mcp-crm-bench-") as tmp:
        urls = [database_url or f"sqlite:///{Path(tmp) / f'{bench}.db'}"]
        scratch = asyncio.run(scratch_postgres()) if postgres else None
        if scratch:
            urls.append(scratch)
        try:
            for url in urls:
                result = asyncio.run(measure(url))
                report(result)
                results.append(result)
        finally:
            if scratch:
                asyncio.run(drop_postgres(scratch))
    print(json.dumps({"bench": bench, "machine": machine_info(), "runs": results}, default=str), flush=True)
