"""Every test that takes `database_url` runs twice: on SQLite and on PostgreSQL.

PostgreSQL: one database per test run (created here, dropped at the end), emptied between tests.
It is skipped with a reason when no server answers on 127.0.0.1:5432, unless MCP_CRM_REQUIRE_POSTGRES=1
(set by .ci/run), where an unreachable server fails the run instead."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from mcp import Client
from sqlalchemy import Connection, text

from mcp_crm.catalog.server import build_server
from mcp_crm.store import Database, migrate
from tests.helpers import call, free_port_unused

PG_DSN = os.environ.get("MCP_CRM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("MCP_CRM_REQUIRE_POSTGRES") == "1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _migrated(url: str) -> None:
    db = Database(url)
    try:
        await migrate(db)
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "crm.db"
    asyncio.run(_migrated(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"mcp_crm_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        reason = f"PostgreSQL is not reachable at {PG_DSN} ({exc.__class__.__name__}: {exc})"
        if REQUIRE_PG:
            pytest.fail(f"{reason}, and MCP_CRM_REQUIRE_POSTGRES=1 requires it.")
        pytest.skip(reason)
    base = PG_DSN.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    asyncio.run(_migrated(url))
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _empty_tables(conn: Connection) -> None:
    query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
    tables = conn.execute(text(query)).scalars().all()
    conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))


async def _truncate(url: str) -> None:
    db = Database(url)
    try:
        await db.write(_empty_tables)
    finally:
        await db.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "crm.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database that does not exist yet (SQLite) or has no tables (PostgreSQL)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'new.db'}"
        return
    request.getfixturevalue("postgres_url")  # skips, or fails under MCP_CRM_REQUIRE_POSTGRES, when unreachable
    name = f"mcp_crm_test_empty_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    yield f"{PG_DSN.rsplit('/', 1)[0]}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    """An in-memory client of a server on a fresh database (2026 protocol)."""
    async with Client(build_server(database_url)) as connected:
        yield connected


@pytest.fixture
async def world(client: Client) -> dict[str, Any]:
    """An organization, a contact in it, a service, a deal linking all three and a task about them."""
    acme = await call(client, "organizations_create", {"name": "Acme"})
    ada = await call(
        client, "contacts_create", {"first_name": "Ada", "last_name": "L", "organization_ids": [acme["id"]]}
    )
    hours = await call(
        client, "services_create", {"name": "Consulting", "amount": "150", "currency": "EUR", "unit": "hour"}
    )
    deal = await call(
        client,
        "deals_create",
        {
            "name": "Acme rollout",
            "currency": "EUR",
            "organization_ids": [acme["id"]],
            "contact_ids": [ada["id"]],
            "services": [{"service_id": hours["id"], "quantity": "12.5"}],
        },
    )
    task = await call(
        client,
        "tasks_create",
        {"name": "Call Ada", "contact_id": ada["id"], "organization_id": acme["id"], "deal_id": deal["id"]},
    )
    return {"acme": acme, "ada": ada, "hours": hours, "deal": deal, "task": task}


# Hypothesis profiles for the generated-input tests (tests/test_fuzz.py, `pytest -m fuzz`). "ci" is the default:
# bounded and derandomized, so a run is reproducible; `--hypothesis-profile=long` explores far more.
# max_examples is the budget of the whole-catalog fuzz, shared by all tools (at least 3 each); the state machine
# runs a 25th of it (at least 20 examples) of stateful_step_count steps.
from hypothesis import HealthCheck, settings  # noqa: E402

_FUZZ_HEALTH = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
    HealthCheck.function_scoped_fixture,
]
settings.register_profile(
    "ci",
    max_examples=300,
    stateful_step_count=20,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=_FUZZ_HEALTH,
)
settings.register_profile(
    "long",
    max_examples=5000,
    stateful_step_count=50,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=_FUZZ_HEALTH,
)
settings.load_profile("ci")


@pytest.fixture
def smtp() -> Iterator[tuple[Any, int]]:
    """An SMTP server on 127.0.0.1 (aiosmtpd, in the test process) keeping what it gets: (mailbox, port). It
    accepts the test login (tests/test_email.py USER, PASSWORD) without requiring TLS for it."""
    from aiosmtpd.controller import Controller

    from tests.test_email import Mailbox, _login

    box, port = Mailbox(), free_port_unused()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=_login, auth_require_tls=False)
    controller.start()
    try:
        yield box, port
    finally:
        box.release.set()
        controller.stop()
