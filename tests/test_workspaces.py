"""Every read and write is scoped to the actor's workspace: another workspace's id behaves as missing."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for, update_model_for
from mcp_crm.errors import CrmError, NotFound
from mcp_crm.ids import new_id
from mcp_crm.operations import Actor, Crm, ListQuery
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database
from mcp_crm.store.tables import Workspace

pytestmark = pytest.mark.anyio
CONTACTS, TASKS = ENTITIES["contacts"], ENTITIES["tasks"]


async def test_records_of_another_workspace_are_invisible(database_url):
    db = Database(database_url)
    try:
        ours = await local_actor(db, via="cli")
        other_id = new_id()
        workspace = {"id": other_id, "slug": "other", "name": "Other", "created_at": datetime.now(UTC)}
        await db.write(lambda conn: conn.execute(insert(Workspace.__table__).values(workspace)))
        theirs = Actor(workspace_id=other_id, user_id=None, via="cli")
        crm = Crm(db)
        secret = await crm.create(theirs, CONTACTS, create_model_for(CONTACTS)(first_name="Se", last_name="Cret"))

        with pytest.raises(NotFound):
            await crm.get(ours, CONTACTS, secret["id"])
        with pytest.raises(NotFound):
            await crm.update(ours, CONTACTS, secret["id"], update_model_for(CONTACTS)(job_title="x"))
        with pytest.raises(NotFound):
            await crm.delete(ours, CONTACTS, secret["id"])
        with pytest.raises(CrmError, match="no contact with id"):
            await crm.create(ours, TASKS, create_model_for(TASKS)(name="t", contact_id=secret["id"]))
        page = await crm.list(ours, CONTACTS, ListQuery(include_total=True))
        assert page.items == [] and page.total == 0
        assert (await crm.get(theirs, CONTACTS, secret["id"]))["job_title"] is None

        # their trash and their audit log are theirs alone
        await crm.delete(theirs, CONTACTS, secret["id"])
        with pytest.raises(NotFound):
            await crm.restore(ours, CONTACTS, [secret["id"]])
        with pytest.raises(NotFound):
            await crm.purge(ours, [secret["id"]])
        assert (await crm.trash(ours, None, 10, None))[0] == []
        assert all(c["workspace_id"] == ours.workspace_id for c in (await crm.audit(ours, None, 200, None))[0])
        assert [c["action"] for c in (await crm.audit(theirs, None, 10, None))[0]] == ["deleted", "created"]
    finally:
        await db.dispose()
