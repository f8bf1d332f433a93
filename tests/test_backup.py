"""mcp-crm backup / restore / migrate-store: a workspace filled through the real operations round-trips exactly,
row by row, into an empty SQLite or PostgreSQL database; a restore over data is refused and changes nothing; a
whole SQLite database moves to PostgreSQL with every row intact and keeps working there."""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import stat
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from sqlalchemy import Connection, func, insert, inspect, select, text
from sqlmodel import SQLModel
from typer.testing import CliRunner

from mcp_crm.demo import load_demo
from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for, update_model_for
from mcp_crm.operations import Crm, ListQuery
from mcp_crm.operations.access import (
    check_password,
    create_key,
    create_workspace,
    parse_scopes,
    set_password,
    verify_key,
    workspace_owner,
)
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database, migrate
from mcp_crm.store.tables import OAUTH_CLIENTS, OAUTH_TOKENS
from mcp_crm.transfer.backup_cli import register
from tests.conftest import PG_DSN, _pg_admin
from tests.helpers import snapshot

PASSWORD = "correct horse battery staple"
NAME = ("Zephyrine", "Quillfeather")  # a contact no demo data has
OAUTH = {"oauth_clients", "oauth_requests", "oauth_codes", "oauth_tokens"}  # not in a workspace backup
# tables that do not name their workspace: the parent row that does
PARENTS = {
    "contact_organizations": ("contact_id", "contacts"),
    "deal_contacts": ("deal_id", "deals"),
    "deal_organizations": ("deal_id", "deals"),
    "deal_services": ("deal_id", "deals"),
    "activity_participants": ("activity_id", "activities"),
    "list_contacts": ("list_id", "lists"),
    "list_leads": ("list_id", "lists"),
    "passwords": ("user_id", "users"),
    "webhook_outbox": ("webhook_id", "webhooks"),
    "webhook_attempts": ("delivery_id", "webhook_deliveries"),
}


def cli(*args: str) -> Any:
    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, [str(a) for a in args])


async def _with_db(url: str, work: Any) -> Any:
    db = Database(url)
    try:
        return await work(db)
    finally:
        await db.dispose()


def run(url: str, work: Any) -> Any:
    return asyncio.run(_with_db(url, work))


async def _fill(db: Database) -> dict[str, Any]:
    """The demo data, then one of everything else a workspace holds."""
    await load_demo(db.url)
    crm, actor = Crm(db, allow_local_webhooks=True), await local_actor(db, via="cli")
    contacts, fields, notes = ENTITIES["contacts"], ENTITIES["fields"], ENTITIES["notes"]
    field = create_model_for(fields)(entity="contacts", label="Score", type="number", indexed=True)
    await crm.create(actor, fields, field)
    hook = await crm.webhooks_create(actor, "http://127.0.0.1:9/hook", ["*"], "backup test")
    model = create_model_for(contacts)
    zephyrine = await crm.create(
        actor, contacts, model(first_name=NAME[0], last_name=NAME[1], custom={"score": "42.5"}, birthday="1990-02-28")
    )
    await crm.update(actor, contacts, zephyrine["id"], update_model_for(contacts)(job_title="Cartographer"))
    note = create_model_for(notes)(body="Prefers calls after 4pm.", record_type="contacts", record_id=zephyrine["id"])
    await crm.create(actor, notes, note)
    some = (await crm.list(actor, contacts, ListQuery(limit=2))).items
    await crm.delete(actor, contacts, some[0]["id"])  # into the trash
    await crm.webhooks_test(actor, hook["id"])  # a delivery and a failed attempt (nothing listens on port 9)

    def credentials(conn: Connection) -> dict[str, Any]:
        owner = workspace_owner(conn, actor.workspace_id)
        _, secret = create_key(conn, actor.workspace_id, owner, parse_scopes("read,write"), "backup test")
        set_password(conn, owner, PASSWORD)
        other = create_workspace(conn, "other", "Other", "Olga Other", "olga@example.com")
        conn.execute(insert(OAUTH_CLIENTS).values(client_id="app", info={"client_id": "app"}, created_at=_now()))
        conn.execute(
            insert(OAUTH_TOKENS).values(
                id=str(uuid.uuid4()),
                client_id="app",
                workspace_id=actor.workspace_id,
                user_id=owner,
                scopes=["read"],
                access_hash="a" * 64,
                access_expires_at=_now(),
                refresh_hash="r" * 64,
                refresh_expires_at=_now(),
                created_at=_now(),
            )
        )
        return {"key": secret, "owner": owner, "other": other["id"]}

    made = await db.write(credentials)
    other = Actor(workspace_id=made["other"], user_id=None, via="cli")
    await crm.create(other, contacts, model(first_name="Olaf", last_name="Elsewhere"))
    return made | {"workspace": actor.workspace_id, "zephyrine": zephyrine["id"]}


def _head() -> str:
    from alembic.script import ScriptDirectory

    from mcp_crm.store.migrate import alembic_config

    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A SQLite database filled through the real operations, and its backup of the local workspace. Read only."""
    folder = tmp_path_factory.mktemp("source")
    url = f"sqlite:///{folder / 'crm.db'}"
    made = run(url, _fill)
    done = cli("backup", folder / "local.jsonl.gz", "--database-url", url)
    assert done.exit_code == 0, done.output
    return made | {"url": url, "file": folder / "local.jsonl.gz"}


def _tables(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, read through the models (so SQLite and PostgreSQL compare alike)."""

    def read(conn: Connection) -> dict[str, list[dict[str, Any]]]:
        return {t.name: [dict(r) for r in conn.execute(select(t)).mappings()] for t in SQLModel.metadata.sorted_tables}

    return run(url, lambda db: db.read(read))


def _local(rows: dict[str, list[dict[str, Any]]], workspace_id: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of one workspace, found independently of the backup code."""
    kept: dict[str, list[dict[str, Any]]] = {}
    for name, table_rows in rows.items():  # parents before children
        if name in OAUTH:
            kept[name] = []
        elif name == "workspaces":
            kept[name] = [r for r in table_rows if r["id"] == workspace_id]
        elif name in PARENTS:
            column, parent = PARENTS[name]
            ids = {r["id"] for r in kept[parent]}
            kept[name] = [r for r in table_rows if r[column] in ids]
        else:
            kept[name] = [r for r in table_rows if r["workspace_id"] == workspace_id]
    return kept


def _paused(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The rows as a restore without --resume-webhooks leaves them: active subscriptions paused."""
    paused = {"active": False, "failing_since": None, "disabled_reason": None}
    return rows | {"webhooks": [w | paused if w["active"] else w for w in rows["webhooks"]]}


def _comparable(rows: list[dict[str, Any]], drop: tuple[str, ...] = ()) -> list[str]:
    return sorted(repr(sorted((k, v) for k, v in r.items() if k not in drop)) for r in rows)


def _assert_same(expected: dict[str, list[dict[str, Any]]], found: dict[str, list[dict[str, Any]]]) -> None:
    assert expected.keys() == found.keys()
    for name in expected:
        drop = ("id",) if name == "search_documents" else ()  # the target numbers its index rows itself
        assert _comparable(found[name], drop) == _comparable(expected[name], drop), name


def _search(url: str, workspace_id: str, words: str) -> list[str]:
    async def find(db: Database) -> list[str]:
        actor = Actor(workspace_id=workspace_id, user_id=None, via="cli")
        return [hit["record_id"] for hit in await Crm(db).search(actor, words)]

    return run(url, find)


def test_a_restored_workspace_is_the_backed_up_one_row_by_row(source, empty_database_url):
    source_rows = _tables(source["url"])
    expected = _local(source_rows, source["workspace"])
    assert all(expected[name] for name in ("webhook_deliveries", "webhook_attempts", "webhook_outbox", "trash"))
    assert all(expected[name] for name in ("passwords", "api_keys", "custom_fields", "notes", "search_documents"))
    assert source_rows["oauth_tokens"] and source_rows["workspaces"] != expected["workspaces"]

    done = cli("restore", source["file"], "--database-url", empty_database_url)

    assert done.exit_code == 0, done.output
    assert "counts verified" in done.output
    assert "1 webhook was restored paused" in done.output
    _assert_same(_paused(expected), _tables(empty_database_url))
    assert _search(empty_database_url, source["workspace"], " ".join(NAME)) == [source["zephyrine"]]

    def still_works(conn: Connection) -> tuple[Any, Any, Any]:
        index = "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'ix_custom_contacts_score'"
        if conn.dialect.name == "postgresql":
            index = "SELECT indexname FROM pg_indexes WHERE indexname = 'ix_custom_contacts_score'"
        email = conn.execute(text("SELECT email FROM users WHERE id = :id"), {"id": source["owner"]}).scalar_one()
        signed_in = check_password(conn, source["workspace"], email, PASSWORD)
        return verify_key(conn, source["key"]), signed_in, conn.execute(text(index)).scalar()

    key, signed_in, index = run(empty_database_url, lambda db: db.read(still_works))
    assert key is not None and signed_in is not None, "API keys and passwords work after a restore"
    assert index == "ix_custom_contacts_score"


def test_the_file_holds_one_workspace_in_foreign_key_order(source):
    with gzip.open(source["file"], "rt", encoding="utf-8") as lines:
        header = json.loads(next(lines))
        rows = [json.loads(line) for line in lines]

    order = [t.name for t in SQLModel.metadata.sorted_tables if t.name not in OAUTH]
    assert [t["name"] for t in header["tables"]] == order
    assert header["workspace"]["id"] == source["workspace"] and header["revision"] == _head()
    assert set(header["left_out"]) == OAUTH
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["table"]] = counts.get(row["table"], 0) + 1
    assert counts == {t["name"]: t["count"] for t in header["tables"] if t["count"]}
    assert [r["table"] for r in rows] == sorted((r["table"] for r in rows), key=order.index)
    assert not any(source["other"] in json.dumps(r) for r in rows)
    deal = next(r["row"] for r in rows if r["table"] == "deals" and r["row"]["value"] is not None)
    assert isinstance(deal["value"], int)  # the stored integer of the scaled decimal, not a rounded number
    assert stat.S_IMODE(source["file"].stat().st_mode) == 0o600


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")  # snapshot()
def test_a_restore_over_data_is_refused_and_a_failed_one_changes_nothing(source, empty_database_url, tmp_path):
    assert cli("restore", source["file"], "--database-url", empty_database_url).exit_code == 0
    before = asyncio.run(snapshot(empty_database_url))

    again = cli("restore", source["file"], "--database-url", empty_database_url)
    assert again.exit_code == 1
    assert "already has data" in again.output and "--replace" in again.output
    assert asyncio.run(snapshot(empty_database_url)) == before

    damaged = tmp_path / "damaged.jsonl.gz"
    with gzip.open(source["file"], "rt", encoding="utf-8") as whole, gzip.open(damaged, "wt") as cut:
        lines = whole.readlines()
        cut.writelines(lines[:-5])  # the last rows are missing: counts cannot match
    failed = cli("restore", damaged, "--database-url", empty_database_url, "--replace")
    assert failed.exit_code == 1 and "nothing was restored" in failed.output
    assert asyncio.run(snapshot(empty_database_url)) == before

    replaced = cli("restore", source["file"], "--database-url", empty_database_url, "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert "replacing local" in replaced.output
    _assert_same(_paused(_local(_tables(source["url"]), source["workspace"])), _tables(empty_database_url))


def test_a_newer_file_is_refused(source, tmp_path):
    newer = tmp_path / "newer.jsonl.gz"
    with gzip.open(source["file"], "rt", encoding="utf-8") as whole, gzip.open(newer, "wt") as changed:
        header = json.loads(whole.readline())
        changed.write(json.dumps(header | {"revision": "9999"}) + "\n")
        shutil.copyfileobj(whole, changed)
    target = tmp_path / "target.db"

    done = cli("restore", newer, "--database-url", f"sqlite:///{target}")

    assert done.exit_code == 1 and "newer than this mcp-crm knows" in done.output
    assert not target.exists()


def _tables_at(revision: str, folder: Any) -> dict[str, set[str]]:
    """The tables of the schema at a revision, as the migrations make them, with their columns."""
    from alembic import command

    from mcp_crm.store.migrate import alembic_config

    url = f"sqlite:///{folder / f'at-{revision}.db'}"
    run(url, lambda db: db.write(lambda conn: command.upgrade(alembic_config(conn), revision)))

    def columns(conn: Connection) -> dict[str, set[str]]:
        schema = inspect(conn)
        return {t: {c["name"] for c in schema.get_columns(t)} for t in schema.get_table_names()}

    return run(url, lambda db: db.read(columns))


def test_an_older_file_is_upgraded_by_the_migrations(source, tmp_path):
    """A file of revision 0014 (before webhooks) restores through the migrations to the current schema."""
    older = tmp_path / "older.jsonl.gz"
    then = _tables_at("0014", tmp_path)
    with gzip.open(source["file"], "rt", encoding="utf-8") as whole, gzip.open(older, "wt") as changed:
        header = json.loads(whole.readline())
        # as a file of that revision: its tables, with only the columns they had then
        tables = [
            t | {"columns": [c for c in t["columns"] if c[0] in then[t["name"]]]}
            for t in header["tables"]
            if t["name"] in then
        ]
        later = {t["name"] for t in header["tables"]} - then.keys()
        assert {"webhooks", "webhook_outbox", "webhook_deliveries", "webhook_attempts"} <= later
        rows = sum(t["count"] for t in tables)
        changed.write(json.dumps(header | {"revision": "0014", "tables": tables, "rows": rows}) + "\n")
        for line in whole:
            item = json.loads(line)
            if item["table"] in then:
                row = {k: v for k, v in item["row"].items() if k in then[item["table"]]}
                changed.write(json.dumps(item | {"row": row}) + "\n")
    url = f"sqlite:///{tmp_path / 'target.db'}"

    done = cli("restore", older, "--database-url", url)

    assert done.exit_code == 0, done.output
    assert "upgraded from schema 0014" in done.output
    expected = _local(_tables(source["url"]), source["workspace"])
    expected |= {name: [] for name in later}
    found = _tables(url)
    # migrations 0017 and 0020 give the workspace its lead stages, with ids and times of their own
    made = sorted((s["position"], s["name"], s["kind"]) for s in found.pop("lead_stages"))
    assert made == [
        (1, "New", "open"),
        (2, "Contacted", "open"),
        (3, "Qualified", "open"),
        (4, "Unqualified", "lost"),
        (5, "Converted", "won"),
    ]
    del expected["lead_stages"]
    # columns added since hold what their migration gave them, which the file cannot say
    _assert_same(_as_then(expected, then), _as_then(found, then))


def _as_then(rows: dict[str, list[dict[str, Any]]], then: dict[str, set[str]]) -> dict[str, list[dict[str, Any]]]:
    """The rows with only the columns their table had then (tables made since are kept whole)."""
    return {
        name: [{k: v for k, v in row.items() if name not in then or k in then[name]} for row in table_rows]
        for name, table_rows in rows.items()
    }


def test_a_restore_replaces_the_local_workspace_a_new_database_made(source, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    async def init(db: Database) -> Actor:  # what `mcp-crm init` or the first `serve` does
        await migrate(db)
        return await local_actor(db, via="cli")

    made = run(url, init)
    assert made.workspace_id != source["workspace"]

    refused = cli("restore", source["file"], "--database-url", url)
    assert refused.exit_code == 1 and "Workspace 'local' already has data" in refused.output

    done = cli("restore", source["file"], "--database-url", url, "--replace")
    assert done.exit_code == 0, done.output
    rows = _tables(url)
    assert [(w["id"], w["slug"]) for w in rows["workspaces"]] == [(source["workspace"], "local")]
    _assert_same(_paused(_local(_tables(source["url"]), source["workspace"])), rows)


def test_a_restore_into_another_slug(source, tmp_path):
    url = f"sqlite:///{tmp_path / 'renamed.db'}"

    done = cli("restore", source["file"], "--database-url", url, "--into-workspace", "archive")

    assert done.exit_code == 0, done.output
    rows = _tables(url)
    assert [(w["id"], w["slug"]) for w in rows["workspaces"]] == [(source["workspace"], "archive")]
    assert len(rows["contacts"]) == len(_local(_tables(source["url"]), source["workspace"])["contacts"])


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")  # snapshot()
def test_a_new_slug_for_a_workspace_already_here_is_refused(source, empty_database_url):
    """The backup's id is in the database as 'local': a restore as 'archive' would take that workspace over."""
    assert cli("restore", source["file"], "--database-url", empty_database_url).exit_code == 0
    before = asyncio.run(snapshot(empty_database_url))

    for extra in ((), ("--replace",)):
        done = cli(
            "restore", source["file"], "--database-url", empty_database_url, "--into-workspace", "archive", *extra
        )

        assert done.exit_code == 1
        assert "is already in this database as 'local'" in done.output
        assert "--into-workspace local" in done.output and "an empty database" in done.output
        assert "Nothing was changed" in done.output
        assert asyncio.run(snapshot(empty_database_url)) == before


def test_webhooks_are_restored_paused_unless_resumed(source, tmp_path):
    url = f"sqlite:///{tmp_path / 'hooks.db'}"

    paused = cli("restore", source["file"], "--database-url", url)

    assert paused.exit_code == 0, paused.output
    assert "1 webhook was restored paused" in paused.output and "--resume-webhooks" in paused.output
    (hook,) = _tables(url)["webhooks"]
    assert (hook["active"], hook["failing_since"], hook["disabled_reason"]) == (False, None, None)
    (original,) = _local(_tables(source["url"]), source["workspace"])["webhooks"]
    assert original["active"] is True

    resumed = cli("restore", source["file"], "--database-url", url, "--replace", "--resume-webhooks")

    assert resumed.exit_code == 0, resumed.output
    assert "paused" not in resumed.output
    assert _tables(url)["webhooks"] == [original]


def _damage(path: Any, target: Any, how: str) -> int:
    """Writes a damaged copy of a backup; returns the line the restore should name."""
    with gzip.open(path, "rb") as whole:
        lines = whole.readlines()
    middle = len(lines) // 2
    contact = next(i for i, line in enumerate(lines) if line.startswith(b'{"table":"contacts"'))
    if how == "truncated":
        data = gzip.compress(b"".join(lines))
        cut = data[: len(data) // 2]
        target.write_bytes(cut)
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut).count(b"\n") + 1  # the line cut off
    if how == "not json":
        lines[middle] = b'{"table": "contacts", "row": {"id": \n'
    elif how == "not utf-8":
        lines[middle] = b'{"table": "\xff\xfe"}\n'
    elif how == "bad value":
        row = json.loads(lines[contact])
        lines[contact] = (json.dumps(row | {"row": row["row"] | {"created_at": "yesterday"}}) + "\n").encode()
        middle = contact
    elif how == "refused":
        row = json.loads(lines[contact])
        lines[contact] = (json.dumps(row | {"row": row["row"] | {"first_name": None}}) + "\n").encode()
        middle = contact
    elif how == "no header":
        lines, middle = lines[1:], 0
    with gzip.open(target, "wb") as damaged:
        damaged.writelines(lines)
    return middle + 1


DAMAGE = {
    "truncated": "the compressed data is cut off or corrupt",
    "not json": "not a JSON line",
    "not utf-8": "not UTF-8 text",
    "bad value": "contacts.created_at is 'yesterday', not an ISO date and time",
    "refused": "or that row clashes with one already in this database",
    "no header": "no mcp-crm-backup header",
}


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")  # snapshot()
def test_a_damaged_file_names_its_line_and_restores_nothing(source, empty_database_url, tmp_path):
    assert cli("restore", source["file"], "--database-url", empty_database_url).exit_code == 0
    before = asyncio.run(snapshot(empty_database_url))

    for how, reason in DAMAGE.items():
        damaged = tmp_path / f"{how.replace(' ', '-')}.jsonl.gz"
        line = _damage(source["file"], damaged, how)

        # --replace: the workspace is deleted before the damage is met, and comes back with the rollback
        done = cli("restore", damaged, "--database-url", empty_database_url, "--replace")

        assert done.exit_code == 1, (how, done.output)
        assert "Traceback" not in done.output and reason in done.output, (how, done.output)
        assert f"The backup {damaged} is damaged at line {line} (" in done.output, (how, done.output)
        assert done.output.rstrip().endswith("nothing was restored."), (how, done.output)
        assert asyncio.run(snapshot(empty_database_url)) == before, how


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except OSError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_DSN} ({exc})")
    name = f"mcp_crm_test_copy_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    yield f"{PG_DSN.rsplit('/', 1)[0]}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_migrate_store_copies_a_whole_sqlite_database_to_postgres(source, scratch_postgres, tmp_path):
    done = cli("migrate-store", "--from", source["url"], "--to", scratch_postgres)

    assert done.exit_code == 0, done.output
    assert "counts match in every table" in done.output
    expected, copied = _tables(source["url"]), _tables(scratch_postgres)
    assert {n: len(r) for n, r in copied.items()} == {n: len(r) for n, r in expected.items()}
    assert len(copied["workspaces"]) == 2 and copied["oauth_tokens"] and copied["search_documents"]
    for name in expected:
        assert _comparable(copied[name]) == _comparable(expected[name]), name  # search rows keep their ids too

    assert _search(scratch_postgres, source["workspace"], " ".join(NAME)) == [source["zephyrine"]]

    async def write_there(db: Database) -> int:
        # a new record gets a new search row: its id sequence was moved past the copied ids
        actor = Actor(workspace_id=source["workspace"], user_id=None, via="cli")
        contacts = ENTITIES["contacts"]
        await Crm(db).create(actor, contacts, create_model_for(contacts)(first_name="After", last_name="Copy"))
        return await db.read(lambda c: c.execute(select(func.count()).select_from(text("search_documents"))).scalar())

    assert run(scratch_postgres, write_there) == len(expected["search_documents"]) + 1

    again = cli("migrate-store", "--from", source["url"], "--to", scratch_postgres)
    assert again.exit_code == 1 and "not empty" in again.output

    # and back: a backup made on PostgreSQL restores into SQLite as the workspace it was
    file, back = tmp_path / "from-postgres.jsonl.gz", f"sqlite:///{tmp_path / 'back.db'}"
    assert cli("backup", file, "--database-url", scratch_postgres).exit_code == 0
    assert cli("restore", file, "--database-url", back, "--resume-webhooks").exit_code == 0
    _assert_same(_local(_tables(scratch_postgres), source["workspace"]), _tables(back))


def test_migrate_store_refuses_a_database_with_other_tables(source, tmp_path):
    url = f"sqlite:///{tmp_path / 'theirs.db'}"
    run(url, lambda db: db.write(lambda c: c.execute(text("CREATE TABLE invoices (id integer)"))))

    done = cli("migrate-store", "--from", source["url"], "--to", url)

    assert done.exit_code == 1 and "invoices" in done.output
    assert run(
        url, lambda db: db.read(lambda c: c.execute(text("SELECT name FROM sqlite_master")).scalars().all())
    ) == ["invoices"]


def test_a_missing_workspace_or_file_is_one_line(source, tmp_path):
    missing = cli("backup", tmp_path / "x.jsonl.gz", "--database-url", source["url"], "--workspace", "nope")
    assert missing.exit_code == 1 and "No workspace 'nope'" in missing.output
    assert not (tmp_path / "x.jsonl.gz").exists() and not list(tmp_path.iterdir())

    unreadable = cli("restore", tmp_path / "absent.jsonl.gz", "--database-url", f"sqlite:///{tmp_path / 't.db'}")
    assert unreadable.exit_code == 1 and "Cannot read" in unreadable.output
