"""What the benchmarks share: a scratch PostgreSQL database and a description of the machine a run was on."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

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
