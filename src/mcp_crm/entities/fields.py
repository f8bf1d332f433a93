"""Custom field definitions: a workspace's own fields on contacts, organizations, deals and the rest.

Values live in each record's `custom` JSON column, keyed by the field's stable machine key; custom.py
checks them by type and turns `custom.<key>` into filter and sort expressions."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, String, UniqueConstraint, select
from sqlmodel import Field

from mcp_crm.entities.spec import Entity, Record, workspace_indexes

CUSTOMIZABLE = ("contacts", "organizations", "deals", "leads", "services", "tasks", "activities")
FIELD_TYPES = (
    "text", "long_text", "number", "monetary", "date", "date_range", "time", "time_range", "boolean",
    "single_option", "multiple_options", "phone", "email", "url", "address", "user", "contact", "organization",
)  # fmt: skip
OPTION_TYPES = ("single_option", "multiple_options")
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
MAX_FIELDS = 100  # per entity and workspace


class Option(BaseModel):
    """One choice of an option field; its key is what records store, so a new label keeps the values."""

    model_config = ConfigDict(extra="forbid")

    key: str | None = PydanticField(
        None, pattern=KEY_PATTERN, description="Stable machine key; made from the label when left out."
    )
    label: str = PydanticField(min_length=1, max_length=100)


class CustomField(Record, table=True):
    __tablename__ = "custom_fields"
    __table_args__ = (
        *workspace_indexes("custom_fields", "entity", "label"),
        UniqueConstraint("workspace_id", "entity", "key", name="uq_custom_fields_key"),
    )

    entity: Literal[CUSTOMIZABLE] = Field(  # type: ignore[valid-type]
        sa_type=String(20), description="Which records get the field; cannot change later."
    )
    label: str = Field(min_length=1, max_length=100, description="The name people see, e.g. 'Contract tier'.")
    key: str | None = Field(
        None,
        max_length=40,
        description="Stable machine key used in `custom` and in filters (custom.<key>); made from the label when "
        "left out, e.g. contract_tier. Cannot change later.",
        schema_extra={"pattern": KEY_PATTERN},
    )
    type: Literal[FIELD_TYPES] = Field(  # type: ignore[valid-type]
        sa_type=String(20), description="What values it holds; cannot change later."
    )
    options: list[Option] = Field(
        default_factory=list,
        sa_type=JSON,
        description="Choices of a single_option or multiple_options field, in display order. Sending the list "
        "replaces it: keep an option's key to rename it, leave an option out to delete it (its values are cleared).",
    )
    description: str | None = Field(None, max_length=500, description="What the field is for.")
    indexed: bool = Field(False, description="Index the values for fast filters and sorts on large tables.")


def slug(label: str) -> str:
    """'Contract tier (2026)' -> 'contract_tier_2026'."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    key = words if words[:1].isalpha() else f"f_{words}"
    return key[:40].rstrip("_") or "field"


def _define(
    conn: Any, workspace_id: str, writes: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> list[tuple[int, str, str]]:
    """Keys are made and kept unique per entity; entity, key and type never change; only option fields
    have options, each with a unique key. Values of options taken away are cleared from the records."""
    from mcp_crm.entities.custom import clear_values, index_values  # custom.py reads these definitions

    table = CustomField.__table__  # type: ignore[attr-defined]
    problems: list[tuple[int, str, str]] = []
    for index, (before, values) in enumerate(writes):
        for fixed in ("entity", "key", "type"):
            if before is not None and fixed in values and values[fixed] != before[fixed]:
                problems.append((index, fixed, f"cannot change; create a new field instead (now {before[fixed]!r})."))
        merged = (before or {}) | values
        if before is None:
            values["key"] = values.get("key") or slug(values["label"])  # unique_together checks it
            count = select(table.c.id).where(table.c.workspace_id == workspace_id, table.c.entity == merged["entity"])
            if len(conn.execute(count.limit(MAX_FIELDS)).all()) >= MAX_FIELDS:
                problems.append((index, "entity", f"{merged['entity']} have {MAX_FIELDS} custom fields, the most."))
        if "options" not in values and before is not None:
            continue
        options = [dict(o) for o in merged.get("options") or []]
        if merged["type"] in OPTION_TYPES and not options:
            problems.append((index, "options", f"a {merged['type']} field needs at least one option."))
        if merged["type"] not in OPTION_TYPES and options:
            problems.append((index, "options", f"only option fields have options, not {merged['type']} fields."))
        for option in options:
            option["key"] = option.get("key") or slug(option["label"])
        keys = [o["key"] for o in options]
        if len(set(keys)) != len(keys):
            problems.append((index, "options", f"option keys repeat: {', '.join(keys)}; give each its own key."))
        values["options"] = options
        if before is not None and not problems:
            gone = {o["key"] for o in before["options"]} - set(keys)
            if gone:
                clear_values(conn, workspace_id, before, gone)
    if not problems:
        for before, values in writes:
            if before is None:
                clear_values(conn, workspace_id, values, None)  # left over from a field that was purged
            if before is None or values.get("indexed", before["indexed"]) != before["indexed"]:
                index_values(conn, (before or {}) | values)
    return problems


FIELDS = Entity(
    name="fields",
    singular="custom field",
    table=CustomField,
    description="Custom fields: a workspace's own fields on contacts, organizations, deals, leads, services, tasks "
    "and activities, set through each record's `custom` object.",
    title_columns=("label",),
    search_columns=("label", "key"),
    admin_writes=True,
    unique_together=(("entity", "key"),),
    prepare=_define,
    on_delete="Its values disappear from the records (kept while the field is in the trash, so a restore brings "
    "them back).",
    example={
        "entity": "organizations",
        "label": "Contract tier",
        "type": "single_option",
        "options": [{"key": "gold", "label": "Gold"}, {"key": "silver", "label": "Silver"}],
    },
    example_filter={"field": "entity", "op": "eq", "value": "deals"},
)
