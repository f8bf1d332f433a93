"""A write acknowledged just before the server is SIGKILLed is still delivered: its event was committed to the
outbox with the write, and the worker started afterwards sends it (SQLite and PostgreSQL, real processes)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import anyio
import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from tests.receiver import Receiver
from tests.test_crash import RpcClient

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
LOCAL_ONLY = ("--no-worker", "--allow-local-webhooks")


async def test_an_event_committed_right_before_a_sigkill_is_delivered(database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_CRM_")}
    log = (tmp_path / "processes.log").open("wb")
    with Receiver() as receiver, log:
        # the server runs no worker, so nothing can be sent before the kill: only the outbox can keep the event
        server = await anyio.open_process(
            [sys.executable, "-m", "mcp_crm", "serve", "--database-url", database_url, *LOCAL_ONLY],
            stderr=log,
            env=env,
        )
        assert server.stdin is not None and server.stdout is not None
        client = RpcClient(server.stdin, server.stdout)
        async with anyio.create_task_group() as group:
            group.start_soon(client.read_loop)
            await client.initialize()
            hook = await client.call_tool("webhooks_create", {"url": receiver.url, "events": ["contact.created"]})
            ada = await client.call_tool("contacts_create", {"first_name": "Ada", "last_name": "Lovelace"})
            os.kill(server.pid, signal.SIGKILL)  # right after the acknowledged write
            assert await server.wait() == -signal.SIGKILL
            await client.aclose()
        assert receiver.received == []

        worker = await anyio.open_process(
            [sys.executable, "-m", "mcp_crm", "worker", "--database-url", database_url, "--allow-local-webhooks"],
            stderr=log,
            env=env,
        )
        try:
            (request,) = await receiver.until(1, timeout=60)
        finally:
            worker.terminate()
            await worker.wait()
    payload = Verifier(hook["secret"]).verify(request.body, request.headers)
    assert payload["event"] == "contact.created" and payload["data"]["record"]["id"] == ada["id"]
