"""Writers at once: what eight callers writing to one server at the same time see, against one writer alone.

Each writer calls `contacts_create` in a loop, all through one in-memory client of one server (so they share
its database as the sessions of an HTTP server do); the same number of creates is first made by one writer
alone, on the same database. Printed: creates/s and per-call latency (median, p99, slowest) of both, and the
ratios of the eight writers' figures to the single writer's. Writes to one database are done one at a time
(SQLite has one write lock; PostgreSQL takes row locks), so eight writers cannot be faster than one: the
figures show what waiting costs, and the slowest call whether a writer can starve (before one process's
writes took turns on a lock, SQLite's busy handler made the slowest of 800 creates wait 1.25 s).

    python bench/writers.py                 # 8 writers x 100 creates in a fresh SQLite file
    python bench/writers.py --postgres      # and again in a scratch database on 127.0.0.1:5432
    python bench/writers.py --writers 16 --creates 200

The last line printed is every figure as one JSON object.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import anyio
from benchkit import run_each
from mcp import Client
from rich.console import Console
from rich.table import Table

from mcp_crm.catalog.server import build_server

out = Console(highlight=False)


async def _writers(client: Client, writers: int, creates: int) -> dict[str, float]:
    """`writers` tasks creating `creates` contacts each, all at once, on one client of the server: its calls share
    the server's database as the sessions of an HTTP server do."""
    latencies: list[float] = []

    async def write(n: int) -> None:
        for i in range(creates):
            start = time.perf_counter()
            result = await client.call_tool("contacts_create", {"first_name": f"Writer{n}", "last_name": f"N{i}"})
            latencies.append(time.perf_counter() - start)
            assert not result.is_error, result.content

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for n in range(writers):
            group.start_soon(write, n)
    seconds = time.perf_counter() - start
    latencies.sort()
    return {
        "creates_per_s": writers * creates / seconds,
        "median_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "slowest_ms": latencies[-1] * 1e3,
    }


def measure(writers: int, creates: int) -> Any:
    async def run(url: str) -> dict[str, Any]:
        async with Client(build_server(url, via="cli", worker=False)) as client:
            alone = await _writers(client, 1, writers * creates)
            together = await _writers(client, writers, creates)
        return {
            "database": url.split(":")[0],
            "writers": writers,
            "creates_each": creates,
            "alone": alone,
            "together": together,
            "ratios": {key: together[key] / alone[key] for key in alone},
        }

    return run


def report(result: dict[str, Any]) -> None:
    table = Table(title=f"{result['writers']} writers at once vs one alone ({result['database']})")
    for column in ("", "creates/s", "median ms", "p99 ms", "slowest ms"):
        table.add_column(column, justify="right")
    for name in ("alone", "together", "ratios"):
        row = result[name]
        digits = 2 if name == "ratios" else 1
        table.add_row(name, *(f"{row[k]:,.{digits}f}" for k in ("creates_per_s", "median_ms", "p99_ms", "slowest_ms")))
    out.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--creates", type=int, default=100, help="creates per writer")
    parser.add_argument("--postgres", action="store_true", help="also on a scratch PostgreSQL database")
    parser.add_argument("--database-url", help="an empty database to use instead of a fresh SQLite file")
    args = parser.parse_args()
    run_each("writers", measure(args.writers, args.creates), report, args.postgres, args.database_url)


if __name__ == "__main__":
    main()
