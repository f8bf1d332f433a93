"""End to end over the real transports: `mcp-crm serve` runs as a subprocess and the MCP SDK's own
clients talk to it over stdio and streamable HTTP, in both protocol eras (2025-era initialize+session as
Claude Desktop, Cursor and ChatGPT speak it, and the 2026 protocol the SDK defaults to). No mocks.

Each server start costs about two seconds (mostly imports), so each test here takes a few seconds."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from mcp_crm.catalog.workspace_tools import all_tools
from mcp_crm.entities import ENTITIES
from mcp_crm.operations import Actor, Crm, ListQuery
from mcp_crm.operations.access import find_workspace
from mcp_crm.store import Database
from tests.helpers import call, fail

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SERVE = [sys.executable, "-m", "mcp_crm", "serve"]
STARTUP_DEADLINE = 30.0  # seconds; a start normally takes about 2
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
POLL_INTERVAL = 0.05

# "auto" is the SDK's default: it discovers the 2026 protocol (and would fall back to initialize).
ERAS = pytest.mark.parametrize("mode", ["legacy", "auto"], ids=["legacy", "2026"])


# --- shared checks ------------------------------------------------------------------------------


def assert_era(client: Client, mode: str) -> None:
    """The connection really speaks the era the test asked for, and the server identified itself."""
    expected = HANDSHAKE_PROTOCOL_VERSIONS if mode == "legacy" else MODERN_PROTOCOL_VERSIONS
    assert client.protocol_version in expected, f"{mode} connection negotiated {client.protocol_version}"
    assert client.server_info is not None
    assert client.server_info.name == "mcp-crm"
    assert client.instructions and "CRM" in client.instructions


async def crud_flow(client: Client) -> None:
    """What an assistant does first: discover the tools, then create, find, change and delete a contact.
    Tool errors must come back as isError results the model can act on, not as protocol errors."""
    listed = await client.list_tools()
    names = {tool.name for tool in listed.tools}
    assert len(names) >= 55, sorted(names)
    assert {"contacts_create", "contacts_list", "contacts_update", "contacts_delete", "users_me"} <= names

    me = await call(client, "users_me")
    email = f"ada.{uuid.uuid4().hex[:8]}@example.com"
    created = await call(
        client,
        "contacts_create",
        {"first_name": "Ada", "last_name": "Lovelace", "emails": [{"value": email, "label": "work", "primary": True}]},
    )
    assert created["owner_id"] == me["id"]
    assert created["email"] == email

    by_email = {"field": "email", "op": "eq", "value": email}
    found = await call(client, "contacts_list", {"filter": by_email})
    assert [c["id"] for c in found["items"]] == [created["id"]]

    updated = await call(client, "contacts_update", {"id": created["id"], "job_title": "Analyst", "tags": ["vip"]})
    assert (updated["job_title"], updated["tags"], updated["last_name"]) == ("Analyst", ["vip"], "Lovelace")
    vip = {"and": [by_email, {"field": "tags", "op": "contains", "value": "vip"}]}
    found = await call(client, "contacts_list", {"filter": vip, "fields": ["job_title"], "include_total": True})
    assert found["items"] == [{"id": created["id"], "job_title": "Analyst"}]
    assert found["total"] == 1

    deleted = await call(client, "contacts_delete", {"id": created["id"]})
    assert deleted["deleted"]["id"] == created["id"]
    assert (await call(client, "contacts_list", {"filter": by_email}))["items"] == []

    # Tool errors: isError with a text that says what to do instead (fail() also rules out tracebacks).
    text = await fail(client, "contacts_list", {"filter": {"field": "nickname", "op": "eq", "value": "Ada"}})
    assert "Unknown filter field 'nickname'" in text
    assert "first_name" in text  # lists the valid fields
    text = await fail(client, "contacts_create", {"first_name": "Grace"})
    assert "last_name: required" in text
    text = await fail(client, "contacts_get", {"id": created["id"]})
    assert "No contact with id" in text


def stdout_noise(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Lines on the server's stdout that were not JSON-RPC. The SDK's stdio client logs each one (and
    carries on), including lines a buffered print() only flushes when the server exits, so an empty
    list after the session has closed proves stdout carried nothing but the protocol."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "mcp.client.stdio" and "Failed to parse JSONRPC message" in r.getMessage()
    ]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without MCP_CRM_* settings (so only what a test passes counts)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_CRM_")}
    return env | extra


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


# --- stdio --------------------------------------------------------------------------------------


def stdio_params(database_url: str) -> StdioServerParameters:
    # The SDK starts the child with a minimal environment (PATH, HOME, ...) plus `env`. The database URL
    # goes on the command line; INFO logging makes the server write to stderr during the test, which
    # must not leak onto stdout.
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_crm", "serve", "--database-url", database_url],
        env={"MCP_CRM_LOG_LEVEL": "INFO"},
    )


@pytest.mark.slow
@ERAS
async def test_stdio_server_in_both_protocol_eras(
    database_url: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with Client(stdio_params(database_url), mode=mode) as client:
        assert_era(client, mode)
        await crud_flow(client)
    assert stdout_noise(caplog) == []


@pytest.mark.slow
async def test_stdout_noise_would_be_detected(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Control for the check above: a server whose tool print()s (block-buffered, so the line only
    reaches the pipe when the server exits) is caught."""
    noisy = tmp_path / "noisy_server.py"
    noisy.write_text(
        "from mcp.server import MCPServer\n"
        "server = MCPServer('noisy')\n"
        "@server.tool()\n"
        "def hello() -> str:\n"
        "    print('debug: hello called')\n"
        "    return 'hi'\n"
        "server.run()\n"
    )
    async with Client(StdioServerParameters(command=sys.executable, args=[str(noisy)]), mode="legacy") as client:
        reply = (await client.call_tool("hello", {})).content[0]
        assert isinstance(reply, TextContent) and reply.text == "hi"
    noise = stdout_noise(caplog)
    assert len(noise) == 1, noise


# --- streamable HTTP ----------------------------------------------------------------------------


@dataclass
class HttpServer:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    killed: bool = False

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def wait_healthy(server: HttpServer) -> None:
    """Poll GET /health until it answers 200 {"status": "ok"}; fail fast if the process dies."""
    deadline = anyio.current_time() + STARTUP_DEADLINE
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=2.0) as http:
        while True:
            if server.process.poll() is not None:
                pytest.fail(f"server exited with {server.process.returncode} while starting:\n{server.output()}")
            try:
                response = await http.get("/health")
            except httpx2.TransportError:
                pass  # not listening yet
            else:
                if response.status_code == 200:
                    body = response.json()
                    assert body["status"] == "ok", body
                    assert "version" in body
                    return
                assert response.status_code == 503, response.text  # "starting" is the only other answer
            if anyio.current_time() > deadline:
                pytest.fail(f"/health did not answer 200 within {STARTUP_DEADLINE}s:\n{server.output()}")
            await anyio.sleep(POLL_INTERVAL)


def stop(server: HttpServer) -> None:
    """SIGTERM, then SIGKILL if the server has not exited after STOP_TIMEOUT."""
    process = server.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.killed = True
            process.kill()
            process.wait()


@asynccontextmanager
async def http_server(
    database_url: str, log_dir: Path, host: str = "127.0.0.1", options: tuple[str, ...] = ("--no-auth",)
) -> AsyncIterator[HttpServer]:
    """A real `mcp-crm serve --transport http` on a free loopback port, healthy when yielded, always stopped.
    Without API keys unless `options` say otherwise."""
    port = free_port(host)
    log = log_dir / f"http-server-{port}.log"
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            [
                *SERVE,
                *("--transport", "http", "--host", host, "--port", str(port), "--database-url", database_url),
                *options,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(),
        )
    server = HttpServer(process=process, base_url=f"http://{host}:{port}", log=log)
    try:
        await wait_healthy(server)
        yield server
    finally:
        stop(server)


@pytest.mark.slow
@ERAS
async def test_http_server_in_both_protocol_eras(database_url: str, mode: str, tmp_path: Path) -> None:
    async with (
        http_server(database_url, tmp_path) as server,
        Client(streamable_http_client(server.mcp_url), mode=mode) as client,
    ):
        assert_era(client, mode)
        await crud_flow(client)
    assert not server.killed, f"the server ignored SIGTERM:\n{server.output()}"
    assert "Traceback" not in server.output()


@pytest.mark.slow
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        pytest.param(
            "127.0.0.2",
            marks=pytest.mark.skipif(sys.platform != "linux", reason="only Linux routes all of 127/8 to loopback"),
        ),
    ],
)
async def test_http_rejects_foreign_host_and_origin(host: str, tmp_path: Path, sqlite_template: Path) -> None:
    """DNS-rebinding protection: a page on evil.example that resolves to 127.0.0.1 must not reach the tools."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "probe", "version": "0"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    database = tmp_path / "crm.db"
    database.write_bytes(sqlite_template.read_bytes())
    async with (
        http_server(f"sqlite:///{database}", tmp_path, host) as server,
        httpx2.AsyncClient(base_url=server.base_url, timeout=5.0) as http,
    ):
        rebound = await http.post("/mcp", json=initialize, headers=headers | {"Host": "evil.example"})
        assert rebound.status_code in (421, 403), rebound.text
        cross_site = await http.post("/mcp", json=initialize, headers=headers | {"Origin": "http://evil.example"})
        assert cross_site.status_code in (421, 403), cross_site.text
        # Control: the same request with the real Host and a loopback Origin is served.
        own = await http.post("/mcp", json=initialize, headers=headers | {"Origin": server.base_url})
        assert own.status_code == 200, own.text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--no-auth"], "Refusing to serve on 0.0.0.0 without authentication: --no-auth is only for a loopback"),
        ([], "Serving on 0.0.0.0: name the host names clients use with --allowed-host"),
    ],
)
async def test_http_off_loopback_needs_keys_and_allowed_hosts(options: list[str], expected: str, tmp_path: Path):
    database = tmp_path / "crm.db"
    url = f"sqlite:///{database}"
    with anyio.fail_after(60):
        result = await anyio.run_process(
            [
                *SERVE,
                "--transport",
                "http",
                "--host",
                "0.0.0.0",
                "--port",
                str(free_port()),
                "--database-url",
                url,
                *options,
            ],
            check=False,
            env=child_env(COLUMNS="200"),
        )
    stderr = " ".join(result.stderr.decode().split())  # undo the console's line wrapping
    assert result.returncode == 2, stderr
    assert expected in stderr
    assert result.stdout == b""
    assert not database.exists()  # refused before opening anything


# --- examples/ ----------------------------------------------------------------------------------


async def run_example(script: str, env: dict[str, str]) -> str:
    with anyio.fail_after(60):
        result = await anyio.run_process([sys.executable, str(EXAMPLES / script)], check=False, env=env)
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, f"{script} exited with {result.returncode}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    return stdout


def tool_count(stdout: str) -> int:
    found = re.search(r"\): (\d+) tools", stdout)
    assert found, stdout
    return int(found[1])


async def assert_example_data(database_url: str, workspace: str = "local") -> None:
    """The example wrote to the database and workspace it was given: Ada Lovelace, a member of Acme Corp."""
    db = Database(database_url)
    try:
        found = await db.read(lambda conn: find_workspace(conn, workspace))
        actor = Actor(workspace_id=found["id"], user_id=None, via="cli")
        page = await Crm(db).list(actor, ENTITIES["contacts"], ListQuery(q="Lovelace"))
    finally:
        await db.dispose()
    assert [c["organizations"][0]["name"] for c in page.items] == ["Acme Corp"]


@pytest.mark.slow
async def test_client_stdio_example(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'example.db'}"  # a new file: the server creates it
    stdout = await run_example("client_stdio.py", child_env(MCP_CRM_DATABASE_URL=database_url))
    assert tool_count(stdout) >= 55
    assert "Created organization Acme Corp" in stdout
    assert "Created contact Ada Lovelace" in stdout
    assert "Contacts of Acme Corp: 1" in stdout
    assert "Ada Lovelace <ada@acme.example>" in stdout
    await assert_example_data(database_url)


@pytest.mark.slow
async def test_client_http_example(tmp_path: Path, sqlite_template: Path) -> None:
    database = tmp_path / "crm.db"
    database.write_bytes(sqlite_template.read_bytes())
    database_url = f"sqlite:///{database}"
    cli = [sys.executable, "-m", "mcp_crm"]
    db = ("--database-url", database_url)
    owner = ("--owner-email", "you@example.com", "--owner-name", "You")
    await anyio.run_process([*cli, "workspaces", "create", "demo", *owner, *db], env=child_env())
    made = await anyio.run_process(
        [*cli, "keys", "create", "-w", "demo", "-u", "you@example.com", *db], env=child_env()
    )
    key = made.stdout.decode().strip()
    assert key.startswith("ak_")
    async with http_server(database_url, tmp_path, options=()) as server:
        port = server.base_url.rsplit(":", 1)[1]
        env = child_env(MCP_CRM_HOST="127.0.0.1", MCP_CRM_PORT=port, MCP_CRM_API_KEY=key)
        stdout = await run_example("client_http.py", env)
        assert key not in server.output()
    assert tool_count(stdout) == sum(t.scopes <= {"read", "write"} for t in all_tools())  # no delete, no admin
    assert "Contacts of Acme Corp: 1" in stdout
    assert "Ada Lovelace <ada@acme.example>" in stdout
    await assert_example_data(database_url, "demo")


@pytest.mark.parametrize("name", ["claude_desktop_config.json", "cursor_mcp.json"])
def test_example_configs_run_mcp_crm_serve(name: str) -> None:
    config: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    entry = config["mcpServers"]["crm"]
    assert entry["command"] == "mcp-crm"
    assert entry["args"][0] == "serve"
    assert set(entry.get("env", {})) <= {"MCP_CRM_DATABASE_URL", "MCP_CRM_LOG_LEVEL"}
