"""Backups of one workspace, and copies of a whole database, as gzip JSON lines.

A file is a header line ({format, version, revision, scope, workspace, tables: [{name, columns, key, count}]})
and then one line per row, {"table": ..., "row": {column: value}}, table by table in foreign-key order
(SQLModel.metadata.sorted_tables) and by primary key within a table. Values are the stored ones, read with plain
column types: scaled decimals as their integer, JSON columns as their exact text, datetimes as UTC ISO strings.

What a workspace backup holds: the workspace row and every row that names it, directly (`workspace_id`) or through
a parent that does (link rows, passwords, webhook outbox and attempts): records, custom fields, history, trash,
idempotency keys, webhooks with their secrets and deliveries, the search index (without its row numbers, which the
target assigns), API key hashes (SHA-256) and password hashes (scrypt), so keys and sign-ins keep working after a
restore; the file is as sensitive as the database. OAUTH_STATE is left out (see there).

A restore runs in one transaction: it either completes, counts and samples verified, or leaves the target as it
was; a damaged line (cut-off gzip data, text that is not JSON, a value of the wrong kind, a row the database
refuses) is named by its number. Webhook subscriptions come back paused unless asked otherwise: a restored copy
should not send events to the original's receivers unless someone decides it should. A file from an older schema
is loaded into a scratch SQLite database at its revision, upgraded by the migrations, then restored from there.
`copy_database` (mcp-crm migrate-store) writes a whole database to a scratch file with the same code and loads it
into an empty one."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import replace as replace_fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    cast,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import SQLModel

import mcp_crm.store.search_tables  # noqa: F401  (so every table is in SQLModel.metadata)
from mcp_crm import __version__
from mcp_crm.entities.custom import index_values
from mcp_crm.entities.fields import CustomField
from mcp_crm.errors import CrmError
from mcp_crm.operations.access import find_workspace
from mcp_crm.store import Database, migrate
from mcp_crm.store.migrate import alembic_config, current_revision
from mcp_crm.store.tables import WORKSPACES
from mcp_crm.store.types import ScaledDecimal, UTCDateTime, json_text

if TYPE_CHECKING:
    from rich.progress import Progress

FORMAT = "mcp-crm-backup"
VERSION = 1
BATCH = 1000
SAMPLE = 20  # rows per table read back and compared after a load

# Server-wide OAuth state, not a workspace's: registered apps are shared by every workspace, and requests, codes
# and tokens are sign-ins of those apps (minutes to weeks long). After a restore, connected apps sign in again.
OAUTH_STATE = {
    "oauth_clients": "apps registered with the server, shared by its workspaces",
    "oauth_requests": "sign-ins in progress",
    "oauth_codes": "authorization codes, single use",
    "oauth_tokens": "apps signed in; they sign in again after a restore",
}
# The search index's row number (its FTS rowid on SQLite): another workspace in the target may hold the same one.
TARGET_ASSIGNED = {"search_documents": ("id",)}


class RawJSON(TypeDecorator[str]):
    """A JSON column written as the text it held: no serializing, so the copy is byte for byte."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:  # type: ignore[override]
        return None


# How each kind of column is read, written and put in a line. Reads use these types instead of the models' own,
# so a ScaledDecimal comes as its stored integer.
KINDS: dict[str, TypeEngine[Any]] = {
    "str": Text(),
    "int": BigInteger(),
    "bool": Boolean(),
    "date": Date(),
    "datetime": UTCDateTime(),
    "json": RawJSON(),
}
ENCODE: dict[str, Callable[[Any], Any]] = {"datetime": lambda v: v.isoformat(), "date": lambda v: v.isoformat()}
DECODE: dict[str, Callable[[Any], Any]] = {"datetime": datetime.fromisoformat, "date": date.fromisoformat}


def _kind(column: Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return "datetime"
    if isinstance(kind, ScaledDecimal):
        return "int"
    if isinstance(kind, TypeDecorator):  # SQLModel's AutoString
        kind = kind.impl_instance
    for base, name in ((JSON, "json"), (Boolean, "bool"), (Date, "date"), (Integer, "int"), (String, "str")):
        if isinstance(kind, base):
            return name
    raise TypeError(f"{column.table.name}.{column.name}: no backup encoding for {kind!r}")


@dataclass(frozen=True)
class Part:
    """One table's share of a copy: the columns copied as (name, kind), its key, and which rows (None: all), on
    the table as plain column types (`where` is made of its columns)."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    table: Table
    where: ColumnElement[bool] | None = None

    @property
    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "columns": [list(c) for c in self.columns], "key": list(self.key)}


def _raw_table(name: str, columns: list[tuple[str, str]], key: list[str]) -> Table:
    return Table(name, MetaData(), *(Column(n, KINDS[k], primary_key=n in key, info={"kind": k}) for n, k in columns))


def _schema() -> list[Table]:
    return list(SQLModel.metadata.sorted_tables)


def _raw(table: Table) -> Table:
    return _raw_table(table.name, [(c.name, _kind(c)) for c in table.columns], [c.name for c in table.primary_key])


def database_plan() -> list[Part]:
    return [
        Part(t.name, tuple((c.name, _kind(c)) for c in t.columns), tuple(c.name for c in t.primary_key), _raw(t))
        for t in _schema()
    ]


def workspace_scope(workspace_id: str) -> dict[str, tuple[Table, ColumnElement[bool]]]:
    """Which rows of each table are the workspace's: those naming it, or naming a parent row that is (the first
    foreign key to such a parent). OAuth tokens and codes are here (a replaced workspace loses them) though no
    backup holds them."""
    scope: dict[str, tuple[Table, ColumnElement[bool]]] = {}
    for table in _schema():
        raw = _raw(table)
        if table.name == "workspaces":
            scope[table.name] = raw, raw.c.id == workspace_id
        elif "workspace_id" in raw.c:
            scope[table.name] = raw, raw.c.workspace_id == workspace_id
        else:
            for column in table.columns:
                parents = [fk.column for fk in column.foreign_keys if fk.column.table.name in scope]
                if parents:
                    parent, inside = scope[parents[0].table.name]
                    scope[table.name] = raw, raw.c[column.name].in_(select(parent.c[parents[0].name]).where(inside))
                    break
            else:
                if table.name not in OAUTH_STATE:
                    raise RuntimeError(f"table {table.name} is neither a workspace's nor listed in OAUTH_STATE")
    return scope


def workspace_plan(workspace_id: str) -> list[Part]:
    plan = []
    for name, (raw, where) in workspace_scope(workspace_id).items():
        if name not in OAUTH_STATE:
            left_out = TARGET_ASSIGNED.get(name, ())
            columns = tuple((c.name, c.info["kind"]) for c in raw.columns if c.name not in left_out)
            key = tuple(c.name for c in raw.primary_key if c.name not in left_out)
            plan.append(Part(name, columns, key, raw, where))
    return plan


def _select(part: Part, where: ColumnElement[bool] | None = None) -> Any:
    raw = part.table
    # JSON as its stored text (asyncpg would parse a json column itself)
    wanted = [cast(raw.c[n], Text).label(n) if k == "json" else raw.c[n] for n, k in part.columns]
    ordered = [raw.c[n] for n in part.key] or wanted
    condition = and_(true(), *(c for c in (part.where, where) if c is not None))
    return select(*wanted).where(condition).order_by(*ordered)


def _count(conn: Connection, raw: Table, where: ColumnElement[bool] | None) -> int:
    query = select(func.count()).select_from(raw)
    return int(conn.execute(query if where is None else query.where(where)).scalar_one())


def _encode(part: Part, row: Any) -> dict[str, Any]:
    return {
        name: value if value is None or kind not in ENCODE else ENCODE[kind](value)
        for (name, kind), value in zip(part.columns, row, strict=True)
    }


def _decode(columns: Sequence[tuple[str, str]], row: dict[str, Any]) -> dict[str, Any]:
    return {
        name: row[name] if row[name] is None or kind not in DECODE else DECODE[kind](row[name])
        for name, kind in columns
    }


# --- writing a file ---------------------------------------------------------------------------------------------


def snapshot(conn: Connection) -> None:
    """Makes the transaction see one state of the database throughout (SQLite's read transactions do already);
    on PostgreSQL it must be the transaction's first statement."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))


def dump(
    conn: Connection,
    plan: list[Part],
    sink: IO[str],
    about: dict[str, Any],
    progress: Progress | None = None,
    label: str = "Backing up",
) -> dict[str, Any]:
    """Writes the header and every row of the plan; returns the header. Run it in one read transaction that
    began with `snapshot`, so the counts in the header are the rows that follow."""
    tables = [part.spec | {"count": _count(conn, part.table, part.where)} for part in plan]
    header = {
        "format": FORMAT,
        "version": VERSION,
        "revision": current_revision(conn),
        "mcp_crm": __version__,
        "created_at": datetime.now(UTC).isoformat(),
        **about,
        "tables": tables,
        "rows": sum(t["count"] for t in tables),
    }
    sink.write(json_text(header) + "\n")
    task = progress.add_task(label, total=header["rows"]) if progress else None
    for part, spec in zip(plan, tables, strict=True):
        written = 0
        result = conn.execution_options(yield_per=BATCH).execute(_select(part))
        for rows in result.partitions():
            sink.write("".join(json_text({"table": part.name, "row": _encode(part, r)}) + "\n" for r in rows))
            written += len(rows)
            if progress is not None and task is not None:
                progress.advance(task, len(rows))
        if written != spec["count"]:
            raise RuntimeError(f"{part.name}: counted {spec['count']} rows but read {written}")
    return header


@contextmanager
def _output(path: Path, level: int = 6) -> Iterator[IO[str]]:
    """A new gzip file, readable by its owner only (it holds credential hashes and webhook secrets), in place
    only once it is complete."""
    try:
        handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise CrmError(f"Cannot write {path}: {exc.strerror or exc}") from None
    try:
        with (
            os.fdopen(handle, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, filename="") as packed,
            io.TextIOWrapper(packed, encoding="utf-8", newline="\n") as sink,
        ):
            yield sink
        os.replace(partial, path)
    except OSError as exc:  # the database's own errors arrive wrapped (DBAPIError); this is the file
        Path(partial).unlink(missing_ok=True)
        raise CrmError(f"Cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


async def backup_workspace(
    database_url: str, workspace: str, path: Path, progress: Progress | None = None
) -> dict[str, Any]:
    """Writes one workspace to `path`; returns the file's header."""
    db = Database(database_url)
    try:
        await migrate(db)

        def work(conn: Connection) -> dict[str, Any]:
            snapshot(conn)
            found = find_workspace(conn, workspace)
            about = {
                "scope": "workspace",
                "workspace": {k: found[k] for k in ("id", "slug", "name")},
                "left_out": OAUTH_STATE,
            }
            with _output(path) as sink:
                return dump(conn, workspace_plan(found["id"]), sink, about, progress)

        return await db.read(work)
    finally:
        await db.dispose()


# --- reading a file ---------------------------------------------------------------------------------------------

Rows = Iterator[tuple[int, Any]]  # (line number, the line as parsed)
# what reading a damaged gzip file raises: a cut-off or corrupt stream, bytes that are not UTF-8, a bad CRC
UNREADABLE = (OSError, EOFError, zlib.error, UnicodeDecodeError)


class Damaged(Exception):
    """A line of the file that cannot be restored, and why; `_input` names the file in the CrmError it becomes.
    `refused`: the database refused the row (it breaks a rule of the schema, or clashes with a row already there)."""

    def __init__(self, line: int, reason: str, refused: bool = False) -> None:
        super().__init__(line, reason)
        self.line, self.reason, self.refused = line, reason, refused


def _damage_report(path: Path, damage: Damaged) -> CrmError:
    clash = ", or that row clashes with one already in this database" if damage.refused else ""
    return CrmError(
        f"The backup {path} is damaged at line {damage.line} ({damage.reason}){clash}; nothing was restored."
    )


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text: {exc.reason}"
    if isinstance(exc, EOFError | zlib.error):
        return f"the compressed data is cut off or corrupt: {exc}"
    return str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)


def _lines(stream: IO[bytes]) -> Rows:
    """The file's lines, parsed. Read as bytes and decoded line by line, so an error names its own line (a text
    stream decodes ahead, and would name a line before it)."""
    number = 0
    while True:
        number += 1
        try:
            line = stream.readline()
            if not line:
                return
            parsed = json.loads(line.decode("utf-8"))
        except UNREADABLE as exc:
            raise Damaged(number, _unreadable(exc)) from None
        except ValueError as exc:
            raise Damaged(number, f"not a JSON line: {exc}") from None
        yield number, parsed


def _check_header(header: Any) -> dict[str, Any]:
    """The header's shape, so a damaged one is named rather than failing somewhere later."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise Damaged(1, f"no {FORMAT} header; is it a file `mcp-crm backup` wrote?")
    if not isinstance(header.get("version"), int) or not isinstance(header.get("revision"), str):
        raise Damaged(1, "the header has no format version or schema revision")
    tables = header.get("tables")
    if not (isinstance(tables, list) and all(map(_table_spec, tables)) and isinstance(header.get("rows"), int)):
        raise Damaged(1, "the header's list of tables is incomplete")
    shown = header.get("workspace")
    if header.get("scope") == "workspace" and not (
        isinstance(shown, dict) and all(isinstance(shown.get(k), str) for k in ("id", "slug", "name"))
    ):
        raise Damaged(1, "the header does not say which workspace it holds")
    return header


def _table_spec(spec: Any) -> bool:
    return (
        isinstance(spec, dict)
        and isinstance(spec.get("name"), str)
        and isinstance(spec.get("count"), int)
        and isinstance(spec.get("key"), list)
        and isinstance(spec.get("columns"), list)
        and all(isinstance(c, list) and len(c) == 2 and c[1] in KINDS for c in spec["columns"])
    )


@contextmanager
def _input(path: Path) -> Iterator[tuple[dict[str, Any], Rows]]:
    """The file's header and its rows, read as they are used. A damaged line, found here or while the rows are
    loaded, ends in a CrmError naming the file and the line."""
    try:
        stream = gzip.open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise CrmError(f"Cannot read {path}: {exc.strerror or exc}") from None
    with stream:
        try:
            lines = _lines(stream)
            header = _check_header(next(lines, (1, None))[1])
            if header["version"] > VERSION:
                raise CrmError(f"{path} is format version {header['version']}; this mcp-crm reads up to {VERSION}.")
            yield header, lines
        except Damaged as damage:
            raise _damage_report(path, damage) from None


@dataclass
class Loaded:
    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # rows as the file has them


def load(
    conn: Connection,
    header: dict[str, Any],
    rows: Rows,
    progress: Progress | None = None,
    change: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    label: str = "Restoring",
) -> Loaded:
    """Inserts the file's rows, BATCH at a time, into the tables as the header describes them; `change` may
    rewrite a row (as the file has it) first. Keeps an even sample of each table's rows for `verify`. Raises
    Damaged for a line that is out of place, holds a bad value or is refused by the database."""
    specs = {t["name"]: t for t in header["tables"]}
    order = list(specs)
    columns = {n: [(c, k) for c, k in s["columns"]] for n, s in specs.items()}
    raws = {n: _raw_table(n, columns[n], s["key"]) for n, s in specs.items()}
    loaded = Loaded()
    task = progress.add_task(label, total=header["rows"]) if progress else None
    batch: list[tuple[int, dict[str, Any]]] = []  # (line number, row as inserted)
    current, position, step, seen, number = "", -1, 1, 0, 1

    def flush() -> None:
        if batch:
            _insert(conn, raws[current], batch)
            loaded.counts[current] = loaded.counts.get(current, 0) + len(batch)
            if progress is not None and task is not None:
                progress.advance(task, len(batch))
            batch.clear()

    for number, line in rows:
        name, row = (line.get("table"), line.get("row")) if isinstance(line, dict) else (None, None)
        if name != current:
            flush()
            if name not in specs or order.index(name) <= position:
                raise Damaged(number, f"rows of table {name!r} out of place")
            current, position = name, order.index(name)
            step, seen = max(1, specs[name]["count"] // SAMPLE), 0
        if not isinstance(row, dict) or row.keys() != {c for c, _ in columns[name]}:
            raise Damaged(number, f"a {name} row without the table's columns")
        if change is not None:
            row = change(name, row)
        if seen % step == 0:
            loaded.samples.setdefault(name, []).append(row)
        seen += 1
        batch.append((number, _decode_line(number, name, columns[name], row)))
        if len(batch) >= BATCH:
            flush()
    flush()
    _check_complete(specs, loaded, number + 1)
    return loaded


# what each kind of value is in a file, checked before it reaches the database (which may take anything)
VALID: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "str": ("text", lambda v: isinstance(v, str)),
    "int": ("a 64-bit integer", lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "date": ("an ISO date", lambda v: isinstance(v, str)),
    "datetime": ("an ISO date and time", lambda v: isinstance(v, str)),
    "json": ("JSON text", lambda v: isinstance(v, str) and _is_json(v)),
}


def _is_json(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def _decode_line(number: int, table: str, columns: Sequence[tuple[str, str]], row: dict[str, Any]) -> dict[str, Any]:
    """The row as column values; a value of the wrong kind (or an unreadable date) is a Damaged line."""
    decoded = {}
    for name, kind in columns:
        value = row[name]
        if value is not None:
            what, valid = VALID[kind]
            ok = valid(value)
            if ok and kind in DECODE:
                try:
                    value = DECODE[kind](value)
                except ValueError:
                    ok = False
            if not ok:
                raise Damaged(number, f"{table}.{name} is {_shown(row[name])}, not {what}")
        decoded[name] = value
    return decoded


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _insert(conn: Connection, raw: Table, batch: list[tuple[int, dict[str, Any]]]) -> None:
    """Inserts a batch in a savepoint, so a refused row can be found (a failed statement ends a PostgreSQL
    transaction, but not the savepoint around it)."""
    try:
        with conn.begin_nested():
            conn.execute(insert(raw), [row for _, row in batch])
    except StatementError as exc:
        raise _refused_line(conn, raw, batch, exc) from None


def _refused_line(
    conn: Connection, raw: Table, batch: list[tuple[int, dict[str, Any]]], error: StatementError
) -> Damaged:
    """The first row of a refused batch the database refuses on its own (rows before it are inserted again,
    which does not matter: the restore is ending)."""
    for number, row in batch:
        try:
            with conn.begin_nested():
                conn.execute(insert(raw), [row])
        except StatementError as exc:
            error, line = exc, number
            break
    else:
        line = batch[0][0]
    reason = " ".join(str(error.orig).split())
    return Damaged(line, f"{raw.name}: {reason}", refused=isinstance(error, IntegrityError))


def _check_complete(specs: dict[str, dict[str, Any]], loaded: Loaded, end: int) -> None:
    for name, spec in specs.items():
        if (found := loaded.counts.get(name, 0)) != spec["count"]:
            # fewer rows: the file was cut where it ends; more: the header is wrong
            line = end if found < spec["count"] else 1
            raise Damaged(line, f"the header lists {spec['count']} {name} rows but the file has {found}")


def verify(conn: Connection, header: dict[str, Any], plan: list[Part], loaded: Loaded) -> None:
    """The target has as many rows as the file in every table, and the sampled rows read back as written."""
    specs = {t["name"]: t for t in header["tables"]}
    for part in plan:
        raw = part.table
        expected = specs[part.name]["count"] if part.name in specs else 0
        if (found := _count(conn, raw, part.where)) != expected or loaded.counts.get(part.name, 0) != expected:
            raise CrmError(f"{part.name}: the file has {expected} rows but {found} arrived; nothing was restored.")
        # a table copied without its key is matched on every column but JSON ones
        key = part.key or tuple(n for n, k in part.columns if k != "json")
        for sample in loaded.samples.get(part.name, []):
            decoded = _decode(part.columns, sample)
            where = and_(*(raw.c[k] == decoded[k] if decoded[k] is not None else raw.c[k].is_(None) for k in key))
            back = conn.execute(_select(part, where)).first()
            if back is None or _encode(part, back) != sample:
                raise CrmError(f"{part.name}: a row read back differs from the file; nothing was restored.")


def _after_load(conn: Connection, workspace_id: str | None, header: dict[str, Any]) -> None:
    """What a load needs beside rows: the indexes of indexed custom fields, and on PostgreSQL the sequences of
    integer keys that arrived with their values."""
    fields = CustomField.__table__  # type: ignore[attr-defined]
    query = select(fields).where(fields.c.indexed.is_(True))
    if workspace_id is not None:
        query = query.where(fields.c.workspace_id == workspace_id)
    for definition in conn.execute(query.order_by(fields.c.id)).mappings():
        index_values(conn, dict(definition))
    if conn.dialect.name != "postgresql":
        return
    arrived = {t["name"]: {c for c, _ in t["columns"]} for t in header["tables"]}
    for table in _schema():
        column = table.autoincrement_column
        if column is not None and column.name in arrived.get(table.name, ()):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                    f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"
                )
            )


def _check_schema(header: dict[str, Any], plan: list[Part]) -> None:
    """A file of the current revision describes the tables exactly as this version does."""
    if [(t["name"], t["columns"], t["key"]) for t in header["tables"]] != [
        (p.name, p.spec["columns"], p.spec["key"]) for p in plan
    ]:
        raise Damaged(1, "its tables do not match its schema revision; it was changed")


# --- restoring a workspace --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    workspace: dict[str, Any]  # id, slug, name as restored
    replaced: str | None  # the slug of the workspace it replaced
    rows: int
    tables: int
    upgraded_from: str | None  # the file's revision, when older than the database's
    paused_webhooks: int = 0  # subscriptions active in the backup, restored paused


def _workspaces(conn: Connection, where: ColumnElement[bool]) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(WORKSPACES).where(where)).mappings()]


def _target(conn: Connection, backed_up: dict[str, Any], into: str | None) -> tuple[str, dict[str, Any] | None]:
    """The slug the workspace gets and the workspace it replaces, if any. Its id is always the backup's: records,
    history and trash name it, so a backup cannot sit beside its original in one database."""
    named = into or backed_up["slug"]
    by_name = _workspaces(conn, or_(WORKSPACES.c.slug == named, WORKSPACES.c.id == named))
    if into is not None and not by_name and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", into):
        raise CrmError("--into-workspace: a workspace slug is 1-63 lowercase letters, digits and dashes.")
    slug = by_name[0]["slug"] if by_name else named
    by_id = _workspaces(conn, WORKSPACES.c.id == backed_up["id"])
    if by_id and by_name and by_id[0]["id"] != by_name[0]["id"]:
        raise CrmError(
            f"The backed-up workspace (id {backed_up['id']}) is in this database as '{by_id[0]['slug']}', and "
            f"'{slug}' is another workspace. A restore keeps the backup's ids, so it can only replace "
            f"'{by_id[0]['slug']}' (--into-workspace {by_id[0]['slug']} --replace). Nothing was changed."
        )
    if by_id and not by_name and into not in (None, backed_up["slug"]):
        # a new slug asks for a second workspace, but the id is taken: restoring would take over the live one
        raise CrmError(
            f"The backed-up workspace (id {backed_up['id']}) is already in this database as "
            f"'{by_id[0]['slug']}', so it cannot be restored beside it as a new workspace '{slug}': a restore keeps "
            f"the backup's ids. Restore it into '{by_id[0]['slug']}' (--into-workspace {by_id[0]['slug']}, with "
            "--replace to overwrite its data), or into an empty database. Nothing was changed."
        )
    return slug, (by_id or by_name or [None])[0]


def _has_data(conn: Connection, scope: dict[str, tuple[Table, ColumnElement[bool]]]) -> str | None:
    """The first table holding rows of the workspace (besides its own row)."""
    for name, (raw, where) in scope.items():
        if name != "workspaces" and conn.execute(select(true()).select_from(raw).where(where).limit(1)).first():
            return name
    return None


def _delete_workspace(conn: Connection, scope: dict[str, tuple[Table, ColumnElement[bool]]]) -> None:
    for raw, where in reversed(scope.values()):  # children first, so no foreign key restricts a delete
        conn.execute(delete(raw).where(where))


# a paused subscription, as webhooks_update(active: false) leaves it
INTERRUPTED_EMAIL = {
    "state": "unknown",
    "error": "The backup was taken while this send was under way; it may have been sent since. Not sent again.",
}
PAUSED = {"active": False, "failing_since": None, "disabled_reason": None}


def _restore_into(
    conn: Connection,
    header: dict[str, Any],
    rows: Rows,
    into: str | None,
    replace: bool,
    resume_webhooks: bool,
    progress: Progress | None,
) -> Restored:
    backed_up = header["workspace"]
    plan = workspace_plan(backed_up["id"])
    _check_schema(header, plan)
    slug, existing = _target(conn, backed_up, into)
    if existing is not None:
        scope = workspace_scope(existing["id"])
        if not replace and (holding := _has_data(conn, scope)) is not None:
            elsewhere = ", or choose another --into-workspace" if existing["id"] != backed_up["id"] else ""
            raise CrmError(
                f"Workspace '{existing['slug']}' already has data ({holding} and maybe more). Restore with --replace "
                f"to delete it and put the backup in its place{elsewhere}. Nothing was changed."
            )
        _delete_workspace(conn, scope)

    paused: list[str] = []

    def restored(table: str, row: dict[str, Any]) -> dict[str, Any]:
        if table == "workspaces":
            return row | {"slug": slug}
        if table == "webhooks" and row["active"] and not resume_webhooks:
            paused.append(row["id"])
            return row | PAUSED
        if table == "email_sends" and row["finished_at"] is None:
            return row | {"finished_at": row["heartbeat_at"]}  # no worker carries on a send from a backup...
        if table == "email_outbox" and row["state"] in ("pending", "sending"):
            return row | INTERRUPTED_EMAIL  # ...which may have reached people after the backup was taken
        return row

    with _database_errors():
        loaded = load(conn, header, rows, progress, restored)
        verify(conn, header, plan, loaded)
        _after_load(conn, backed_up["id"], header)
    return Restored(
        workspace={**backed_up, "slug": slug},
        replaced=existing["slug"] if existing else None,
        rows=header["rows"],
        tables=len(header["tables"]),
        upgraded_from=None,
        paused_webhooks=len(paused),
    )


@contextmanager
def _database_errors() -> Iterator[None]:
    """A database error that is not a refused row (reading rows back, indexing) ends the restore in one line."""
    try:
        yield
    except DBAPIError as exc:
        reason = " ".join(str(exc.orig).split())
        raise CrmError(f"The database refused the restore ({reason}); nothing was restored.") from None


def _revisions(header: dict[str, Any]) -> tuple[str, str]:
    """(the file's revision, the newest this version knows); refuses a revision it does not know (a newer one)."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    scripts = ScriptDirectory.from_config(alembic_config())
    head = scripts.get_current_head()
    assert head is not None
    revision = str(header.get("revision"))
    try:
        known = scripts.get_revision(revision)
    except CommandError:
        known = None
    if known is None:
        raise CrmError(
            f"The backup is of schema revision {revision}, newer than this mcp-crm knows (up to {head}); "
            "upgrade mcp-crm to restore it. Nothing was changed."
        )
    return revision, head


async def restore_workspace(
    database_url: str,
    path: Path,
    into: str | None = None,
    replace: bool = False,
    progress: Progress | None = None,
    resume_webhooks: bool = False,
) -> Restored:
    """Restores a workspace backup into the database in one transaction (see the module's docstring). Webhook
    subscriptions come back paused unless `resume_webhooks`."""
    with _input(path) as (header, rows):
        if header.get("scope") != "workspace":
            raise CrmError(f"{path} is not a workspace backup.")
        revision, head = _revisions(header)
        if revision != head:
            with tempfile.TemporaryDirectory(prefix="mcp-crm-restore-") as scratch:
                upgraded = Path(scratch) / "upgraded.jsonl.gz"
                await _upgrade_file(header, rows, revision, Path(scratch), upgraded, progress)
                restored = await restore_workspace(database_url, upgraded, into, replace, progress, resume_webhooks)
                return replace_fields(restored, upgraded_from=revision)
        db = Database(database_url)
        try:
            await migrate(db)
            return await db.write(
                lambda conn: _restore_into(conn, header, rows, into, replace, resume_webhooks, progress)
            )
        finally:
            await db.dispose()


async def _upgrade_file(
    header: dict[str, Any],
    rows: Rows,
    revision: str,
    scratch: Path,
    upgraded: Path,
    progress: Progress | None,
) -> None:
    """Loads an older file into a scratch SQLite database at its revision, lets the migrations bring it up to date
    and writes the workspace from there again: the restore then sees what an upgraded database would hold."""
    from alembic import command

    db = Database(f"sqlite:///{scratch / 'old.db'}")
    try:
        await db.write(lambda conn: command.upgrade(alembic_config(conn), revision))

        def fill(conn: Connection) -> None:
            with _database_errors():  # a header naming tables its revision does not have ends here
                loaded = load(conn, header, rows, progress, label=f"Reading (schema {revision})")
                for spec in header["tables"]:
                    raw = _raw_table(spec["name"], [tuple(c) for c in spec["columns"]], spec["key"])
                    if _count(conn, raw, None) != spec["count"] or loaded.counts.get(spec["name"], 0) != spec["count"]:
                        raise CrmError(f"{spec['name']}: the file has {spec['count']} rows but fewer arrived.")

        await db.write(fill)
        await migrate(db)

        def rewrite(conn: Connection) -> None:
            about = {"scope": "workspace", "workspace": header["workspace"], "left_out": OAUTH_STATE}
            with _output(upgraded, level=1) as sink:
                dump(conn, workspace_plan(header["workspace"]["id"]), sink, about)

        await db.read(rewrite)
    finally:
        await db.dispose()


# --- copying a whole database -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Copied:
    tables: dict[str, int]  # rows per table, as counted in both databases
    sampled: int  # rows read back from the target and compared


async def check_empty_target(database_url: str) -> None:
    """Refuses a target holding anything: tables mcp-crm does not own, or rows in its own (after migrating it)."""
    db = Database(database_url)
    try:
        ours = {t.name for t in _schema()} | {"alembic_version"}
        names = await db.read(lambda conn: inspect(conn).get_table_names())
        foreign = sorted(n for n in names if n not in ours and not n.startswith("search_fts"))
        if foreign:
            raise CrmError(f"The target database is not empty: it has tables {', '.join(foreign[:5])}. Use a new one.")
        await migrate(db)

        def holding(conn: Connection) -> list[str]:
            return [t.name for t in _schema() if _count(conn, _raw(t), None)]

        if full := await db.read(holding):
            raise CrmError(f"The target database is not empty ({', '.join(full[:5])} have rows). Use a new one.")
    finally:
        await db.dispose()


async def dump_database(database_url: str, path: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Writes every table of the (migrated) database to `path`; returns the header."""
    db = Database(database_url)
    try:
        await migrate(db)

        def work(conn: Connection) -> dict[str, Any]:
            snapshot(conn)
            with _output(path, level=1) as sink:
                about = {"scope": "database", "workspace": None}
                return dump(conn, database_plan(), sink, about, progress, "Reading")

        return await db.read(work)
    finally:
        await db.dispose()


async def load_database(database_url: str, path: Path, progress: Progress | None = None) -> Copied:
    """Loads a whole-database file into an empty database of the same revision, in one transaction."""
    with _input(path) as (header, rows):
        db = Database(database_url)
        try:
            await migrate(db)

            def work(conn: Connection) -> Copied:
                if header.get("scope") != "database" or header["revision"] != current_revision(conn):
                    raise CrmError("The copy and the target database are of different schema revisions.")
                plan = database_plan()
                _check_schema(header, plan)
                with _database_errors():
                    loaded = load(conn, header, rows, progress, label="Writing")
                    verify(conn, header, plan, loaded)
                    _after_load(conn, None, header)
                return Copied(
                    tables={t["name"]: t["count"] for t in header["tables"]},
                    sampled=sum(len(s) for s in loaded.samples.values()),
                )

            return await db.write(work)
        finally:
            await db.dispose()


async def copy_database(source_url: str, target_url: str, progress: Progress | None = None) -> Copied:
    """Copies every table of the source into an empty target (mcp-crm migrate-store)."""
    if source_url == target_url:
        raise CrmError("--from and --to are the same database.")
    await check_empty_target(target_url)
    with tempfile.TemporaryDirectory(prefix="mcp-crm-copy-") as scratch:
        copy = Path(scratch) / "copy.jsonl.gz"
        await dump_database(source_url, copy, progress)
        return await load_database(target_url, copy, progress)
