from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import String
from sqlmodel import Field

from mcp_crm.entities.spec import Entity, Record, custom_values, long_text, owner, workspace_indexes
from mcp_crm.store.types import UTCDateTime


class Task(Record, table=True):
    __tablename__ = "tasks"
    __table_args__ = workspace_indexes(
        "tasks",
        "name",
        "due_at",
        "done",
        "priority",
        "completed_at",
        "assignee_id",
        "contact_id",
        "organization_id",
        "deal_id",
    )

    name: str = Field(min_length=1, max_length=200, description="What needs doing.")
    description: str | None = long_text()
    due_at: datetime | None = Field(
        None, sa_type=UTCDateTime, description="Due date and time, ISO 8601 (UTC unless an offset is given)."
    )
    done: bool = Field(False, description="Setting true stamps completed_at; false clears it.")
    completed_at: datetime | None = Field(None, sa_type=UTCDateTime, description="When it was done.")
    priority: Literal["low", "normal", "high", "urgent"] = Field("normal", sa_type=String(10))
    assignee_id: str | None = owner("The user who does it.")
    contact_id: str | None = Field(
        None, foreign_key="contacts.id", ondelete="SET NULL", max_length=36, description="The contact it concerns."
    )
    organization_id: str | None = Field(
        None,
        foreign_key="organizations.id",
        ondelete="SET NULL",
        max_length=36,
        description="The organization it concerns.",
    )
    deal_id: str | None = Field(
        None, foreign_key="deals.id", ondelete="SET NULL", max_length=36, description="The deal it moves forward."
    )
    custom: dict[str, Any] = custom_values()


def _stamp_completion(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    if after["done"] and after.get("completed_at") is None:
        return {"completed_at": datetime.now(UTC)}
    if not after["done"]:
        return {"completed_at": None}
    return {}


TASKS = Entity(
    name="tasks",
    singular="task",
    table=Task,
    description="To-dos with a due time and an assignee, optionally linked to a contact, organization or deal.",
    search_columns=("name",),
    derive=_stamp_completion,
    example={"name": "Send the proposal to Ada", "due_at": "2026-11-27T09:00:00Z", "priority": "high"},
    example_filter={
        "and": [
            {"field": "done", "op": "eq", "value": False},
            {"field": "due_at", "op": "lt", "value": "2026-11-26T00:00:00Z"},
        ]
    },
)
