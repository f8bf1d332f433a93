"""The audit log: every committed change with who, how and each field before and after."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import call, fail

pytestmark = pytest.mark.anyio


def by_record(record_id: str) -> dict:
    return {"filter": {"field": "record_id", "op": "eq", "value": record_id}}


async def test_every_change_to_a_record_is_logged_newest_first(client):
    me = await call(client, "users_me")
    ada = await call(client, "contacts_create", {"first_name": "Ada", "last_name": "L"})
    await call(client, "contacts_update", {"id": ada["id"], "job_title": "CTO", "tags": ["vip"]})
    await fail(client, "contacts_update", {"id": ada["id"], "emails": [{"value": "not an email"}]})
    await call(client, "contacts_delete", {"id": ada["id"]})
    await call(client, "contacts_restore", {"ids": [ada["id"]]})

    log = (await call(client, "audit_list", by_record(ada["id"])))["items"]
    assert [e["action"] for e in log] == ["restored", "deleted", "updated", "created"]
    assert [e["tool"] for e in log] == ["contacts_restore", "contacts_delete", "contacts_update", "contacts_create"]
    assert {(e["user_id"], e["via"], e["entity"], e["credential_id"]) for e in log} == {
        (me["id"], "stdio", "contacts", None)
    }
    update = log[2]
    assert update["before"] == {"job_title": None, "tags": []}
    assert update["after"] == {"job_title": "CTO", "tags": ["vip"]}
    assert log[3]["before"] is None and log[3]["after"]["first_name"] == "Ada"
    assert log[1]["before"]["job_title"] == "CTO" and log[1]["after"] is None


async def test_the_audit_log_filters_and_pages(client):
    made = await call(
        client, "contacts_create_many", {"items": [{"first_name": f"P{i}", "last_name": "X"} for i in range(7)]}
    )
    await call(client, "organizations_create", {"name": "Acme"})
    await call(client, "contacts_update", {"id": made["items"][0]["id"], "job_title": "CEO"})

    only = {
        "and": [
            {"field": "entity", "op": "eq", "value": "contacts"},
            {"field": "action", "op": "eq", "value": "created"},
        ]
    }
    seen, cursor = [], None
    while True:
        page = await call(client, "audit_list", {"filter": only, "limit": 3, "cursor": cursor})
        seen += [e["record_id"] for e in page["items"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == [item["id"] for item in reversed(made["items"])]

    updates = await call(client, "audit_list", {"filter": {"field": "action", "op": "in", "value": ["updated"]}})
    assert [e["record_id"] for e in updates["items"]] == [made["items"][0]["id"]]
    assert "Did you mean 'entity'" in await fail(
        client, "audit_list", {"filter": {"field": "entty", "op": "eq", "value": "x"}}
    )
    assert "Unknown filter field 'before'" in await fail(
        client, "audit_list", {"filter": {"field": "before", "op": "eq", "value": "x"}}
    )


async def test_audit_export_writes_every_change_as_json_lines(client, database_url, tmp_path: Path):
    await call(client, "contacts_create_many", {"items": [{"first_name": f"P{i}", "last_name": "X"} for i in range(3)]})
    await call(client, "organizations_create", {"name": "Acme"})
    target = tmp_path / "audit.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "mcp_crm", "audit", "export", "--database-url", database_url, "-o", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(e["entity"], e["action"]) for e in lines][-4:] == [("contacts", "created")] * 3 + [
        ("organizations", "created")
    ]
    assert all(e["workspace_id"] and e["occurred_at"] for e in lines)
    assert "Wrote" in done.stderr
