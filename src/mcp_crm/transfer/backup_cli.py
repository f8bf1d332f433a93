"""`mcp-crm backup`, `mcp-crm restore` and `mcp-crm migrate-store` (the work is in transfer/backup.py)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

# mcp_crm.cli imports this module to register the commands, so its names are read lazily: `mcp_crm.cli.DatabaseUrl`
# below is a string Typer resolves when the app runs, and the functions import what they use.
import mcp_crm
from mcp_crm.settings import default_database_url

if TYPE_CHECKING:
    from rich.progress import Progress

    import mcp_crm.cli

T = TypeVar("T")

BackupFile = Annotated[Path, typer.Argument(help="The backup: a .jsonl.gz file.", metavar="FILE.jsonl.gz")]
SourceUrl = Annotated[
    str,
    typer.Option(
        "--from",
        envvar="MCP_CRM_DATABASE_URL",
        help="The database to copy: sqlite:////absolute/path.db (or postgresql://...).",
        default_factory=default_database_url,
        show_default="the crm.db file in your user data folder",
    ),
]


def backup(
    file: BackupFile,
    database_url: mcp_crm.cli.DatabaseUrl,
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="Workspace slug or id.")] = "local",
) -> None:
    """Back up one workspace to a gzip JSON-lines file: its records, links, custom fields, history, trash, webhooks
    and deliveries, search index, users with API key and password hashes, email connections with their passwords
    encrypted (sending from a restored copy needs the same MCP_CRM_SECRET_KEY or data-folder key). Not OAuth
    sign-ins (apps sign in again). Keep the file as safe as the database."""
    from mcp_crm.cli import err, out
    from mcp_crm.transfer.backup import backup_workspace

    start = time.perf_counter()
    with _progress() as progress:
        header = _run(database_url, lambda: backup_workspace(database_url, workspace, file, progress))
    seconds = time.perf_counter() - start
    shown = header["workspace"]
    out.print(
        f"[green]Backed up workspace {shown['slug']}[/green] ({shown['id']}): {header['rows']:,} rows of "
        f"{len(header['tables'])} tables to {file} ({_size(file)}) in {seconds:.1f} s",
        highlight=False,
        soft_wrap=True,
    )
    err.print("It holds API key and password hashes and webhook secrets: keep it as safe as the database.")


def restore(
    file: BackupFile,
    database_url: mcp_crm.cli.DatabaseUrl,
    into_workspace: Annotated[
        str | None,
        typer.Option(
            "--into-workspace",
            help="Restore as this workspace (a slug, or an existing workspace's slug or id); the backup's slug if "
            "left out. The workspace keeps the backup's id.",
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete the workspace's current data and put the backup in its place.")
    ] = False,
    resume_webhooks: Annotated[
        bool,
        typer.Option(
            "--resume-webhooks",
            help="Keep webhook subscriptions active as in the backup; without it they are restored paused.",
        ),
    ] = False,
) -> None:
    """Restore a workspace backup, in one transaction: all of it, counts verified, or nothing. Refuses a file of a
    newer schema, and a workspace that has data unless --replace. Webhooks come back paused unless
    --resume-webhooks."""
    from mcp_crm.cli import out
    from mcp_crm.transfer.backup import restore_workspace

    start = time.perf_counter()
    with _progress() as progress:
        done = _run(
            database_url,
            lambda: restore_workspace(database_url, file, into_workspace, replace, progress, resume_webhooks),
        )
    seconds = time.perf_counter() - start
    replaced = f", replacing {done.replaced}" if done.replaced else ""
    upgraded = f", upgraded from schema {done.upgraded_from}" if done.upgraded_from else ""
    out.print(
        f"[green]Restored workspace {done.workspace['slug']}[/green] ({done.workspace['id']}){replaced}{upgraded}: "
        f"{done.rows:,} rows of {done.tables} tables, counts verified, in {seconds:.1f} s",
        highlight=False,
        soft_wrap=True,
    )
    if done.paused_webhooks:
        out.print(_paused_text(done.paused_webhooks), highlight=False, soft_wrap=True)


def _paused_text(count: int) -> str:
    subscriptions = "webhook was" if count == 1 else "webhooks were"
    return (
        f"{count} {subscriptions} restored paused, so this copy sends no events yet: resume each with "
        "webhooks_update (active: true), or restore with --resume-webhooks."
    )


def migrate_store(
    to: Annotated[
        str,
        typer.Option("--to", help="An empty database: postgresql://user:password@host:5432/db.", show_default=False),
    ],
    source: SourceUrl,
) -> None:
    """Copy a whole database (every workspace and table) into an empty one, e.g. SQLite to PostgreSQL: schema by
    the migrations, rows in batches in one transaction, then counts per table and a sample of rows compared. The
    source is left as it is."""
    from sqlalchemy.engine import make_url

    from mcp_crm.cli import out
    from mcp_crm.transfer.backup import check_empty_target, dump_database, load_database

    if source == to:
        _fail("--from and --to are the same database.", 2)
    start = time.perf_counter()
    _run(to, lambda: check_empty_target(to))
    with tempfile.TemporaryDirectory(prefix="mcp-crm-copy-") as scratch, _progress() as progress:
        copy = Path(scratch) / "copy.jsonl.gz"
        _run(source, lambda: dump_database(source, copy, progress))
        copied = _run(to, lambda: load_database(to, copy, progress))
    seconds = time.perf_counter() - start
    shown = make_url(to).render_as_string(hide_password=True) if "://" in to else to
    rows = sum(copied.tables.values())
    out.print(
        f"[green]Copied {rows:,} rows of {len(copied.tables)} tables[/green] to {shown} in {seconds:.1f} s: "
        f"counts match in every table, {copied.sampled} sampled rows identical.",
        highlight=False,
        soft_wrap=True,
    )
    out.print(f"Use it with --database-url {shown} (or MCP_CRM_DATABASE_URL).", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    import mcp_crm.cli  # noqa: F401  (so `mcp_crm.cli.DatabaseUrl` resolves when Typer reads the signatures)

    app.command("backup")(backup)
    app.command("restore")(restore)
    app.command("migrate-store")(migrate_store)


def _run(database_url: str, work: Callable[[], Awaitable[T]]) -> T:
    """Runs one async step against a database: a database that cannot be opened and a CrmError are each one red
    line and exit code 1."""
    import anyio

    from mcp_crm.cli import _explained_database_errors
    from mcp_crm.errors import CrmError

    try:
        with _explained_database_errors(database_url):
            return anyio.run(work)
    except CrmError as exc:
        _fail(str(exc), 1)


def _fail(text: str, code: int) -> NoReturn:
    from mcp_crm.cli import err

    err.print(text, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _size(path: Path) -> str:
    size = float(path.stat().st_size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@contextmanager
def _progress() -> Iterator[Progress]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mcp_crm.cli import err

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        yield progress
