"""The store: migrations own the schema, SQLite runs safely, the server migrates at start."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from mcp import Client
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from mcp_crm.catalog.server import build_server
from mcp_crm.store import Database, migrate
from mcp_crm.store.search_tables import include_object
from tests.helpers import call

pytestmark = pytest.mark.anyio


async def test_migrations_create_exactly_the_declared_schema(database_url):
    db = Database(database_url)
    try:
        diff = await db.read(
            lambda conn: _unconfirmed(
                conn,
                compare_metadata(
                    MigrationContext.configure(conn, opts={"include_object": include_object}), SQLModel.metadata
                ),
            )
        )
    finally:
        await db.dispose()
    assert diff == [], "the tables changed without a migration: add one in src/mcp_crm/store/migrations/versions"


def _unconfirmed(conn, diff: list) -> list:
    """SQLite reflects a foreign key added with its column (ALTER TABLE ... ADD COLUMN ... REFERENCES, the only
    way SQLite adds one) without its ON DELETE rule; PRAGMA foreign_key_list confirms the rule instead."""
    if conn.dialect.name != "sqlite":
        return diff

    def key(fk) -> tuple:
        return fk.table.name, tuple(c.name for c in fk.columns), tuple(e.target_fullname for e in fk.elements)

    def pragma_rule(fk) -> str | None:
        rows = conn.exec_driver_sql(f"PRAGMA foreign_key_list({fk.table.name})").all()
        return next((r[6] for r in rows if r[3] == fk.columns[0].name), None)

    removed = {key(d[1]) for d in diff if d[0] == "remove_fk"}
    confirmed = {
        key(d[1]) for d in diff if d[0] == "add_fk" and key(d[1]) in removed and pragma_rule(d[1]) == d[1].ondelete
    }
    return [d for d in diff if not (d[0] in ("add_fk", "remove_fk") and key(d[1]) in confirmed)]


async def test_server_creates_and_migrates_an_empty_database(tmp_path):
    path = tmp_path / "nested" / "fresh.db"
    async with Client(build_server(f"sqlite:///{path}")) as client:
        await call(client, "contacts_create", {"first_name": "A", "last_name": "B"})
    assert path.exists()
    async with Client(build_server(f"sqlite:///{path}")) as client:  # second start: no re-migration
        assert len((await call(client, "contacts_list"))["items"]) == 1


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        pragmas = await db.read(
            lambda conn: [
                conn.execute(text(f"PRAGMA {p}")).scalar() for p in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
        )
    finally:
        await db.dispose()
    assert pragmas[0] == "wal" and pragmas[1] == 1 and pragmas[2] >= 5000


async def test_ids_are_time_ordered(client):
    made = (await call(client, "tasks_create_many", {"items": [{"name": str(i)} for i in range(50)]}))["items"]
    ids = [t["id"] for t in made]
    assert ids == sorted(ids) and len(set(ids)) == 50


async def test_concurrent_writes_on_one_connection_all_succeed(client):
    import anyio

    async def writer(n: int) -> None:
        items = [{"first_name": f"W{n}", "last_name": str(i)} for i in range(20)]
        await call(client, "contacts_create_many", {"items": items})
        page = await call(client, "contacts_list", {"filter": {"field": "first_name", "op": "eq", "value": f"W{n}"}})
        await call(
            client, "contacts_update_many", {"items": [{"id": c["id"], "job_title": "x"} for c in page["items"]]}
        )

    async with anyio.create_task_group() as group:
        for n in range(12):
            group.start_soon(writer, n)
    page = await call(
        client, "contacts_list", {"filter": {"field": "job_title", "op": "eq", "value": "x"}, "include_total": True}
    )
    assert page["total"] == 12 * 20


@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_every_sortable_field_is_sorted_by_an_index_walk(tmp_path, sqlite_template, direction):
    """The config advertises a field as sortable only when a page sorted by it needs no sort step."""
    import shutil

    from sqlalchemy import select

    from mcp_crm.entities import ENTITIES
    from mcp_crm.query import SortKey, order_by
    from mcp_crm.query.pages import resolve_sort

    shutil.copy(sqlite_template, tmp_path / "plan.db")
    db = Database(f"sqlite:///{tmp_path / 'plan.db'}")

    def plans(conn):
        found = {}
        for entity in ENTITIES.values():
            table = entity.table.__table__
            for name in (n for n, f in entity.fields.items() if f.sortable):
                keys = resolve_sort(entity, [SortKey(field=name, direction=direction)])
                query = select(table).where(table.c.workspace_id == "w").order_by(*order_by(table, keys, "sqlite"))
                sql = str(query.limit(26).compile(conn, compile_kwargs={"literal_binds": True}))
                found[f"{entity.name}.{name}"] = " ".join(
                    r[-1] for r in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
                )
        return found

    try:
        found = await db.read(plans)
    finally:
        await db.dispose()
    assert len(found) > 40
    for where, plan in found.items():
        assert "TEMP B-TREE" not in plan, f"{where}: {plan}"


async def test_migrations_downgrade_to_nothing_and_back(database_url):
    from alembic import command

    from mcp_crm.store.migrate import alembic_config

    def tables(conn):
        return set(inspect(conn).get_table_names())

    db = Database(database_url)
    try:
        await db.write(lambda conn: command.downgrade(alembic_config(conn), "base"))
        assert await db.read(tables) <= {"alembic_version"}
        await migrate(db)
        assert {"contacts", "deals", "change_events"} <= await db.read(tables)
    finally:
        await db.dispose()


async def test_concurrent_first_starts_migrate_once(empty_database_url):
    """Two servers opening the same new database at once both come up (SQLite: the write lock and a retried
    switch to WAL; PostgreSQL: an advisory lock), and the schema is created once."""
    import anyio

    databases = [Database(empty_database_url), Database(empty_database_url)]
    try:
        async with anyio.create_task_group() as group:
            for db in databases:
                group.start_soon(migrate, db)
        version = await databases[0].read(
            lambda conn: conn.execute(text("SELECT version_num FROM alembic_version")).all()
        )
        assert len(version) == 1
    finally:
        for db in databases:
            await db.dispose()


async def test_a_current_database_starts_without_alembic(empty_database_url):
    """HEAD (read off the migration file names) is Alembic's head; a database at it starts without importing
    Alembic, one behind is upgraded."""
    import subprocess
    import sys

    from alembic import command
    from alembic.script import ScriptDirectory

    from mcp_crm.store.migrate import HEAD, alembic_config, current_revision

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD
    db = Database(empty_database_url)
    try:
        assert await db.read(current_revision) is None
        await migrate(db)
        assert await db.read(current_revision) == HEAD
        starts = (
            "import asyncio, sys\n"
            "from mcp_crm.store import Database, migrate\n"
            f"db = Database({empty_database_url!r})\n"
            "asyncio.run(migrate(db))\n"
            "print(sorted(m for m in sys.modules if m.startswith('alembic')))\n"
        )
        done = subprocess.run([sys.executable, "-c", starts], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"

        await db.write(lambda conn: command.downgrade(alembic_config(conn), "-1"))
        assert await db.read(current_revision) != HEAD
        await migrate(db)
        assert await db.read(current_revision) == HEAD
    finally:
        await db.dispose()
