"""Activities (calls, meetings, emails, ...) and their types, which a workspace can extend."""

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Index, String, Text, UniqueConstraint, select
from sqlmodel import Field, SQLModel

from mcp_crm.entities.spec import Entity, Link, Record, custom_values, long_text, meta, owner, workspace_indexes
from mcp_crm.store.types import UTCDateTime


class ActivityType(Record, table=True):
    __tablename__ = "activity_types"
    __table_args__ = (
        *workspace_indexes("activity_types", "key", "name", "active"),
        UniqueConstraint("workspace_id", "key", name="uq_activity_types_key"),
    )

    key: str = Field(
        max_length=40,
        description="What activities name it by, e.g. call or demo; unique in the workspace.",
        schema_extra=meta(pattern=r"^[a-z][a-z0-9_]*$", unique=True),
    )
    name: str = Field(min_length=1, max_length=100, description="Shown to people, e.g. Product demo.")
    active: bool = Field(True, description="False: kept on old activities, refused for new ones.")


class Activity(Record, table=True):
    __tablename__ = "activities"
    __table_args__ = workspace_indexes(
        "activities",
        "type",
        "subject",
        "due_at",
        "done",
        "done_at",
        "owner_id",
        "deal_id",
        "lead_id",
        "contact_id",
        "organization_id",
    )

    type: str = Field(
        max_length=40,
        description="An activity type key: call, meeting, email, task, deadline, lunch, "
        "note, or one the workspace added (activity_types_list).",
    )
    subject: str = Field(min_length=1, max_length=200, description="What it is about.")
    due_at: datetime | None = Field(None, sa_type=UTCDateTime, description="When, ISO 8601 (UTC unless an offset).")
    duration_minutes: int | None = Field(None, ge=1, le=24 * 60, description="How long, in minutes.")
    done: bool = Field(False, description="Setting true stamps done_at; false clears it.")
    done_at: datetime | None = Field(None, sa_type=UTCDateTime, description="When it was done.")
    location: str | None = Field(None, max_length=300, description="Where: an address or a meeting link.")
    note: str | None = long_text("What happened or what to prepare.")
    owner_id: str | None = owner("Who does it.")
    deal_id: str | None = Field(None, foreign_key="deals.id", ondelete="SET NULL", max_length=36)
    lead_id: str | None = Field(None, foreign_key="leads.id", ondelete="SET NULL", max_length=36)
    contact_id: str | None = Field(None, foreign_key="contacts.id", ondelete="SET NULL", max_length=36)
    organization_id: str | None = Field(None, foreign_key="organizations.id", ondelete="SET NULL", max_length=36)
    custom: dict[str, Any] = custom_values()
    # emails sent with email_send: set by the send, never by a write tool
    email_status: Literal["sent", "failed", "unknown"] | None = Field(
        None,
        sa_type=String(10),
        description="Emails sent with email_send: sent, failed (see email_error) or unknown (the sending process "
        "stopped while handing it over: it may have arrived, and is not sent again).",
        schema_extra=meta(read_only=True),
    )
    email_to: str | None = Field(
        None, max_length=320, description="The address the email went to.", schema_extra=meta(read_only=True)
    )
    email_message_id: str | None = Field(
        None, max_length=400, description="The email's Message-ID header.", schema_extra=meta(read_only=True)
    )
    email_error: str | None = Field(
        None,
        max_length=2000,
        sa_type=Text,
        description="Why the email failed, as the mail server said.",
        schema_extra=meta(kind="long_text", read_only=True),
    )


class ActivityParticipant(SQLModel, table=True):
    """A contact taking part in an activity (a meeting's attendees)."""

    __tablename__ = "activity_participants"
    __table_args__ = (Index("ix_activity_participants_contact", "contact_id", "activity_id"),)

    activity_id: str = Field(foreign_key="activities.id", primary_key=True, ondelete="CASCADE", max_length=36)
    contact_id: str = Field(foreign_key="contacts.id", primary_key=True, ondelete="CASCADE", max_length=36)


def _stamp_done(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    if after["done"] and after.get("done_at") is None:
        return {"done_at": datetime.now(UTC)}
    return {} if after["done"] else {"done_at": None}


def _known_type(
    conn: Any, workspace_id: str, writes: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> list[tuple[int, str, str]]:
    """An activity's type is one of the workspace's active activity types."""
    types = ActivityType.__table__  # type: ignore[attr-defined]
    active = set(
        conn.execute(
            select(types.c.key).where(types.c.workspace_id == workspace_id, types.c.active.is_(True))
        ).scalars()
    )
    return [
        (
            index,
            "type",
            f"'{values['type']}' is not an activity type here; use one of {', '.join(sorted(active))} "
            "(or add one with activity_types_create).",
        )
        for index, (_before, values) in enumerate(writes)
        if "type" in values and values["type"] not in active
    ]


ACTIVITY_TYPES = Entity(
    name="activity_types",
    singular="activity type",
    table=ActivityType,
    description="The kinds of activity a workspace logs: call, meeting, email, ... and its own.",
    search_columns=("key", "name"),
    admin_writes=True,
    example={"key": "demo", "name": "Product demo"},
    example_filter={"field": "active", "op": "eq", "value": True},
)

ACTIVITIES = Entity(
    name="activities",
    singular="activity",
    table=Activity,
    description="Calls, meetings, emails and other things done or planned with contacts, organizations, leads and "
    "deals.",
    title_columns=("subject",),
    search_columns=("subject", "location", "note"),
    searchable=True,
    links=(
        Link(
            name="participants",
            input="participant_ids",
            target="contacts",
            table=ActivityParticipant,
            own_column="activity_id",
            target_column="contact_id",
            description="Ids of the contacts taking part (replaces the whole list when given).",
        ),
    ),
    derive=_stamp_done,
    prepare=_known_type,
    example={"type": "call", "subject": "Discovery call with Ada", "due_at": "2026-11-27T10:00:00Z"},
    example_filter={
        "and": [
            {"field": "done", "op": "eq", "value": False},
            {"field": "due_at", "op": "lt", "value": "2026-11-26T00:00:00Z"},
        ]
    },
)

DEFAULT_TYPES = (
    ("call", "Call"),
    ("meeting", "Meeting"),
    ("email", "Email"),
    ("task", "Task"),
    ("deadline", "Deadline"),
    ("lunch", "Lunch"),
    ("note", "Note"),
)
