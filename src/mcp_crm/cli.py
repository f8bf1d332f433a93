"""The `mcp-crm` command."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import anyio
import asyncpg
import typer
from rich.console import Console
from sqlalchemy import Connection, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mcp_crm import __version__
from mcp_crm.settings import default_database_url
from mcp_crm.store.database import UnsupportedDatabase

app = typer.Typer(
    help="mcp-crm: a CRM that AI assistants operate through MCP tools.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)  # stdout belongs to the protocol in stdio mode
out = Console()

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="MCP_CRM_DATABASE_URL",
        help="sqlite:////absolute/path.db or postgresql://user:password@host:5432/db.",
        default_factory=default_database_url,
        show_default="a crm.db file in your user data folder",
    ),
]


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"


@contextmanager
def _explained_database_errors(database_url: str) -> Iterator[None]:
    """A database that cannot be opened is a one-line message and exit code 1, not a traceback."""
    try:
        yield
    except Exception as exc:
        cause = _leaf(exc)
        if not isinstance(cause, OSError | UnsupportedDatabase | DBAPIError | asyncpg.PostgresError):
            raise
        shown = make_url(database_url).render_as_string(hide_password=True) if "://" in database_url else database_url
        reason = cause.orig if isinstance(cause, DBAPIError) else cause
        err.print(
            f"Cannot open the database {shown}: {reason}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(1) from None


def _leaf(exc: BaseException) -> BaseException:
    """The first real exception inside task-group wrappers."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def serve(
    database_url: DatabaseUrl,
    transport: Annotated[Transport, typer.Option(help="stdio for local launchers, http for remote clients.")] = (
        Transport.stdio
    ),
    host: Annotated[str, typer.Option(envvar="MCP_CRM_HOST", help="HTTP bind address (loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="MCP_CRM_PORT", help="HTTP port.")] = 8765,
    log_level: Annotated[str, typer.Option(envvar="MCP_CRM_LOG_LEVEL")] = "WARNING",
) -> None:
    """Run the MCP server (creates and migrates the database on first start)."""
    _logging(log_level)
    if transport is Transport.stdio:
        from mcp_crm.catalog.server import build_server

        with _explained_database_errors(database_url):
            build_server(database_url, via="stdio").run()
        return
    from mcp_crm.transports.http import serve_http

    try:
        with _explained_database_errors(database_url):
            serve_http(database_url, host, port, announce=lambda text: err.print(f"mcp-crm {__version__}: {text}"))
    except ValueError as exc:  # a bind address that is not loopback
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def init(database_url: DatabaseUrl) -> None:
    """Create (or upgrade) the database and print how to connect Claude Desktop or Cursor."""
    from mcp_crm.operations.workspace import local_actor
    from mcp_crm.store import Database, migrate

    async def run() -> None:
        db = Database(database_url)
        try:
            await migrate(db)
            await local_actor(db, via="cli")
        finally:
            await db.dispose()

    with _explained_database_errors(database_url):
        anyio.run(run)
    out.print(f"[green]Database ready:[/green] {database_url}")
    config = {"mcpServers": {"crm": {"command": "mcp-crm", "args": ["serve", "--database-url", database_url]}}}
    out.print("Add this to claude_desktop_config.json or .cursor/mcp.json:")
    out.print_json(json.dumps(config))


@app.command()
def demo(
    database_url: DatabaseUrl,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
) -> None:
    """Load a realistic demo data set (a few hundred related records) into the local workspace."""
    from mcp_crm.demo import load_demo
    from mcp_crm.errors import CrmError

    try:
        with _explained_database_errors(database_url):
            counts = anyio.run(load_demo, database_url, seed)
    except CrmError as exc:
        err.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    summary = ", ".join(f"{n} {e}" for e, n in counts.items())
    out.print(f"[green]Demo data loaded:[/green] {summary}", soft_wrap=True)


@app.command()
def catalog(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if the committed catalog is stale.")] = False,
    directory: Annotated[Path, typer.Option("--dir", help="Where the catalog lives.")] = Path("tool_catalog"),
) -> None:
    """Write tool_catalog/ (tools.json + README.md) from the code, or check it is current."""
    from mcp_crm.catalog.export import stale_files, write

    if check:
        stale = stale_files(directory)
        if stale:
            err.print(f"[red]Stale:[/red] {', '.join(stale)} in {directory}; run `mcp-crm catalog` and commit.")
            raise typer.Exit(1)
        out.print(f"{directory} is current.")
        return
    write(directory)
    out.print(f"Wrote {directory}/tools.json and {directory}/README.md")


audit = typer.Typer(help="The audit log: every committed change.", no_args_is_help=True)
app.add_typer(audit, name="audit")


@audit.command("export")
def audit_export(
    database_url: DatabaseUrl,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSONL file to write; stdout if left out.")] = (
        None
    ),
) -> None:
    """Write every change of every workspace as JSON lines, oldest first."""
    from rich.progress import Progress

    from mcp_crm.operations.audit import every_change
    from mcp_crm.store import Database, migrate
    from mcp_crm.store.tables import CHANGE_EVENTS
    from mcp_crm.store.types import json_text

    def export(conn: Connection, sink: TextIO, progress: Progress | None) -> int:
        total = conn.execute(select(func.count()).select_from(CHANGE_EVENTS)).scalar_one()
        task = progress.add_task("Exporting changes", total=total) if progress else None
        written = 0
        for change in every_change(conn):
            sink.write(json_text(change) + "\n")
            written += 1
            if progress is not None and task is not None and written % 1000 == 0:
                progress.update(task, completed=written)
        if progress is not None and task is not None:
            progress.update(task, completed=written)
        return written

    async def run() -> int:
        db = Database(database_url)
        try:
            await migrate(db)
            if output is None:
                return await db.read(lambda conn: export(conn, sys.stdout, None))
            with output.open("w", encoding="utf-8") as sink, Progress(console=err, transient=True) as progress:
                return await db.read(lambda conn: export(conn, sink, progress))
        finally:
            await db.dispose()

    with _explained_database_errors(database_url):
        written = anyio.run(run)
    if output is not None:
        err.print(f"[green]Wrote {written} changes to {output}[/green]")


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)
