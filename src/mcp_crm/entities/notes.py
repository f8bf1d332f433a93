"""Notes: markdown text pinned to a contact, organization, lead or deal."""

from typing import Any, Literal

from sqlalchemy import String, Text, select
from sqlmodel import Field

from mcp_crm.entities.spec import Entity, Record, meta, owner, workspace_indexes

NOTED = ("contacts", "organizations", "leads", "deals")


class Note(Record, table=True):
    __tablename__ = "notes"
    __table_args__ = workspace_indexes("notes", "record_id", "record_type", "pinned", "author_id")

    body: str = Field(
        min_length=1,
        max_length=20_000,
        sa_type=Text,
        description="The note, in markdown.",
        schema_extra=meta(kind="long_text"),
    )
    record_type: Literal["contacts", "organizations", "leads", "deals"] = Field(
        sa_type=String(20), description="What the note is about: the entity..."
    )
    record_id: str = Field(max_length=36, description="...and the id of that record.")
    pinned: bool = Field(False, description="Pinned notes come first in a record's notes.")
    author_id: str | None = owner("Who wrote it.")


def _about_a_record(
    conn: Any, workspace_id: str, writes: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> list[tuple[int, str, str]]:
    """The record a note is about exists in the workspace (checked whenever either half changes)."""
    from mcp_crm.entities import ENTITIES  # the registry imports this module

    problems = []
    for index, (before, values) in enumerate(writes):
        if before is not None and "record_type" not in values and "record_id" not in values:
            continue
        merged = (before or {}) | values
        if merged.get("record_type") is None or merged.get("record_id") is None:
            continue  # the required-field check reports it
        table = ENTITIES[merged["record_type"]].table.__table__  # type: ignore[attr-defined]
        query = select(table.c.id).where(table.c.id == merged["record_id"], table.c.workspace_id == workspace_id)
        if conn.execute(query).first() is None:
            singular = ENTITIES[merged["record_type"]].singular
            problems.append(
                (
                    index,
                    "record_id",
                    f"no {singular} with id '{merged['record_id']}' (find one with {merged['record_type']}_list).",
                )
            )
    return problems


NOTES = Entity(
    name="notes",
    singular="note",
    table=Note,
    description="Markdown notes about a contact, organization, lead or deal: call summaries, context, decisions.",
    title_columns=("body",),
    search_columns=("body",),
    searchable=True,
    prepare=_about_a_record,
    example={"body": "Called Ada: budget approved for Q1.", "record_type": "contacts", "record_id": "<contact id>"},
    example_filter={
        "and": [
            {"field": "record_type", "op": "eq", "value": "deals"},
            {"field": "record_id", "op": "eq", "value": "<deal id>"},
        ]
    },
)
