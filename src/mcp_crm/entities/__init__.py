"""The entity registry: every entity the CRM serves, in catalog order."""

from mcp_crm.entities.activities import ACTIVITIES, ACTIVITY_TYPES
from mcp_crm.entities.contacts import CONTACTS
from mcp_crm.entities.deals import DEALS
from mcp_crm.entities.fields import FIELDS
from mcp_crm.entities.lead_stages import LEAD_STAGES
from mcp_crm.entities.leads import LEADS
from mcp_crm.entities.lists import LISTS
from mcp_crm.entities.notes import NOTES
from mcp_crm.entities.organizations import ORGANIZATIONS
from mcp_crm.entities.pipelines import PIPELINES, STAGES
from mcp_crm.entities.services import SERVICES
from mcp_crm.entities.spec import Entity, FieldSpec, Kind, Link
from mcp_crm.entities.tasks import TASKS
from mcp_crm.entities.users import USERS

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        CONTACTS,
        ORGANIZATIONS,
        LEADS,
        LEAD_STAGES,
        DEALS,
        PIPELINES,
        STAGES,
        SERVICES,
        TASKS,
        ACTIVITIES,
        ACTIVITY_TYPES,
        NOTES,
        LISTS,
        USERS,
        FIELDS,
    )
}

__all__ = ["ENTITIES", "Entity", "FieldSpec", "Kind", "Link"]
