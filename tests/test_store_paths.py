"""The store's short paths answer as the long ones did: rows read through the SQLite driver equal SQLAlchemy's
(store/rows.py), a connection a database thread keeps starts each call as a fresh one, a cancelled caller
still waits for its transaction, and one process's writes take turns (store/database.py)."""

import threading
import time

import anyio
import pytest
from sqlalchemy import select

from mcp_crm.demo import load_demo
from mcp_crm.entities import ENTITIES
from mcp_crm.operations.records import _link_statement, _row_with_related_statement, table_of
from mcp_crm.store import Database, database, migrate
from mcp_crm.store.rows import _plan, select_rows

pytestmark = pytest.mark.anyio


def _typed(rows: list[dict]) -> list[list[tuple]]:
    """Rows with each value's type, so 1 and True, or Decimal('2.00') and 2.0, do not pass as equal."""
    return [[(key, type(value), value, getattr(value, "tzinfo", None)) for key, value in row.items()] for row in rows]


async def test_rows_read_through_the_driver_equal_sqlalchemys(database_url):
    await load_demo(database_url)
    db = Database(database_url)

    def compare(conn) -> int:
        compared = 0
        for entity in ENTITIES.values():
            ids = [r[0] for r in conn.execute(select(table_of(entity).c.id).limit(25))]
            statements = [(_row_with_related_statement(entity), "id")]
            statements += [(_link_statement(link, one=True), "own_id") for link in entity.links]
            for statement, parameter in statements:
                if conn.dialect.name == "sqlite":
                    assert _plan(statement, conn.dialect) is not None, f"{entity.name} would go through SQLAlchemy"
                for record_id in [*ids, "no-such-id"]:
                    values = {parameter: record_id}
                    expected = [dict(row) for row in conn.execute(statement, values).mappings()]
                    assert _typed(select_rows(conn, statement, values)) == _typed(expected), entity.name
                    compared += len(expected)
        return compared

    try:
        assert await db.read(compare) > 300  # the demo's records, with links, money, dates and flags
    finally:
        await db.dispose()


async def test_a_call_starts_on_a_connection_without_options_an_earlier_call_gave_it(database_url):
    db = Database(database_url)
    try:
        await migrate(db)
        await db.read(lambda conn: conn.execution_options(yield_per=10))
        options = await db.read(lambda conn: dict(conn.get_execution_options()))
        assert "yield_per" not in options and "stream_results" not in options

        with pytest.raises(ZeroDivisionError):
            await db.write(lambda conn: 1 / 0)
        assert await db.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar()) == 1
    finally:
        await db.dispose()


async def test_a_cancelled_caller_waits_for_its_transaction_to_end(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL runs the work on the event loop, without a thread to wait for")
    db = Database(database_url)
    started, release = threading.Event(), threading.Event()
    finished: list[bool] = []
    seen_on_exit: list[list[bool]] = []
    scope = anyio.CancelScope()

    def slow(conn) -> None:
        started.set()
        release.wait(30)
        finished.append(True)

    async def caller() -> None:
        with scope:
            try:
                await db.read(slow)
            finally:
                seen_on_exit.append(list(finished))

    try:
        await migrate(db)
        async with anyio.create_task_group() as group:
            group.start_soon(caller)
            await anyio.to_thread.run_sync(started.wait, 30)
            scope.cancel()
            await anyio.wait_all_tasks_blocked()  # a caller that did not wait would have ended by now
            release.set()
        assert seen_on_exit == [[True]]
    finally:
        release.set()
        await db.dispose()


async def test_one_process_writes_take_turns_rather_than_meet_sqlites_busy_handler(tmp_path, monkeypatch):
    # With no busy timeout, a write that found another's lock would fail at once with "database is locked".
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 0)
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/turns.db")
    inside: list[int] = []
    most_inside: list[int] = []

    def write(conn) -> None:
        inside.append(1)
        most_inside.append(len(inside))
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        time.sleep(0.005)  # a write long enough for the others to arrive meanwhile
        inside.pop()

    try:
        await migrate(db)
        async with anyio.create_task_group() as group:
            for _ in range(12):
                group.start_soon(db.write, write)
        assert await db.read(lambda conn: conn.exec_driver_sql("SELECT count(*) FROM t").scalar()) == 12
        assert max(most_inside) == 1
    finally:
        await db.dispose()


async def test_a_dropped_postgres_connection_idle_for_a_while_is_replaced(database_url, monkeypatch):
    if not database_url.startswith("postgresql"):
        pytest.skip("the pool of PostgreSQL connections; SQLite has none")
    monkeypatch.setattr(database, "POSTGRES_TRUSTED_IDLE_S", 0.0)  # every connection counts as idle
    db, other = Database(database_url), Database(database_url)

    def backend(conn) -> int:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())

    try:
        first = await db.read(backend)
        await other.read(lambda conn: conn.exec_driver_sql(f"SELECT pg_terminate_backend({first})"))
        assert await db.read(backend) != first  # the ping found it dropped and the pool opened another
    finally:
        await db.dispose()
        await other.dispose()
