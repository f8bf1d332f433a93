"""The background work of a CRM database: delivering webhooks, emptying the trash and carrying on with email
sends whose process stopped. `mcp-crm serve` runs it beside the server unless told not to; `mcp-crm worker` runs
it alone. Any number may run on one database."""

from __future__ import annotations

import logging

import anyio

from mcp_crm.mail.sending import resume_sends
from mcp_crm.operations import Crm
from mcp_crm.operations.trash import PURGE_BATCH
from mcp_crm.webhooks.dispatcher import PRUNE_BATCH, Dispatcher, prune_deliveries, utcnow

log = logging.getLogger("mcp_crm")


async def clean_up_hourly(crm: Crm) -> None:
    """At start and then every hour: erases trashed records past their workspace's retention, and webhook
    deliveries finished more than 30 days ago."""
    while True:
        try:
            while await crm.purge_expired() == PURGE_BATCH:
                pass
            while await crm.db.write(lambda conn: prune_deliveries(conn, utcnow())) == PRUNE_BATCH:
                pass
        except Exception:
            log.exception("cleaning up failed; trying again in an hour")
        await anyio.sleep(3600)


async def run_worker(crm: Crm) -> None:
    """Runs until cancelled. Writes made through `crm` wake the dispatcher at once; others are seen within a
    second."""
    dispatcher = Dispatcher(crm.db, allow_local=crm.allow_local_webhooks)
    crm.on_queued.append(dispatcher.nudge)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(clean_up_hourly, crm)
            group.start_soon(dispatcher.run)
            group.start_soon(resume_sends, crm)
    finally:
        crm.on_queued.remove(dispatcher.nudge)
