"""References given by name (an organization, an owner, a stage) looked up, and with `create_missing`
created, once per batch."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, func, or_, select

from mcp_crm.entities import ENTITIES, Entity
from mcp_crm.entities.models import create_model_for
from mcp_crm.errors import CrmError
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.checks import InvalidItems
from mcp_crm.operations.merge import domain_key
from mcp_crm.operations.records import table_of, title_expression
from mcp_crm.operations.writes import create_records
from mcp_crm.transfer.lenient import BadValue
from mcp_crm.transfer.plan import CREATABLE, PENDING, Item, Plan, Planned, Ref, Report
from mcp_crm.transfer.reader import split_name


def _lookup(conn: Connection, actor: Actor, target: Entity, names: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Folded name (or email, or domain) -> the records it names: [{id, pipeline_id?}]."""
    table = table_of(target)
    folded = {n.casefold() for n in names}
    title = func.lower(title_expression(target))
    wanted = [title.in_(sorted(folded))]
    if "email" in table.c:
        wanted.append(func.lower(table.c.email).in_(sorted(folded)))
    if "domain" in table.c:
        domains = {d for n in names if (d := domain_key(n)) and "." in d and " " not in d}
        if domains:
            wanted.append(table.c.domain.in_(sorted(domains)))
    extra = [table.c.pipeline_id, table.c.kind] if target.name == "stages" else []
    keys = [table.c.email] if "email" in table.c else []
    keys += [table.c.domain] if "domain" in table.c else []
    query = select(table.c.id, title.label("title"), *keys, *extra).where(
        table.c.workspace_id == actor.workspace_id, or_(*wanted)
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(query).mappings():
        for key in {row["title"], *(str(row[k.name]).casefold() for k in keys if row[k.name])}:
            if key is not None:
                found.setdefault(key, []).append(dict(row))
    return found


def resolve(
    conn: Connection, actor: Actor, plan: Plan, items: list[Item], planned: Planned, write: bool, report: Report
) -> list[tuple[Item, str]]:
    """Fills in the ids of references given by names; returns the items that cannot be (and why)."""
    bad: list[tuple[Item, str]] = []
    by_target: dict[str, set[str]] = {}
    for item in items:
        for ref in item.refs:
            by_target.setdefault(ref.target, set()).add(ref.name)
    found = {t: _lookup(conn, actor, ENTITIES[t], names) for t, names in by_target.items() if t != "stages"}
    stages = _lookup(conn, actor, ENTITIES["stages"], by_target["stages"]) if "stages" in by_target else {}
    if plan.create_missing:
        for target, names in by_target.items():
            if target in CREATABLE and target != "stages":
                missing = {n.casefold(): n for n in sorted(names) if n.casefold() not in found[target]}
                created = _create_related(conn, actor, ENTITIES[target], list(missing.values()), planned, write, report)
                found[target].update(created)
    for item in items:
        try:
            for ref in item.refs:
                if ref.target == "stages":
                    continue
                _fill(item, ref, _one(plan, ref, found[ref.target]))
            for ref in item.refs:  # a stage by name: the one of the row's pipeline
                if ref.target == "stages":
                    _fill(item, ref, _stage(conn, actor, plan, item, ref, stages, planned, write, report))
        except BadValue as exc:
            bad.append((item, f"{ref.column}: {exc}"))
        else:
            report.linked += len(item.refs)
    return bad


def _fill(item: Item, ref: Ref, record_id: str) -> None:
    if ref.field.startswith("custom."):
        item.values["custom"][ref.field.removeprefix("custom.")] = record_id
    elif ref.index is not None:
        entries = item.values[ref.field]
        if isinstance(entries[ref.index], dict):  # a link with attributes: {organization_id: None, role: ...}
            column = next(k for k, v in entries[ref.index].items() if k.endswith("_id") and v is None)
            entries[ref.index] = entries[ref.index] | {column: record_id}
        else:
            entries[ref.index] = record_id
    else:
        item.values[ref.field] = record_id


def _one(plan: Plan, ref: Ref, found: dict[str, list[dict[str, Any]]]) -> str:
    target = ENTITIES[ref.target]
    matches = found.get(ref.name.casefold(), [])
    if len(matches) == 1:
        return str(matches[0]["id"])
    if matches:
        ids = ", ".join(m["id"] for m in matches[:5])
        raise BadValue(f"'{ref.name}' names {len(matches)} {target.name} ({ids}); give the id instead")
    how = " (to create it, import with --create-missing, or create_missing: true)"
    how = how if ref.target in CREATABLE and not plan.create_missing else ""
    raise BadValue(f"no {target.singular} named '{ref.name}'{how}")


def _values_for(target: Entity, name: str) -> dict[str, Any]:
    if target.name == "contacts":
        if "@" in name:
            raise BadValue(f"no contact with email '{name}'; a new one needs a name")
        first, last = split_name(name)
        return {"first_name": first, "last_name": last}
    if target.name == "organizations" and (domain := domain_key(name)) and "." in name and " " not in name:
        return {"name": name, "domain": domain}
    return {"name": name}


def _create_related(
    conn: Connection,
    actor: Actor,
    target: Entity,
    names: list[str],
    planned: Planned,
    write: bool,
    report: Report,
) -> dict[str, list[dict[str, Any]]]:
    """Creates the records named but not found, in one write; {folded name: [{id}]} of those it could. A name
    that cannot make a record (a contact's needs a first and a last name) stays unresolved, and its rows fail.
    Checking, it only checks them, and their id is PENDING: a check of a large file would otherwise make (and
    roll back) the same organizations in every batch."""
    model = create_model_for(target)
    made: list[tuple[str, BaseModel]] = []
    for name in names:
        try:
            made.append((name, model.model_validate(_values_for(target, name))))
        except (BadValue, ValidationError):
            continue
    while made:
        try:
            records = create_records(conn, actor, target, [m for _, m in made], bulk=True, check_only=not write)
        except InvalidItems as exc:
            refused = {index for index, _, _ in exc.found}
            made = [each for index, each in enumerate(made) if index not in refused]
            continue
        for name, _ in made:
            if write or (target.name, name.casefold()) not in planned.related:
                report.related_created[target.name] += 1
            planned.related.add((target.name, name.casefold()))
        ids = [record["id"] for record in records] if write else [PENDING] * len(made)
        return {name.casefold(): [{"id": rid}] for (name, _), rid in zip(made, ids, strict=True)}
    return {}


def _stage(
    conn: Connection,
    actor: Actor,
    plan: Plan,
    item: Item,
    ref: Ref,
    stages: dict[str, list[dict[str, Any]]],
    planned: Planned,
    write: bool,
    report: Report,
) -> str:
    pipeline_id = item.values.get("pipeline_id")
    matches = [s for s in stages.get(ref.name.casefold(), []) if pipeline_id in (None, s["pipeline_id"])]
    if len(matches) == 1:
        if item.values.get("status") in ("won", "lost") and matches[0]["kind"] == "open":
            return _closing_stage(conn, actor, plan, item, ref, str(matches[0]["pipeline_id"]), planned, write, report)
        return str(matches[0]["id"])
    if matches:
        raise BadValue(f"stage '{ref.name}' is in {len(matches)} pipelines; give the pipeline too")
    if not plan.create_missing:
        raise BadValue(f"no stage named '{ref.name}'" + (" in that pipeline" if pipeline_id else ""))
    if pipeline_id is None:
        pipelines = table_of(ENTITIES["pipelines"])
        pipeline_id = conn.execute(
            select(pipelines.c.id).where(pipelines.c.workspace_id == actor.workspace_id, pipelines.c.is_default)
        ).scalar()
        item.values["pipeline_id"] = pipeline_id
    created = _new_stage(conn, actor, str(pipeline_id), ref.name, "open", planned, write, report)
    stages.setdefault(ref.name.casefold(), []).append({"id": created, "pipeline_id": pipeline_id, "kind": "open"})
    if item.values.get("status") in ("won", "lost"):
        return _closing_stage(conn, actor, plan, item, ref, str(pipeline_id), planned, write, report)
    return created


def _new_stage(
    conn: Connection,
    actor: Actor,
    pipeline_id: str,
    name: str,
    kind: str,
    planned: Planned,
    write: bool,
    report: Report,
) -> str:
    """A stage `create_missing` adds: an open one after the pipeline's open stages, a won or lost one last."""
    stages = table_of(ENTITIES["stages"])
    last = conn.execute(
        select(func.max(stages.c.position)).where(
            stages.c.workspace_id == actor.workspace_id, stages.c.pipeline_id == pipeline_id, stages.c.kind == "open"
        )
    ).scalar()
    position = min((last or 0) + 1, 999) if kind == "open" else 1000
    model = create_model_for(ENTITIES["stages"])
    try:
        values = model.model_validate({"name": name, "pipeline_id": pipeline_id, "kind": kind, "position": position})
        if write or pipeline_id != PENDING:  # in a pipeline the check only pretends to make: nothing to look up
            made = create_records(conn, actor, ENTITIES["stages"], [values], bulk=False, check_only=not write)
    except (ValidationError, CrmError) as exc:
        raise BadValue(f"could not create the stage '{name}': {exc}") from None
    if write or ("stages", f"{pipeline_id}:{name.casefold()}") not in planned.related:
        report.related_created["stages"] += 1
    planned.related.add(("stages", f"{pipeline_id}:{name.casefold()}"))
    return str(made[0]["id"]) if write else PENDING


def _closing_stage(
    conn: Connection,
    actor: Actor,
    plan: Plan,
    item: Item,
    ref: Ref,
    pipeline_id: str,
    planned: Planned,
    write: bool,
    report: Report,
) -> str:
    """A won (lost) deal goes to its pipeline's won (lost) stage, whatever open stage the row names: Pipedrive
    keeps a closed deal in the stage it closed in, while here the stage's kind sets the deal's status."""
    status = item.values["status"]
    stages = table_of(ENTITIES["stages"])
    found = conn.execute(
        select(stages.c.id)
        .where(stages.c.workspace_id == actor.workspace_id, stages.c.pipeline_id == pipeline_id)
        .where(stages.c.kind == status)
        .order_by(stages.c.position, stages.c.created_at)
        .limit(1)
    ).scalar()
    if found is not None:
        return str(found)
    if not plan.create_missing:
        raise BadValue(
            f"the deal is {status} but stage '{ref.name}' is open and its pipeline has no {status} stage "
            f"(add one with stages_create, kind {status}, or import with create_missing)"
        )
    return _new_stage(conn, actor, pipeline_id, status.capitalize(), status, planned, write, report)
