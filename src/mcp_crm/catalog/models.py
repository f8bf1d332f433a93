"""Tool input and output models for an entity, derived from its declaration."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from pydantic import BaseModel, ConfigDict, Field, create_model

from mcp_crm.entities import Entity
from mcp_crm.entities.models import Summary, create_model_for, record_model_for, update_model_for
from mcp_crm.operations.preview import CONFIRM_ABOVE
from mcp_crm.operations.reads import DEFAULT_LIMIT, MAX_LIMIT
from mcp_crm.query import FilterNode, SortKey
from mcp_crm.search import search_fields_of

MAX_BULK = 500
WRITE_VERBS = ("create", "create_many", "update", "update_many", "delete", "delete_many", "restore")


class ToolInput(ArgModelBase):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class NoArguments(ToolInput):
    pass


def _expected_revision(entity: Entity) -> Any:
    return (
        int | None,
        Field(
            None,
            ge=1,
            description=f"The revision you read; if the {entity.singular} changed since, nothing is written and "
            "the error says what changed.",
        ),
    )


IDEMPOTENCY_KEY: Any = (
    str | None,
    Field(
        None,
        min_length=1,
        max_length=200,
        description="Unique text per request: a retry with the same key and arguments within 24 h returns the "
        "first result instead of writing twice.",
    ),
)


DRY_RUN: Any = (
    bool,
    Field(
        False,
        description="true: check and return what would change (in `preview`), writing nothing.",
    ),
)

CONFIRM: Any = (
    str | None,
    Field(
        None,
        max_length=100,
        description=f"Needed above {CONFIRM_ABOVE} records: the preview.confirm token a dry run of this exact call "
        "returned (valid 10 minutes).",
    ),
)


PREVIEW: Any = (
    dict[str, Any] | None,
    Field(None, description="Dry runs only: {applied: false, counts, changes: [{action, entity, id, name, fields}]}."),
)


def _id(entity: Entity) -> Any:
    return (str, Field(max_length=36, description=f"The {entity.singular}'s id."))


def _q_description(entity: Entity) -> str:
    fields = ", ".join(search_fields_of(entity))
    if not entity.searchable:
        return f"Text to look for in {fields} (each word, anywhere in them)."
    return (
        f"Text to look for in {fields}: whole words and word starts, an email, phone digits in any format or a "
        "domain; a word with a typo is matched when nothing else is. Combines with filter; the order stays sort's "
        "(search ranks by relevance across entities)."
    )


@cache
def inputs(entity: Entity) -> dict[str, type[ToolInput]]:
    Plural, Singular = entity.name.capitalize(), entity.singular.capitalize()
    create, changes = create_model_for(entity), update_model_for(entity)
    update_item = create_model(
        f"{Singular}Update", __base__=changes, id=_id(entity), expected_revision=_expected_revision(entity)
    )
    return {
        "create": create_model(f"{Plural}CreateInput", __base__=(create, ToolInput), **_write_fields("create")),
        "create_many": create_model(
            f"{Plural}CreateManyInput",
            __base__=ToolInput,
            items=(
                list[create],
                Field(
                    min_length=1,
                    max_length=MAX_BULK,
                    description=f"1 to {MAX_BULK} {entity.name}, each as {entity.name}_create takes.",
                ),
            ),
            **_write_fields("create_many"),
        ),
        "get": create_model(f"{Plural}GetInput", __base__=ToolInput, id=_id(entity)),
        "list": create_model(
            f"{Plural}ListInput",
            __base__=ToolInput,
            filter=(FilterNode | None, Field(None, description="A filter tree; omit to list everything.")),
            sort=(
                list[SortKey] | None,
                Field(None, max_length=4, description="Sort keys in order; default created_at asc."),
            ),
            limit=(int, Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Page size, 1-{MAX_LIMIT}.")),
            cursor=(
                str | None,
                Field(
                    None,
                    max_length=2000,
                    description="next_cursor from the previous page, with the same filter and sort.",
                ),
            ),
            fields=(
                list[str] | None,
                Field(None, max_length=50, description="Return only these fields (id is always returned)."),
            ),
            q=(
                str | None,
                Field(
                    None,
                    min_length=1,
                    max_length=200,
                    description=_q_description(entity),
                ),
            ),
            search_fields=(
                list[str] | None,
                Field(
                    None,
                    min_length=1,
                    max_length=20,
                    description=f"Look for q only in these fields: {', '.join(search_fields_of(entity))}.",
                ),
            ),
            match=(
                Literal["all", "any"],
                Field("all", description="all: a record holds every word of q; any: at least one of them."),
            ),
            include_total=(bool, Field(False, description="Also count all matches (costs a count query).")),
        ),
        "update": create_model(f"{Plural}UpdateInput", __base__=(update_item, ToolInput), **_write_fields("update")),
        "update_many": create_model(
            f"{Plural}UpdateManyInput",
            __base__=ToolInput,
            items=(
                list[update_item],
                Field(
                    min_length=1,
                    max_length=MAX_BULK,
                    description="Each item: the id and only the fields to change.",
                ),
            ),
            **_write_fields("update_many"),
        ),
        "delete": create_model(
            f"{Plural}DeleteInput",
            __base__=ToolInput,
            id=_id(entity),
            expected_revision=_expected_revision(entity),
            **_write_fields("delete"),
        ),
        "delete_many": create_model(
            f"{Plural}DeleteManyInput",
            __base__=ToolInput,
            ids=(
                list[str],
                Field(min_length=1, max_length=MAX_BULK, description=f"Ids of the {entity.name} to delete."),
            ),
            **_write_fields("delete_many"),
        ),
        "restore": create_model(
            f"{Plural}RestoreInput",
            __base__=ToolInput,
            ids=(
                list[str],
                Field(
                    min_length=1,
                    max_length=MAX_BULK,
                    description=f"Ids of deleted {entity.name} (trash_list shows them).",
                ),
            ),
            **_write_fields("restore"),
        ),
        "config": create_model(f"{Plural}ConfigInput", __base__=ToolInput),
    }


def _write_fields(verb: str) -> dict[str, Any]:
    """Every write accepts an idempotency key and a dry run; bulk updates and deletes a confirm token."""
    return {
        "idempotency_key": IDEMPOTENCY_KEY,
        "dry_run": DRY_RUN,
        **({"confirm": CONFIRM} if verb in ("update_many", "delete_many") else {}),
    }


class FieldConfig(BaseModel):
    name: str
    type: str
    required: bool
    read_only: bool
    filterable: bool
    sortable: bool
    operators: list[str]
    description: str | None = None
    values: list[str] | None = None
    references: str | None = None
    unique: bool | None = None
    output_key: str | None = None
    default: Any = None


class EntityConfig(BaseModel):
    entity: str
    description: str
    fields: list[FieldConfig]
    operators: dict[str, str]
    default_sort: list[SortKey]
    list_limit: dict[str, int]
    link_filters: list[dict[str, Any]] = Field(
        description="Filterable attributes of links (a membership's role): true when some link of a record matches."
    )
    custom_fields: list[dict[str, Any]] = Field(
        description="The workspace's custom fields: key, label, type, how to write a value, filters and options."
    )
    search_fields: list[str]
    relations: list[dict[str, Any]]
    example_filter: dict[str, Any]


@cache
def outputs(entity: Entity) -> dict[str, type[BaseModel]]:
    Plural, Singular = entity.name.capitalize(), entity.singular.capitalize()
    record, partial = record_model_for(entity), record_model_for(entity, partial=True)
    if entity.counts:  # reported by list only: a record's other answers are the same as its change events
        partial = create_model(f"{partial.__name__}Counted", __base__=partial, **_counts(entity))
    many = create_model(
        f"{Plural}Result",
        items=(list[Summary], Field(description=f"Each {entity.singular} written, in the order sent: id and name.")),
        count=(int, ...),
    )
    written = {
        "create": record,
        "create_many": many,
        "get": create_model(
            f"{Singular}Details",
            __base__=record,
            related=(dict[str, Summary], Field(description="The id and name behind each *_id field that is set.")),
        ),
        "list": create_model(
            f"{Plural}Page",
            items=(list[partial], ...),
            has_more=(bool, ...),
            next_cursor=(str | None, Field(None, description="Pass as cursor to get the next page.")),
            total=(int | None, Field(None, description="All matches, when include_total was true.")),
        ),
        "update": record,
        "update_many": many,
        "delete": create_model(
            f"{Singular}Deleted",
            deleted=(record, Field(description=f"The record as it was; {entity.name}_restore brings it back.")),
        ),
        "delete_many": create_model(f"{Plural}Deleted", deleted_ids=(list[str], ...), count=(int, ...)),
        "restore": create_model(
            f"{Plural}Restored",
            items=(list[Summary], Field(description=f"Each {entity.singular} restored: id and name.")),
            count=(int, ...),
            notes=(list[str], Field(description="Links and references that could not come back, and why.")),
        ),
    }
    previewed: dict[type[BaseModel], type[BaseModel]] = {}  # one per model: create and update answer the same
    for verb in WRITE_VERBS:
        if written[verb] not in previewed:
            previewed[written[verb]] = create_model(
                f"{written[verb].__name__}Result", __base__=written[verb], preview=PREVIEW
            )
    return {**written, **{verb: previewed[written[verb]] for verb in WRITE_VERBS}, "config": EntityConfig}


def _counts(entity: Entity) -> dict[str, Any]:
    return {c.name: (int | None, Field(None, description=c.description)) for c in entity.counts}
