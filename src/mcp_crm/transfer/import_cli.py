"""`mcp-crm import ENTITY FILE`: a CSV file (yours, or Pipedrive's export) into records, with a mapping to confirm,
a dry run, progress, a report and resume (transfer/import_file.py)."""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# mcp_crm.cli imports this module to register the command: its names are read lazily (see export_cli.py)
import mcp_crm

if TYPE_CHECKING:
    import mcp_crm.cli
    from mcp_crm.transfer.import_file import Outcome
    from mcp_crm.transfer.plan import Plan


class Source(StrEnum):
    csv = "csv"
    pipedrive = "pipedrive"


def import_(
    entity: Annotated[str, typer.Argument(help="The entity: contacts, organizations, deals, ...", show_default=False)],
    file: Annotated[Path, typer.Argument(help="The CSV file; its first line names the columns.", show_default=False)],
    database_url: mcp_crm.cli.DatabaseUrl,
    mapping: Annotated[
        Path | None,
        typer.Option("--map", help='JSON file {"column": "field" or null to skip}; other columns are matched by name.'),
    ] = None,
    match: Annotated[
        str | None,
        typer.Option(help="Update the record a row names instead of adding one: email, domain, name, id or a field."),
    ] = None,
    create_missing: Annotated[
        bool,
        typer.Option(
            "--create-missing", help="Create organizations, contacts, pipelines and stages named but not found."
        ),
    ] = False,
    source: Annotated[Source, typer.Option("--from", help="pipedrive: a Pipedrive CSV export.")] = Source.csv,
    day_first: Annotated[bool, typer.Option("--day-first", help="Read 04/05/2026 as 4 May, not April 5.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row and report; write nothing.")] = False,
    skip_bad_rows: Annotated[
        bool, typer.Option("--skip-bad-rows", help="Import the good rows; bad ones go to FILE.errors.csv.")
    ] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Carry on an interrupted import of this file.")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="Start an interrupted import over.")] = False,
    encoding: Annotated[
        str | None, typer.Option(help="The file's encoding; UTF-8 or Windows-1252 if left out.")
    ] = None,
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="Workspace slug or id.")] = "local",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm the mapping.")] = False,
) -> None:
    """Import a CSV file into an entity: columns matched to fields (see the mapping it prints), checked, then
    written in batches."""
    from mcp_crm.cli import _explained_database_errors, _workspace_actor, err
    from mcp_crm.errors import CrmError
    from mcp_crm.operations import Crm
    from mcp_crm.runtime import settle
    from mcp_crm.store import Database, migrate
    from mcp_crm.transfer.export import entity_named
    from mcp_crm.transfer.export_cli import _fail
    from mcp_crm.transfer.import_file import ImportOptions, import_file

    try:
        chosen = entity_named(entity)
        if not file.is_file():
            raise CrmError(f"No file {file}.")
        options = ImportOptions(
            mapping=_read_mapping(mapping),
            match=match,
            create_missing=create_missing,
            day_first=day_first,
            pipedrive=source is Source.pipedrive,
            dry_run=dry_run,
            skip_bad_rows=skip_bad_rows,
            resume=resume,
            restart=restart,
            encoding=encoding,
        )
    except CrmError as exc:
        _fail(str(exc), 2)

    async def run() -> Outcome:
        db = Database(database_url)
        try:
            await migrate(db)
            crm = Crm(db)
            actor = await _workspace_actor(db, workspace)
            plan = await crm.import_plan(
                actor,
                chosen,
                _headers(file, encoding),
                options.mapping,
                match,
                create_missing,
                day_first,
                options.pipedrive,
            )
            _show_mapping(plan)
            if not (yes or dry_run) and sys.stdin.isatty() and not typer.confirm("Import with this mapping?", True):
                raise typer.Exit(1)
            settle()
            with _progress(err) as advance:
                return await import_file(crm, actor, chosen, file, options, advance)
        finally:
            await db.dispose()

    import anyio

    started = time.perf_counter()
    try:
        with _explained_database_errors(database_url):
            outcome = anyio.run(run)
    except CrmError as exc:
        _fail(str(exc), 1)
    _show_report(outcome, time.perf_counter() - started)
    if outcome.bad_found and not dry_run:
        raise typer.Exit(1)


def _headers(file: Path, encoding: str | None) -> list[str]:
    from mcp_crm.transfer.import_file import CsvSource, _encoding

    return CsvSource(file, _encoding(file, encoding)).header()


def _read_mapping(path: Path | None) -> dict[str, str | None] | None:
    from mcp_crm.errors import CrmError

    if path is None:
        return None
    try:
        given = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CrmError(f"--map {path}: {exc}") from None
    if not isinstance(given, dict) or not all(isinstance(v, str | None) for v in given.values()):
        raise CrmError(f'--map {path}: expected {{"column": "field" or null, ...}}.')
    return given


def _show_mapping(plan: Plan) -> None:
    from rich.table import Table

    from mcp_crm.cli import err

    table = Table(title=f"Columns -> {plan.entity.name}", title_justify="left")
    table.add_column("column")
    table.add_column("field")
    for header, shown in plan.mapping.rows():
        table.add_row(header, shown, style="dim" if shown.startswith("(ignored") else None)
    err.print(table)


def _progress(console: Any) -> Any:
    from contextlib import contextmanager

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    @contextmanager
    def opened() -> Any:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]:,} rows, {task.fields[speed]:,.0f} rows/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=True) as progress:
            tasks: dict[str, Any] = {}
            started: dict[str, float] = {}

            def advance(phase: str, read: int, size: int, rows: int) -> None:
                if phase not in tasks:
                    label = "Checking" if phase == "check" else "Importing"
                    tasks[phase] = progress.add_task(label, total=size, rows=0, speed=0.0)
                    started[phase] = time.perf_counter()
                speed = rows / max(time.perf_counter() - started[phase], 1e-9)
                progress.update(tasks[phase], completed=read, rows=rows, speed=speed)

            yield advance

    return opened()


def _show_report(outcome: Outcome, seconds: float) -> None:
    from rich.markup import escape

    from mcp_crm.cli import err

    report = outcome.report
    verb = "Imported" if outcome.written else "Would import" if not outcome.bad_found else "Checked"
    related = ", ".join(f"{n:,} {name}" for name, n in report.related_created.items())
    err.print(
        f"{verb}: {report.rows:,} rows ({report.rows / max(seconds, 1e-9):,.0f} rows/s): {report.ok:,} ok, "
        f"{report.bad_rows:,} bad; {report.created:,} created, {report.updated:,} updated, "
        f"{report.unchanged:,} unchanged, {report.linked:,} links" + (f"; created {related}" if related else ""),
        highlight=False,
    )
    if outcome.resumed_after:
        err.print(f"Resumed after row {outcome.resumed_after:,}.")
    for note in outcome.notes:
        err.print(f"Note: {note}.")
    if report.errors_by_reason:
        err.print("[red]Bad rows by reason:[/red]")
        for reason, count in report.errors_by_reason.most_common(10):
            err.print(f"  {count:>6,}  {escape(reason)}", highlight=False)
        for line, reason in report.errors[:10]:
            err.print(f"  line {line}: {escape(reason)}", highlight=False)
    if outcome.errors_file:
        err.print(f"Bad rows, with the reason for each: {escape(str(outcome.errors_file))}")
    if outcome.bad_found and not outcome.written:
        err.print(
            "[red]Nothing was imported.[/red] Fix those rows, or import the good ones with --skip-bad-rows.",
        )


def register(app: typer.Typer) -> None:
    import mcp_crm.cli  # noqa: F401  (so `mcp_crm.cli.DatabaseUrl` resolves when Typer reads the signature)

    app.command("import")(import_)
