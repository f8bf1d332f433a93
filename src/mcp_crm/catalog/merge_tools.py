"""Duplicates: `<entity>_find_duplicates` and `<entity>_merge` for contacts and organizations (operations/merge.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from mcp_crm.catalog.models import DRY_RUN, IDEMPOTENCY_KEY, PREVIEW, ToolInput, outputs
from mcp_crm.catalog.tools import DELETE, READ, AppState, CrmTool, make_tool, once
from mcp_crm.entities import ENTITIES, Entity
from mcp_crm.operations import Actor
from mcp_crm.operations.merge import MAX_DUPLICATES, MERGEABLE, PROFILES, SHOWN_REASONS, SHOWN_RECORDS, SIMILAR

MAX_GROUPS = 100
ID_PATTERN = r"^[0-9a-f-]{36}$"
SHOWN = {
    "contacts": {"emails": (list[str], ...), "phones": (list[str], ...)},
    "organizations": {"domain": (str | None, None), "website": (str | None, None), "phone": (str | None, None)},
}
RELATED = {
    "contacts": "memberships with their role, title and is_primary, deals, leads, tasks, activities, the activities "
    "they take part in, ",
    "organizations": "memberships with their role, title and is_primary, deals, leads, tasks, activities, ",
}
MATCHES = {
    "email": "the same email address (any case)",
    "phone": "the same phone number (its last 9 digits, whatever the formatting)",
    "domain": "the same web domain (from domain, else website; www. left out)",
    "name": (
        "the same or a very similar name (case, accents, punctuation and word order left out"
        "{legal}; very similar: a typo apart, a letter left out, added, changed or two swapped, with a "
        "similarity of at least {similar})"
    ),
}


class Reason(BaseModel):
    match: str = Field(description="What the records share: email, phone, domain or name.")
    value: str = Field(description="The shared value as compared (normalised); similar names as 'a ~ b'.")
    ids: list[str] = Field(description="The records that share it.")
    similarity: float = Field(
        description="1.0 for the same value; below it, how similar the names are (2 x letters in common / letters)."
    )


class FieldChoice(BaseModel):
    field: str = Field(description="A field, or custom.<key>.")
    chosen: Any = Field(description="The value the primary has now.")
    from_id: str | None = Field(description="The record it came from; null for lists merged from all of them.")
    values: list[dict[str, Any]] = Field(description="Each record's non-empty value: [{id, value}].")
    conflict: bool = Field(description="True when the records held different values and one was chosen.")


class Moved(BaseModel):
    entity: str = Field(description="The related records' entity.")
    through: str = Field(
        description="The field that links them, as <entity>.<field>; trash: records in the trash that name a duplicate."
    )
    ids: list[str] = Field(description="The related records now linked to the primary instead.")


def _matches_text(entity: Entity) -> str:
    legal = ", and legal forms such as Inc, GmbH or Ltd" if entity.name == "organizations" else ""
    return "; ".join(
        f"{match}: {MATCHES[match].format(legal=legal, similar=SIMILAR)}" for match in PROFILES[entity.name].matches
    )


def _find_input(entity: Entity) -> type[ToolInput]:
    Match = Literal[PROFILES[entity.name].matches]  # type: ignore[valid-type]
    return create_model(
        f"{entity.name.capitalize()}FindDuplicatesInput",
        __base__=ToolInput,
        record_id=(
            str | None,
            Field(
                None,
                max_length=36,
                description=f"Only the duplicates of this {entity.singular}; omit to scan the whole workspace.",
            ),
        ),
        by=(
            list[Match] | None,  # type: ignore[valid-type]
            Field(None, min_length=1, description="Match only on these; omit for all."),
        ),
        limit=(int, Field(20, ge=1, le=MAX_GROUPS, description=f"Groups per page, 1-{MAX_GROUPS}.")),
        cursor=(str | None, Field(None, pattern=ID_PATTERN, description="next_cursor from the previous page.")),
    )


def _find_output(entity: Entity) -> type[BaseModel]:
    record = create_model(
        f"{entity.singular.capitalize()}Candidate",
        id=(str, ...),
        name=(str, ...),
        **SHOWN[entity.name],  # type: ignore[arg-type]
        updated_at=(datetime, ...),
    )
    group = create_model(
        f"{entity.singular.capitalize()}DuplicateGroup",
        records=(list[record], Field(description=f"The records, oldest first (at most {SHOWN_RECORDS}).")),  # type: ignore[valid-type]
        reasons=(list[Reason], Field(description=f"Why they match (at most {SHOWN_REASONS}).")),
        size=(int, Field(description="How many records the group holds.")),
    )
    return create_model(
        f"{entity.name.capitalize()}Duplicates",
        groups=(list[group], ...),  # type: ignore[valid-type]
        has_more=(bool, ...),
        next_cursor=(str | None, Field(None, description="Pass as cursor to get the next page.")),
        total=(int, Field(description="How many groups there are in all.")),
    )


def _merge_input(entity: Entity) -> type[ToolInput]:
    return create_model(
        f"{entity.name.capitalize()}MergeInput",
        __base__=ToolInput,
        primary_id=(str, Field(max_length=36, description=f"The {entity.singular} to keep.")),
        duplicate_ids=(
            list[str],
            Field(
                min_length=1,
                max_length=MAX_DUPLICATES,
                description=f"The {entity.name} to merge into it and delete (1-{MAX_DUPLICATES}).",
            ),
        ),
        prefer=(
            Literal["primary", "newest"],
            Field(
                "primary",
                description="When values differ: primary keeps the primary's and fills its empty fields from the "
                "duplicates; newest takes the value of the most recently updated record that has one.",
            ),
        ),
        idempotency_key=IDEMPOTENCY_KEY,
        dry_run=DRY_RUN,
    )


def _merge_output(entity: Entity) -> type[BaseModel]:
    return create_model(
        f"{entity.name.capitalize()}Merged",
        record=(outputs(entity)["update"], Field(description=f"The {entity.singular} kept, as it is now.")),
        merged_ids=(
            list[str],
            Field(description=f"The duplicates, now in the trash ({entity.name}_restore brings one back, bare)."),
        ),
        fields=(list[FieldChoice], Field(description="Each field the records disagreed on or the primary lacked.")),
        moved=(list[Moved], Field(description="The related records moved to the primary.")),
        preview=PREVIEW,
    )


def _tools(entity: Entity) -> list[CrmTool]:
    find_output = _find_output(entity)

    async def find(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
        found = await s.crm.find_duplicates(a, entity, args.record_id, args.by, args.limit, args.cursor)
        return find_output.model_validate(found).model_dump(mode="json")

    async def merge(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
        return await s.crm.merge(a, entity, args.primary_id, args.duplicate_ids, args.prefer, once(a, args))

    related = RELATED[entity.name]
    return [
        make_tool(
            name=f"{entity.name}_find_duplicates",
            title=f"Find duplicate {entity.name}",
            description=(
                f"Groups of {entity.name} that are likely the same {entity.singular}, each with its records and the "
                f"reasons they match: {_matches_text(entity)}. Without record_id the whole workspace is checked "
                "(paged by cursor, oldest group first); with record_id, only the records matching that one. "
                f'Example: {{"by": ["{PROFILES[entity.name].matches[0]}"], "limit": 20}}. Next: {entity.name}_get to '
                f"compare them, then {entity.name}_merge with the one to keep as primary_id."
            ),
            handler=find,
            arg_model=_find_input(entity),
            output_model=find_output,
            annotations=READ,
        ),
        make_tool(
            name=f"{entity.name}_merge",
            title=f"Merge duplicate {entity.name}",
            description=(
                f"Merge duplicate {entity.name} into one, atomically: everything related to the duplicates moves to "
                f"the primary ({related}notes, references in custom fields); emails, phones and tags are combined "
                "without repeats; for other fields prefer decides (primary: keep the primary's values and fill its "
                "empty fields; newest: the most recently updated value wins), and `fields` reports every conflict "
                f"and the choice made. The duplicates go to the trash. Refused, changing nothing, when an id is "
                f"missing, the primary is among the duplicates or there are more than {MAX_DUPLICATES}. Try dry_run "
                f'first. Example: {{"primary_id": "<id>", "duplicate_ids": ["<id>"], "dry_run": true}}.'
            ),
            handler=merge,
            arg_model=_merge_input(entity),
            output_model=_merge_output(entity),
            annotations=DELETE,
        ),
    ]


def merge_tools() -> list[CrmTool]:
    return [tool for name in MERGEABLE for tool in _tools(ENTITIES[name])]
