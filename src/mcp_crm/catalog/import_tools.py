"""`import_rows`: rows of plain values (a pasted spreadsheet, another tool's output) into records, matched to fields
the way `mcp-crm import` matches a file's columns (transfer/columns.py, transfer/importing.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from mcp_crm.catalog.models import DRY_RUN, IDEMPOTENCY_KEY, PREVIEW, ToolInput
from mcp_crm.catalog.tools import WRITE, AppState, CrmTool, make_tool, once
from mcp_crm.entities import ENTITIES
from mcp_crm.operations import Actor
from mcp_crm.transfer.plan import MAX_ROWS

IMPORTABLE = ("contacts", "organizations", "leads", "deals", "services", "tasks", "activities", "notes")


class ColumnTarget(BaseModel):
    column: str
    field: str = Field(description="The field it fills, as a mapping names it.")


class IgnoredColumn(BaseModel):
    column: str
    why: str


class ImportReport(BaseModel):
    rows: int
    ok: int
    bad: int
    created: int
    updated: int = Field(description="Rows that changed a record found by match (or made by an earlier row).")
    unchanged: int = Field(description="Rows that matched a record and changed nothing.")
    linked: int = Field(description="References given by name and resolved to records.")
    related_created: dict[str, int] = Field(description="Records create_missing made, by entity.")
    errors_by_reason: dict[str, int]
    errors: list[dict[str, Any]] = Field(description="[{line: the row's index in rows, error}], at most 200.")


ImportRowsInput = create_model(
    "ImportRowsInput",
    __base__=ToolInput,
    entity=(Literal[IMPORTABLE], Field(description="What the rows are.")),  # type: ignore[valid-type]
    rows=(
        list[dict[str, Any]],
        Field(
            min_length=1,
            max_length=MAX_ROWS,
            description=f"1-{MAX_ROWS} rows, each {{column: value}} as a spreadsheet has them.",
        ),
    ),
    mapping=(
        dict[str, str | None] | None,
        Field(
            None,
            description="column -> field (or null to skip it) where the automatic match is wrong; see the "
            "description for what a field can be.",
        ),
    ),
    match=(
        str | None,
        Field(
            None,
            max_length=60,
            description="Update the record a row names instead of adding one: email (contacts), domain "
            "(organizations), name, id, or a text or number field.",
        ),
    ),
    create_missing=(
        bool,
        Field(False, description="Create organizations, contacts, pipelines and stages named but not found."),
    ),
    skip_bad_rows=(bool, Field(False, description="Write the good rows even when some are bad.")),
    idempotency_key=IDEMPOTENCY_KEY,
    dry_run=DRY_RUN,
)


class ImportRowsOutput(BaseModel):
    mapping: list[ColumnTarget] = Field(description="Each column read and the field it fills.")
    ignored: list[IgnoredColumn] = Field(description="Columns not read, and why.")
    report: ImportReport
    preview: Any = PREVIEW[1]


async def _import(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
    entity = ENTITIES[args.entity]
    options = (args.mapping, args.match, args.create_missing, args.skip_bad_rows)
    found = await s.crm.import_rows(a, entity, args.rows, *options, once(a, args))
    return ImportRowsOutput.model_validate(found).model_dump(mode="json", exclude_none=True)


def import_tools() -> list[CrmTool]:
    return [
        make_tool(
            name="import_rows",
            title="Import rows",
            description=(
                "Turn rows of plain values (from a spreadsheet, a pasted table, another system) into records, in one "
                "atomic call: columns are matched to fields by name or label, ignoring case and punctuation "
                "(First Name, E-mail (work), Mobile, Company, Zip...), values are read leniently (31.03.2026, "
                "03/31/2026 and 31 Mar 2026; $1,200.50 and 1.200,50 EUR; yes/no), and names of related records "
                "are looked up (Company: 'Acme' links the organization Acme; owners by name or email). The answer "
                "shows the mapping used and a report. A mapping field is a field name, emails:<work|home|other>, "
                "phones:<work|mobile|home|other>, address.<street|city|region|postal_code|country>, a reference "
                "by name (owner, organization, stage) or by id (owner_id), a list by names (organizations) or "
                "ids (organization_ids), custom.<key>, name (a person's whole name) or id. By default one bad row "
                "writes nothing and the error lists every bad row; try dry_run first. With match, rows update "
                "the record they name: given cells replace its values, emails, phones, tags and links are added. "
                'Example: {"entity": "contacts", "rows": [{"Name": "Ada Lovelace", "Email": "ada@acme.com", '
                '"Company": "Acme"}], "match": "email", "create_missing": true, "dry_run": true}.'
            ),
            handler=_import,
            arg_model=ImportRowsInput,
            output_model=ImportRowsOutput,
            annotations=WRITE,
        )
    ]
