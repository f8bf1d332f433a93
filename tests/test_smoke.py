import pytest

from tests.helpers import call

pytestmark = pytest.mark.anyio


async def test_create_then_get_returns_the_same_contact(client):
    created = await call(client, "contacts_create", {"first_name": "Ada", "last_name": "Lovelace"})
    fetched = await call(client, "contacts_get", {"id": created["id"]})
    assert fetched == created
