"""`mcp-crm backup`, `restore` and `migrate-store` on the demo data set (what `mcp-crm demo` loads, ~3,000 rows).

Loads the demo into a fresh database, then times, through the product's code (mcp_crm.transfer.backup, what the
commands run): a backup of the local workspace; its restore into a new, empty database of the same kind (schema
created by the migrations included); the same restore again with --replace (schema in place); and, with
--postgres, migrate-store of the SQLite database into a scratch PostgreSQL one.

    python bench/backup.py                # SQLite
    python bench/backup.py --postgres     # SQLite and PostgreSQL, and migrate-store SQLite -> PostgreSQL

Prints a table and, as the last line, the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchkit import drop_postgres, run_each, scratch_postgres
from rich.console import Console
from rich.table import Table

from mcp_crm.demo import load_demo
from mcp_crm.transfer.backup import backup_workspace, copy_database, restore_workspace

out = Console(highlight=False)


async def measure(url: str, postgres: bool) -> dict[str, Any]:
    await load_demo(url)
    kind = "postgresql" if url.startswith("postgresql") else "sqlite"
    with tempfile.TemporaryDirectory(prefix="mcp-crm-bench-backup-") as tmp:
        file = Path(tmp) / "local.jsonl.gz"
        start = time.perf_counter()
        header = await backup_workspace(url, "local", file)
        backup_s = time.perf_counter() - start

        target = await scratch_postgres() if kind == "postgresql" else f"sqlite:///{Path(tmp) / 'target.db'}"
        try:
            start = time.perf_counter()
            await restore_workspace(target, file)
            restore_s = time.perf_counter() - start
            start = time.perf_counter()
            await restore_workspace(target, file, replace=True)
            replace_s = time.perf_counter() - start
        finally:
            if kind == "postgresql":
                await drop_postgres(target)

        copy_s = None
        if kind == "sqlite" and postgres:
            scratch = await scratch_postgres()
            try:
                start = time.perf_counter()
                await copy_database(url, scratch)
                copy_s = time.perf_counter() - start
            finally:
                await drop_postgres(scratch)
        return {
            "database": kind,
            "rows": header["rows"],
            "file_bytes": file.stat().st_size,
            "backup_s": round(backup_s, 3),
            "restore_new_s": round(restore_s, 3),
            "restore_replace_s": round(replace_s, 3),
            "migrate_store_s": None if copy_s is None else round(copy_s, 3),
        }


def report(result: dict[str, Any]) -> None:
    table = Table(title=f"backup / restore, demo data, {result['database']}", title_justify="left")
    for column in ("rows", "file", "backup", "restore (new db)", "restore --replace", "migrate-store to PG"):
        table.add_column(column, justify="right")
    copy = result["migrate_store_s"]
    table.add_row(
        f"{result['rows']:,}",
        f"{result['file_bytes'] / 1024:,.0f} KB",
        f"{result['backup_s']:.2f} s",
        f"{result['restore_new_s']:.2f} s",
        f"{result['restore_replace_s']:.2f} s",
        "" if copy is None else f"{copy:.2f} s",
    )
    out.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true", help="Also on PostgreSQL, and migrate-store to it.")
    args = parser.parse_args()
    run_each("backup", lambda url: measure(url, args.postgres), report, args.postgres)


if __name__ == "__main__":
    main()
