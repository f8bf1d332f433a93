"""Records as MCP resources: crm://<entity>/<id>, with one template per entity."""

import json

import pytest
from mcp import Client

from mcp_crm.catalog.server import build_server

pytestmark = pytest.mark.anyio


async def test_each_record_reads_as_a_resource_at_the_url_search_gives(client, world):
    templates = (await client.list_resource_templates()).resource_templates
    assert {t.uri_template for t in templates} >= {"crm://contacts/{id}", "crm://deals/{id}", "crm://notes/{id}"}
    found = await client.call_tool("search", {"query": "Acme rollout"})
    url = next(r["url"] for r in found.structured_content["results"] if r["record_id"] == world["deal"]["id"])
    assert url == f"crm://deals/{world['deal']['id']}"
    content = (await client.read_resource(url)).contents[0]
    assert content.mime_type == "application/json"
    deal = json.loads(content.text)
    assert (deal["id"], deal["name"], deal["organizations"][0]["name"]) == (world["deal"]["id"], "Acme rollout", "Acme")


async def test_a_missing_record_is_a_clear_error(client, world):
    with pytest.raises(Exception, match="No contact with id 'nope'"):
        await client.read_resource("crm://contacts/nope")
    # an id of another entity is not found either
    with pytest.raises(Exception, match="No organization with id"):
        await client.read_resource(f"crm://organizations/{world['ada']['id']}")


async def test_legacy_hosts_read_resources_too(database_url):
    async with Client(build_server(database_url), mode="legacy") as client:
        created = await client.call_tool("contacts_create", {"first_name": "Ada", "last_name": "L"})
        rid = created.structured_content["id"]
        content = (await client.read_resource(f"crm://contacts/{rid}")).contents[0]
        assert json.loads(content.text)["first_name"] == "Ada"
