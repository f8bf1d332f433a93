"""Marketing list members: `lists_add_members`, `lists_remove_members` and `lists_members` (operations/lists.py).
The lists themselves have the generated tools of the `lists` entity."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mcp_crm.catalog.descriptions import FILTER_SYNTAX
from mcp_crm.catalog.models import CONFIRM, DRY_RUN, PREVIEW, ToolInput
from mcp_crm.catalog.tools import READ, UPDATE, AppState, CrmTool, make_tool
from mcp_crm.operations import Actor
from mcp_crm.operations.lists import EMAIL_STATUSES, MemberRequest
from mcp_crm.operations.preview import CONFIRM_ABOVE
from mcp_crm.operations.reads import DEFAULT_LIMIT, MAX_LIMIT
from mcp_crm.query import FilterNode

MAX_IDS = 1000
MemberType = Literal["contacts", "leads"]
EmailStatus = Literal[EMAIL_STATUSES]  # type: ignore[valid-type]
EXAMPLE = (
    '{"list_id": "<id>", "entity": "leads", "filter": {"and": [{"field": "source", "op": "eq", "value": "webinar"}, '
    '{"field": "archived", "op": "eq", "value": false}]}}'
)


class MembersInput(ToolInput):
    list_id: str = Field(max_length=36, description="A static list's id (lists_list finds it).")
    contact_ids: list[str] | None = Field(None, max_length=MAX_IDS, description=f"Contacts, by id (up to {MAX_IDS}).")
    lead_ids: list[str] | None = Field(None, max_length=MAX_IDS, description=f"Leads, by id (up to {MAX_IDS}).")
    entity: MemberType | None = Field(None, description="Whom `filter` selects: contacts or leads.")
    filter: FilterNode | None = Field(
        None, description="Everyone of `entity` matching this filter tree (as in contacts_list / leads_list)."
    )
    dry_run: bool = DRY_RUN[1]


class RemoveMembersInput(MembersInput):
    """A removal by filter, or of more than CONFIRM_ABOVE ids, needs the confirm token of its dry run (as bulk
    deletes do): a filter can match thousands."""

    confirm: str | None = CONFIRM[1]

    def touches(self) -> int | None:
        """The members named by id; None with a filter (how many it removes shows once rehearsed)."""
        if self.filter is not None:
            return None
        return len(self.contact_ids or []) + len(self.lead_ids or [])

    @staticmethod
    def touched(result: dict[str, Any]) -> int:
        return sum(result["removed"].values())

    @staticmethod
    def touched_words(result: dict[str, Any]) -> str:
        removed, name = result["removed"], result["list"]["name"]
        return f"remove {removed['contacts']} contacts and {removed['leads']} leads from list '{name}'"


class ListRef(BaseModel):
    id: str
    name: str


class Counts(BaseModel):
    contacts: int
    leads: int


class Skipped(BaseModel):
    type: MemberType
    id: str
    why: str = Field(description="Why nothing was done for it: no such record, or in the trash.")


class MembersAdded(BaseModel):
    list: ListRef
    added: Counts = Field(description="Members this call added.")
    already_there: Counts = Field(description="Named or matched records that were members already.")
    skipped: list[Skipped] = Field(description="Ids that name no record of the workspace, and why.")
    members: Counts = Field(description="How many members the list holds now.")
    preview: dict[str, Any] | None = PREVIEW[1]


class MembersRemoved(BaseModel):
    list: ListRef
    removed: Counts = Field(description="Members this call removed.")
    not_there: Counts = Field(description="Named or matched records that were not members.")
    skipped: list[Skipped] = Field(description="Ids that name no record of the workspace, and why.")
    members: Counts = Field(description="How many members the list holds now.")
    preview: dict[str, Any] | None = PREVIEW[1]


class ListMembersInput(ToolInput):
    list_id: str = Field(max_length=36, description="The list's id (static or dynamic).")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Page size, 1-{MAX_LIMIT}.")
    cursor: str | None = Field(None, max_length=500, description="next_cursor from the previous page.")


class ListInfo(ListRef):
    kind: Literal["static", "dynamic"]


class Member(BaseModel):
    type: MemberType
    id: str
    name: str = Field(description="A contact's full name, a lead's title.")
    email: str | None = Field(description="The contact's primary email; for a lead, its contact's.")
    email_status: EmailStatus = Field(  # type: ignore[valid-type]
        description="ok; opted_out (email_opt_out is set: do not email); no_email (none, or a lead without a contact)."
    )
    contact_id: str | None = Field(description="Leads: the lead's contact.")
    added_at: datetime | None = Field(description="Static lists: when it was added.")


class MembersPage(BaseModel):
    list: ListInfo
    items: list[Member]
    has_more: bool
    next_cursor: str | None = None
    total: int = Field(description="How many members the list has now.")
    email_statuses: dict[str, int] = Field(description="How many members have each email status.")


def _request(args: MembersInput) -> MemberRequest:
    ids = {"contacts": args.contact_ids or [], "leads": args.lead_ids or []}
    return MemberRequest(ids=ids, filter_entity=args.entity, filter=args.filter)


async def add_members(s: AppState, a: Actor, args: MembersInput) -> dict[str, Any]:
    done = await s.crm.change_members(a, args.list_id, _request(args), adding=True)
    return MembersAdded.model_validate(done).model_dump(mode="json", exclude_none=True)


async def remove_members(s: AppState, a: Actor, args: RemoveMembersInput) -> dict[str, Any]:
    done = await s.crm.change_members(a, args.list_id, _request(args), adding=False)
    return MembersRemoved.model_validate(done).model_dump(mode="json", exclude_none=True)


async def members(s: AppState, a: Actor, args: ListMembersInput) -> dict[str, Any]:
    page = await s.crm.list_members(a, args.list_id, args.limit, args.cursor)
    return MembersPage.model_validate(page).model_dump(mode="json")


def list_member_tools() -> list[CrmTool]:
    return [
        make_tool(
            name="lists_add_members",
            title="Add members to a list",
            description=(
                "Add contacts and leads to a static list in one atomic call: by id (contact_ids, lead_ids) and/or "
                f"everyone of `entity` matching `filter`, however many. {FILTER_SYNTAX} Repeating a call is safe: "
                "members already there are counted, not added twice; ids of no record are skipped and named with "
                "why. Dynamic lists are refused (their filter decides). Example: "
                f"{EXAMPLE}. Next: lists_members to see them with their email status."
            ),
            handler=add_members,
            arg_model=MembersInput,
            output_model=MembersAdded,
            annotations=UPDATE,
        ),
        make_tool(
            name="lists_remove_members",
            title="Remove members from a list",
            description=(
                "Remove contacts and leads from a static list in one atomic call: by id and/or everyone of `entity` "
                "matching `filter`; the records themselves stay. Non-members are counted as not_there; ids of no "
                "record are skipped with why. Dynamic lists are refused. Arguments as lists_add_members. Removing "
                f"more than {CONFIRM_ABOVE} members (by filter, or by id) needs `confirm`: the token a dry run of "
                "the same call returns in preview.confirm."
            ),
            handler=remove_members,
            arg_model=RemoveMembersInput,
            output_model=MembersRemoved,
            annotations=UPDATE,
        ),
        make_tool(
            name="lists_members",
            title="List the members of a list",
            description=(
                "The members of a list, a page at a time: contacts, then leads, each with name, email (a lead's is "
                "its contact's) and email_status ok | opted_out | no_email; a dynamic list's members are whoever "
                "matches its filter now. Also total and the count per email status. Pass next_cursor as cursor for "
                "the next page."
            ),
            handler=members,
            arg_model=ListMembersInput,
            output_model=MembersPage,
            annotations=READ,
        ),
    ]
