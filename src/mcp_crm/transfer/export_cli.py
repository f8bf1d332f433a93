"""`mcp-crm export ENTITY`: every record of one entity as CSV or JSON lines, to a file or stdout."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO

import typer

# mcp_crm.cli imports this module to register the command, so its names are read lazily: the annotation below
# is a string that Typer resolves when the app runs, and the functions import what they use.
import mcp_crm

if TYPE_CHECKING:
    from rich.progress import Progress

    import mcp_crm.cli


class ExportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


class OutputFailed(Exception):
    """Writing the export failed (a missing folder, a full disk, a closed pipe); the database is fine."""


def export(
    entity: Annotated[
        str,
        typer.Argument(
            help="The entity: contacts, organizations, leads, deals, tasks, ...", metavar="ENTITY", show_default=False
        ),
    ],
    database_url: mcp_crm.cli.DatabaseUrl,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            "-f",
            help="csv: one column per field (lists joined with '; '); jsonl: each record as *_get returns it.",
            show_default=False,
        ),
    ],
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help='A filter tree as *_list takes it, e.g. {"field": "tags", "op": "contains", "value": "vip"}.',
        ),
    ] = None,
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="Workspace slug or id.")] = "local",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (replaced when done); stdout if left out.")
    ] = None,
) -> None:
    """Export every record of an entity (or those matching --filter) as CSV or JSON lines."""
    import anyio
    from rich.markup import escape

    from mcp_crm.cli import _explained_database_errors, err
    from mcp_crm.errors import CrmError
    from mcp_crm.operations.access import find_workspace
    from mcp_crm.operations.actor import Actor
    from mcp_crm.operations.workspace import LOCAL_SLUG, local_actor
    from mcp_crm.store import Database, migrate
    from mcp_crm.transfer import export as exporting
    from mcp_crm.transfer.backup import snapshot

    try:
        chosen = exporting.entity_named(entity)
        tree = _filter_tree(filter)
    except CrmError as exc:
        _fail(str(exc), 2)

    started: list[float] = []

    def work(conn: Any, local: Actor | None, sink: TextIO, progress: Progress | None) -> int:
        snapshot(conn)  # one state of the database throughout, however long the export takes
        actor = local or Actor(workspace_id=find_workspace(conn, workspace)["id"], user_id=None, via="cli")
        started.append(time.perf_counter())
        if progress is None:
            return exporting.write(conn, actor, chosen, tree, fmt.value, sink)
        task = progress.add_task(escape(f"{chosen.name} to {output}"), total=None)

        def advance(written: int, total: int) -> None:
            progress.update(task, completed=written, total=total)

        return exporting.write(conn, actor, chosen, tree, fmt.value, sink, advance)

    async def run() -> int:
        db = Database(database_url)
        try:
            await migrate(db)
            # as every command does, a database without the local workspace gets it (so its export is empty)
            local = await local_actor(db, via="cli") if workspace == LOCAL_SLUG else None
            if output is None:
                return await db.read(lambda conn: work(conn, local, _Sink(sys.stdout), None))
            with _replacing(output) as sink, _progress(err) as progress:
                return await db.read(lambda conn: work(conn, local, sink, progress))
        finally:
            await db.dispose()

    try:
        with _explained_database_errors(database_url):
            written = anyio.run(run)
        if output is None:
            _Sink(sys.stdout).flush()
    except CrmError as exc:
        _fail(str(exc), 1)
    except OutputFailed as exc:
        if output is None and isinstance(exc.__cause__, BrokenPipeError):
            _quiet_stdout()  # the reader stopped early (`| head`): not worth a message
            raise typer.Exit(1) from None
        reason = getattr(exc.__cause__, "strerror", None) or exc
        _fail(f"Cannot write {output or 'to stdout'}: {reason}", 1)
    if output is not None:
        seconds = time.perf_counter() - started[0]
        err.print(
            f"[green]Wrote {written:,} {chosen.name} to {escape(str(output))}[/green] "
            f"in {seconds:.1f} s ({written / max(seconds, 1e-9):,.0f} rows/s)",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    import mcp_crm.cli  # noqa: F401  (so `mcp_crm.cli.DatabaseUrl` resolves when Typer reads the signature)

    app.command("export")(export)


def _filter_tree(text: str | None) -> Any:
    """The --filter JSON as a filter tree; a CrmError says what is wrong with it."""
    from pydantic import TypeAdapter, ValidationError

    from mcp_crm.errors import CrmError
    from mcp_crm.query import FilterNode

    if text is None:
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CrmError(f"--filter is not valid JSON: {exc}.") from None
    try:
        return TypeAdapter(FilterNode).validate_python(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = ".".join(str(p) for p in first["loc"] if p not in ("Condition", "And", "Or", "Not"))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise CrmError(
            f"--filter: {path or 'the filter'}: {first['msg']}{more}. "
            'A condition is {"field": ..., "op": ..., "value": ...}; combine them with {"and": [...]}, '
            '{"or": [...]} or {"not": ...}.'
        ) from None


def _fail(text: str, code: int) -> NoReturn:
    from mcp_crm.cli import err

    err.print(text, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


class _Sink:
    """A text stream whose failures are OutputFailed, so they are not taken for the database's."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except OSError as exc:
            raise OutputFailed(str(exc)) from exc

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as exc:
            raise OutputFailed(str(exc)) from exc


@contextmanager
def _replacing(path: Path) -> Iterator[Any]:
    """A temporary file beside `path` that replaces it once the export is complete, so a failed or interrupted
    export leaves no half-written file. Like any temporary file it is readable by its owner only."""
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise OutputFailed(str(exc)) from exc
    try:
        with open(descriptor, "w", encoding="utf-8", newline="") as stream:
            yield _Sink(stream)
        try:
            os.replace(temporary, path)
        except OSError as exc:
            raise OutputFailed(str(exc)) from exc
    finally:
        Path(temporary).unlink(missing_ok=True)


@contextmanager
def _progress(console: Any) -> Iterator[Progress]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class RowsPerSecond(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed:,.0f} rows/s" if task.speed else "", style="progress.data.speed")

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RowsPerSecond(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield progress


def _quiet_stdout() -> None:
    """Points stdout at /dev/null, so the interpreter's final flush does not report the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test runner's capture)
        pass
