import pytest

from tests.helpers import call

pytestmark = pytest.mark.anyio


async def test_create_then_get_returns_the_same_contact_and_names_its_owner(client):
    created = await call(client, "contacts_create", {"first_name": "Ada", "last_name": "Lovelace"})
    fetched = await call(client, "contacts_get", {"id": created["id"]})
    me = await call(client, "users_me")
    assert fetched.pop("related") == {"owner_id": {"id": me["id"], "name": me["name"]}}
    assert fetched == created
