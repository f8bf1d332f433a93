"""An import of a whole CSV file: read as a stream, checked, then written in batches that each commit with the
import's progress, so an interrupted import resumes after the last committed batch.

Without `skip_bad_rows` the file is read twice: first every row is checked (parsing, references, matches and
every check a write makes, nothing written), and only a file without a bad row is then written; with it, one
pass writes the good rows and sets the bad ones aside. Bad rows go to `<file>.errors.csv`, the file's own
columns plus `line` and `error`, ready to fix and import again."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mcp_crm.entities import Entity
from mcp_crm.errors import CrmError
from mcp_crm.operations import Actor, Crm
from mcp_crm.operations.records import table_of
from mcp_crm.store.search_tables import DOCUMENTS, WORDS
from mcp_crm.store.tables import CHANGE_EVENTS as EVENTS
from mcp_crm.transfer.plan import Plan, Planned, Report, Row
from mcp_crm.transfer.runs import record_progress as finish_run
from mcp_crm.transfer.runs import start_run, unfinished_run

BATCH = 1000
SNIFF = 64 * 1024
csv.field_size_limit(1 << 24)  # a long note in one cell


@dataclass(frozen=True)
class ImportOptions:
    mapping: dict[str, str | None] | None = None
    match: str | None = None
    create_missing: bool = False
    day_first: bool = False
    pipedrive: bool = False  # headers as Pipedrive's export writes them ("Person - Name")
    dry_run: bool = False
    skip_bad_rows: bool = False
    resume: bool = False
    restart: bool = False
    encoding: str | None = None


@dataclass
class Outcome:
    plan: Plan
    report: Report
    written: bool
    errors_file: Path | None = None
    resumed_after: int = 0
    bad_found: bool = False
    notes: list[str] = field(default_factory=list)


Progress = Callable[[str, int, int, int], None]  # (phase, bytes read, bytes in all, rows so far)


def _encoding(path: Path, given: str | None) -> str:
    """UTF-8 (with or without a byte order mark) unless the file's start is not, then Windows-1252, which
    spreadsheet programs write and which decodes any byte."""
    if given:
        return given
    with path.open("rb") as raw:
        head = raw.read(SNIFF)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            return "cp1252"
    return "utf-8-sig"


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


@dataclass
class CsvSource:
    path: Path
    encoding: str

    def header(self) -> list[str]:
        with self._open() as (reader, _):
            try:
                header = next(reader)
            except StopIteration:
                raise CrmError(f"{self.path} is empty; the first line must name the columns.") from None
        headers = [h.strip() for h in header]
        if len(set(headers)) != len(headers) or not all(headers):
            repeated = sorted({h for h in headers if headers.count(h) > 1 or not h})
            raise CrmError(f"{self.path}: every column needs its own name; repeated or empty: {repeated}.")
        return headers

    def batches(self, skip: int = 0) -> Iterator[tuple[list[Row], int]]:
        """(rows, bytes read so far), BATCH rows at a time, after the first `skip` rows."""
        with self._open() as (reader, raw):
            headers = [h.strip() for h in next(reader)]
            batch: list[Row] = []
            seen = 0
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue  # blank lines between rows
                seen += 1
                if seen <= skip:
                    continue
                if len(cells) > len(headers):
                    cells = [*cells[: len(headers) - 1], ",".join(cells[len(headers) - 1 :])]  # an unquoted comma
                batch.append(Row(reader.line_num, dict(zip(headers, cells, strict=False))))
                if len(batch) == BATCH:
                    yield batch, raw.tell()
                    batch = []
            if batch:
                yield batch, raw.tell()

    def _open(self) -> Any:
        source = self

        class Opened:
            def __enter__(self) -> tuple[Any, IO[bytes]]:
                self.raw = source.path.open("rb")
                text = io.TextIOWrapper(self.raw, encoding=source.encoding, newline="", errors="replace")
                sample = text.read(SNIFF)
                text.seek(0)
                return csv.reader(text, _dialect(sample)), self.raw

            def __exit__(self, *exc: object) -> None:
                self.raw.close()

        return Opened()


def fingerprint(path: Path, entity: Entity, options: ImportOptions) -> str:
    """The file's content and the settings that decide what its rows become: the same on a resumed run."""
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        while chunk := raw.read(1 << 20):
            digest.update(chunk)
    settings = [entity.name, options.mapping, options.match, options.create_missing, options.day_first]
    digest.update(json.dumps([*settings, options.pipedrive], sort_keys=True).encode())
    return digest.hexdigest()


async def import_file(
    crm: Crm, actor: Actor, entity: Entity, path: Path, options: ImportOptions, progress: Progress | None = None
) -> Outcome:
    source = CsvSource(path, _encoding(path, options.encoding))
    plan = await crm.import_plan(
        actor,
        entity,
        source.header(),
        options.mapping,
        options.match,
        options.create_missing,
        options.day_first,
        options.pipedrive,
    )
    if not plan.mapping.columns:
        raise CrmError(f"No column of {path.name} matches a field of {entity.name}; give a mapping with --map.")
    size = path.stat().st_size
    errors_path = path.with_name(path.name + ".errors.csv")
    stamp = fingerprint(path, entity, options)
    outcome = Outcome(plan, Report(), written=False)
    run = await crm.db.read(lambda c: unfinished_run(c, actor, stamp))
    if run is not None and not (options.resume or options.restart or options.dry_run):
        raise CrmError(
            f"An import of this file into {entity.name} stopped after {run['rows_done']:,} rows. Run it again with "
            "--resume to carry on from there, or --restart to start over (rows already written stay)."
        )
    if options.resume and run is None:
        outcome.notes.append("nothing to resume: no unfinished import of this file with these settings")
    skip = run["rows_done"] if (run is not None and options.resume) else 0
    outcome.resumed_after = skip
    if not skip:
        errors_path.unlink(missing_ok=True)  # a resumed import adds to the bad rows of its earlier batches

    with _ErrorsFile(errors_path, source.header()) as errors:
        if not options.skip_bad_rows and not skip:
            planned = Planned()
            for rows, read in source.batches():
                report, bad = await crm.import_batch(actor, plan, rows, False, planned)
                outcome.report.add(report)
                errors.add(bad)
                if progress:
                    progress("check", read, size, outcome.report.rows)
            outcome.bad_found = outcome.report.bad_rows > 0
            if options.dry_run or outcome.bad_found:
                outcome.errors_file = errors.path if errors.count else None
                return outcome
        elif options.dry_run:
            raise CrmError("--dry-run checks the whole file; leave out --skip-bad-rows and --resume with it.")

        outcome.report = Report.from_dict(run["report"]) if skip and run is not None else Report()
        if run is not None and options.restart:
            stopped, counts = run, Report.from_dict(run["report"])
            await crm.db.write(lambda c: finish_run(c, stopped["id"], stopped["rows_done"], counts, "stopped"))
        if run is None or not options.resume:
            run_id = await crm.db.write(lambda c: start_run(c, actor, entity, path.name, stamp, _shown(options)))
        else:
            run_id = run["id"]
        done = skip
        planned = Planned()
        growing = GrowingTables(crm, entity)
        for rows, read in source.batches(skip):
            done += len(rows)
            progress_so_far = (run_id, done, outcome.report)
            try:
                report, _ = await crm.import_batch(
                    actor, plan, rows, True, planned, progress_so_far, errors.add if options.skip_bad_rows else None
                )
            except CrmError as exc:  # a row the check passed went bad since (someone changed the database)
                raise CrmError(
                    f"{exc} The rows before it are imported. Fix it, or use --skip-bad-rows, and run again with "
                    "--resume."
                ) from None
            outcome.report.add(report)
            await growing.wrote(len(rows))
            if progress:
                progress("import", read, size, outcome.report.rows)
        final = outcome.report
        await crm.db.write(lambda c: finish_run(c, run_id, done, final, "done"))
        outcome.written = True
        outcome.errors_file = errors.path if errors.count else None
    return outcome


class GrowingTables:
    """PostgreSQL plans queries by table statistics that autovacuum refreshes late in a bulk load (and never where it
    is off): an import analyzes the tables it grows each time it has doubled the rows it wrote, so its later batches'
    queries keep their index plans (with the statistics of an empty table, a link query of the 90,000th row scanned
    every link and took over a second)."""

    def __init__(self, crm: Crm, entity: Entity) -> None:
        self.crm, self.written, self.next_at = crm, 0, 1000
        grown = [table_of(entity), *(link.table.__table__ for link in entity.links), EVENTS, DOCUMENTS, WORDS]  # type: ignore[attr-defined]
        self.tables = [table.name for table in grown]

    async def wrote(self, rows: int) -> None:
        self.written += rows
        if self.crm.db.dialect != "postgresql" or self.written < self.next_at:
            return
        self.next_at = 2 * self.written
        await self.crm.db.write(lambda conn: conn.exec_driver_sql(f"ANALYZE {', '.join(self.tables)}"))


def _shown(options: ImportOptions) -> dict[str, Any]:
    return {
        "mapping": options.mapping,
        "match": options.match,
        "create_missing": options.create_missing,
        "day_first": options.day_first,
        "from": "pipedrive" if options.pipedrive else None,
        "skip_bad_rows": options.skip_bad_rows,
    }


class _ErrorsFile:
    """`<file>.errors.csv`: each bad row as it was, with its line and the reason. Made on the first bad row;
    a resumed import adds to it."""

    def __init__(self, path: Path, headers: list[str]) -> None:
        self.path = path
        self.headers = headers
        self.written = self._lines_in(path)  # those a resumed import's earlier batches set aside
        self._stream: IO[str] | None = None
        self._writer: Any = None

    @property
    def count(self) -> int:
        return len(self.written)

    @staticmethod
    def _lines_in(path: Path) -> set[int]:
        if not path.exists():
            return set()
        with path.open(encoding="utf-8", newline="") as stream:
            return {int(row[-2]) for row in list(csv.reader(stream))[1:] if len(row) >= 2 and row[-2].isdigit()}

    def __enter__(self) -> _ErrorsFile:
        return self

    def add(self, bad: list[tuple[Row, str]]) -> None:
        """Called before the batch commits, and flushed: a batch done again after a crash adds its rows once."""
        bad = [(row, reason) for row, reason in bad if row.line not in self.written]
        if not bad:
            return
        if self._writer is None:
            new = not self.path.exists()
            self._stream = self.path.open("a", encoding="utf-8", newline="")
            self._writer = csv.writer(self._stream)
            if new:
                self._writer.writerow([*self.headers, "line", "error"])
        for row, reason in bad:
            self._writer.writerow([*(row.cells.get(h, "") for h in self.headers), row.line, reason])
            self.written.add(row.line)
        assert self._stream is not None
        self._stream.flush()

    def __exit__(self, *exc: object) -> None:
        if self._stream is not None:
            self._stream.close()
