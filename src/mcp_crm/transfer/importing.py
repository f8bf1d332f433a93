"""Rows of plain values (a CSV file's lines, or what `import_rows` is sent) into records, through the same
create and update the tools use, inside the caller's transaction.

A batch goes: each row read through the column mapping (reader.py, by lenient.py's rules) -> with `match`, the
stored record each row names -> each row's own values checked against the create (or update) model -> references
given by name looked up and, with `create_missing`, created (references.py) -> rows of the batch naming the same
record folded into one change -> every check `create_records` and `update_records` make -> the write, or, when
checking only, nothing. A row that fails anywhere is set aside with its reason; the others go on.

An update from an import changes the fields its row gives: a blank cell changes nothing; emails, phones, tags and
linked records are added to the ones the record has; an address takes the parts given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, func, select

from mcp_crm.entities import Entity, Kind
from mcp_crm.entities.models import create_model_for, update_model_for
from mcp_crm.errors import CrmError
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.checks import InvalidItems
from mcp_crm.operations.merge import domain_key, email_key
from mcp_crm.operations.records import rows_by_id, table_of, title_expression, with_links
from mcp_crm.operations.writes import create_records, update_records
from mcp_crm.transfer.lenient import BadValue
from mcp_crm.transfer.plan import LISTS, MATCH_KEYS, PENDING, Item, Plan, Planned, Report, Row, entry_key, union
from mcp_crm.transfer.reader import RowReader
from mcp_crm.transfer.references import resolve

SetAside = Callable[[Item, str], None]  # a bad item and why

# -------------------------------------------------------------------------------------------- matching


def match_key(plan: Plan, item: Item) -> Any:
    """What the row's record is known by under `match`, or None (the row then makes a new record)."""
    match, values = plan.match, item.values
    if match is None:
        return None
    if match == "id":
        return item.record_id
    if match == "email":
        emails = values.get("emails") or []
        return email_key(emails[0]["value"]) if emails else None
    if match == "domain":
        return domain_key(values.get("domain"), values.get("website"))
    if match == "name":
        title = " ".join(str(values[c]) for c in plan.entity.title_columns if values.get(c))
        return title.casefold() or None
    value = values.get(match)
    return value if value not in (None, "", []) else None


def check_match(entity: Entity, match: str | None) -> None:
    if match is None or match in ("id", "name"):
        return
    allowed = (*MATCH_KEYS.get(entity.name, ("name",)), "id")
    fields = [n for n, f in entity.writable.items() if f.kind in (Kind.text, Kind.number)]
    if match in MATCH_KEYS.get(entity.name, ()) or match in fields:
        return
    raise CrmError(f"{entity.name} cannot be matched by '{match}'; use one of {', '.join((*allowed, *fields))}.")


def _existing(conn: Connection, actor: Actor, plan: Plan, keys: set[Any]) -> dict[Any, list[str]]:
    """Key -> ids of the stored records it names."""
    entity, table = plan.entity, table_of(plan.entity)
    if plan.match == "id":
        return {rid: [rid] for rid in rows_by_id(conn, actor, entity, sorted(keys))}
    if plan.match == "email":
        column, wanted = func.lower(table.c.email), sorted(keys)
    elif plan.match == "domain":
        column, wanted = table.c.domain, sorted(keys | {"www." + k for k in keys})
    elif plan.match == "name":
        column, wanted = func.lower(title_expression(entity)), sorted(keys)
    else:
        column, wanted = table.c[plan.match], sorted(keys, key=str)
    found: dict[Any, list[str]] = {}
    query = select(table.c.id, column.label("key")).where(table.c.workspace_id == actor.workspace_id)
    for start in range(0, len(wanted), 500):
        for rid, key in conn.execute(query.where(column.in_(wanted[start : start + 500]))):
            if plan.match == "email":
                key = email_key(key)
            elif plan.match == "domain":
                key = domain_key(key)
            found.setdefault(key, []).append(rid)
    return found


def _fold(items: list[Item]) -> list[Item]:
    """Items for the same record become one: later rows' values win, lists are joined."""
    folded: dict[Any, Item] = {}
    out = []
    for item in items:
        same = folded.get((item.key, item.record_id)) if item.key is not None else None
        if same is None:
            if item.key is not None:
                folded[(item.key, item.record_id)] = item
            out.append(item)
            continue
        same.lines += item.lines
        same.refs += item.refs
        same.values = _merged(same.values, item.values)
    return out


def _merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for name, value in new.items():
        if name in LISTS or (isinstance(value, list) and isinstance(old.get(name), list)):
            merged[name] = union(old.get(name) or [], value)
        elif isinstance(value, dict) and isinstance(old.get(name), dict):
            merged[name] = old[name] | value
        else:
            merged[name] = value
    return merged


def _as_update(entity: Entity, stored: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The changes an import row makes to a stored record: lists and links grow, an address takes the parts
    given, the rest is replaced."""
    changes = dict(values)
    for name in LISTS:
        if name in changes and name in entity.writable:
            changes[name] = union(list(stored.get(name) or []), changes[name])
    for name, spec in entity.writable.items():
        if spec.kind is Kind.object and name in changes and stored.get(name):
            changes[name] = stored[name] | changes[name]  # the parts given: a new city keeps the street
    for link in entity.links:
        if link.input in changes:
            # links kept as they are, unless the row gives one again with its attributes (a new role)
            merged: dict[str, Any] = {s["id"].casefold(): s["id"] for s in stored.get(link.name, [])}
            for entry in changes[link.input]:
                if isinstance(entry, dict) or entry_key(entry) not in merged:
                    merged[entry_key(entry)] = entry
            changes[link.input] = list(merged.values())
    return changes


# ------------------------------------------------------------------------------------------------ batches


def import_batch(
    conn: Connection, actor: Actor, plan: Plan, rows: list[Row], write: bool, planned: Planned
) -> tuple[Report, list[tuple[Row, str]]]:
    """Reads, resolves, checks and (when `write`) writes one batch. Returns its report and the bad rows with
    their reasons; the good rows are written (or would be) whatever the bad ones are.

    Records `create_missing` makes are created before the rows' own checks; when a row is refused after that,
    the batch is undone to a savepoint and done again without it, so a bad row creates nothing."""
    refused: list[tuple[Row, str]] = []
    while True:
        before = planned.copy()
        savepoint = conn.begin_nested()
        left = [row for row in rows if row.line not in {r.line for r, _ in refused}]
        report, bad, late = _attempt(conn, actor, plan, left, write, planned)
        if not (late and report.related_created):
            savepoint.commit()
            break
        savepoint.rollback()
        planned.reset(before)
        refused += bad
    for row, reason in refused:
        report.rows += 1
        report.bad(row.line, reason)
    bad += refused
    report.ok = report.rows - report.bad_rows
    report.errors.sort()
    return report, sorted(bad, key=lambda b: b[0].line)


def _attempt(
    conn: Connection, actor: Actor, plan: Plan, rows: list[Row], write: bool, planned: Planned
) -> tuple[Report, list[tuple[Row, str]], bool]:
    """One go at a batch: (report, bad rows, whether a row was refused after related records were made)."""
    report = Report(rows=len(rows))
    by_line = {row.line: row for row in rows}
    bad: list[tuple[Row, str]] = []

    def set_aside(item: Item, reason: str) -> None:
        for line in item.lines:
            bad.append((by_line[line], reason))
            report.bad(line, reason)

    reader = RowReader(plan)
    items = []
    for row in rows:
        try:
            item = reader.read(row)
        except BadValue as exc:
            bad.append((row, str(exc)))
            report.bad(row.line, str(exc))
            continue
        item.key = match_key(plan, item)
        items.append(item)
    _attach_existing(conn, actor, plan, items, planned, set_aside)
    for item, reason in _prevalidated(plan, items):
        items.remove(item)
        set_aside(item, reason)
    for item, reason in resolve(conn, actor, plan, items, planned, write, report):
        items.remove(item)
        set_aside(item, reason)
    resolved = len(bad)
    items = _fold(items)
    creates = [i for i in items if i.record_id is None]
    _write_creates(conn, actor, plan, creates, write, report, set_aside)
    _write_updates(conn, actor, plan, [i for i in items if i.record_id is not None], write, report, set_aside)
    if not write and plan.match:
        bad_lines = {row.line for row, _ in bad}
        planned.keys.update(i.key for i in creates if i.key is not None and not bad_lines & set(i.lines))
    return report, bad, len(bad) > resolved


def _prevalidated(plan: Plan, items: list[Item]) -> list[tuple[Item, str]]:
    """Each row's own values against the create (or update) model, before anything is looked up or created,
    and before rows for the same record are folded together: a bad row neither creates an organization nor
    takes a good row for the same email down with it."""
    bad = []
    for item in items:
        values = _with_pending(item)
        model = update_model_for(plan.entity) if item.record_id else create_model_for(plan.entity)
        try:
            model.model_validate(values)
        except ValidationError as exc:
            bad.append((item, _explain(exc)))
    return bad


def _with_pending(item: Item) -> dict[str, Any]:
    values = dict(item.values)
    for ref in item.refs:
        if ref.field.startswith("custom."):
            values["custom"] = values["custom"] | {ref.field.removeprefix("custom."): PENDING}
        elif ref.index is not None:
            entries = list(values[ref.field])
            entry = entries[ref.index]
            entries[ref.index] = (
                {k: PENDING if v is None else v for k, v in entry.items()} if isinstance(entry, dict) else PENDING
            )
            values[ref.field] = entries
        else:
            values[ref.field] = PENDING
    return values


def _attach_existing(
    conn: Connection, actor: Actor, plan: Plan, items: list[Item], planned: Planned, set_aside: SetAside
) -> None:
    """With `match`: the stored record each item names, if any (two stored records for one key is an error)."""
    if plan.match is None:
        return
    keyed = [i for i in items if i.key is not None]
    found = _existing(conn, actor, plan, {i.key for i in keyed})
    for item in keyed:
        ids = found.get(item.key, [])
        if len(ids) > 1:
            items.remove(item)
            set_aside(
                item,
                f"{plan.match} '{item.key}' matches {len(ids)} {plan.entity.name} ({', '.join(ids[:5])}); "
                f"merge them first ({plan.entity.name}_find_duplicates)",
            )
        elif ids:
            item.record_id = ids[0]
        elif plan.match == "id":
            items.remove(item)
            set_aside(item, f"no {plan.entity.singular} with id '{item.key}'")
        else:
            item.record_id = None
            item.planned = item.key in planned.keys


def _without_pending(values: dict[str, Any]) -> dict[str, Any]:
    """A checked row without the references to records the check only pretends to make (they would be new:
    nothing to check about them)."""
    kept: dict[str, Any] = {}
    for name, value in values.items():
        if value == PENDING:
            continue
        if isinstance(value, list):
            value = [v for v in value if v != PENDING and not (isinstance(v, dict) and PENDING in v.values())]
        elif name == "custom" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if v != PENDING}
        kept[name] = value
    return kept


def _write_creates(
    conn: Connection, actor: Actor, plan: Plan, items: list[Item], write: bool, report: Report, set_aside: SetAside
) -> None:
    if not write:
        for item in items:
            item.values = _without_pending(item.values)
    model = create_model_for(plan.entity)
    valid = _validated(model, items, set_aside)
    records = _settle(
        valid,
        lambda chunk: create_records(conn, actor, plan.entity, [m for _, m in chunk], True, check_only=not write),
        set_aside,
    )
    for item, _ in records:  # an item an earlier batch of a check would have created is an update by then
        report.created += 0 if item.planned else 1
        report.updated += len(item.lines) - (0 if item.planned else 1)


def _write_updates(
    conn: Connection, actor: Actor, plan: Plan, items: list[Item], write: bool, report: Report, set_aside: SetAside
) -> None:
    if not items:
        return
    entity = plan.entity
    if not write:
        for item in items:
            item.values = _without_pending(item.values)
    stored = rows_by_id(conn, actor, entity, [i.record_id for i in items if i.record_id], lock=True)
    with_links(conn, entity, list(stored.values()))
    for item in items:
        item.values = _as_update(entity, stored[item.record_id or ""], item.values)
    valid = _validated(update_model_for(entity), items, set_aside)
    before = {rid: row["revision"] for rid, row in stored.items()}
    records = _settle(
        valid,
        lambda chunk: update_records(
            conn, actor, entity, [(i.record_id or "", m) for i, m in chunk], True, check_only=not write
        ),
        set_aside,
    )
    for item, record in records:
        if record is None or record["revision"] != before[item.record_id or ""]:
            report.updated += len(item.lines)
        else:
            report.unchanged += len(item.lines)


def _validated(model: type[BaseModel], items: list[Item], set_aside: SetAside) -> list[tuple[Item, BaseModel]]:
    valid = []
    for item in items:
        try:
            valid.append((item, model.model_validate(item.values)))
        except ValidationError as exc:
            set_aside(item, _explain(exc))
    return valid


def _explain(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else "")


def _settle(
    valid: list[tuple[Item, BaseModel]], write: Callable[[list[tuple[Item, BaseModel]]], list[Any]], set_aside: SetAside
) -> list[tuple[Item, dict[str, Any] | None]]:
    """Writes (or checks) the items, setting aside the ones the checks refuse and trying the rest again."""
    while valid:
        try:
            records = write(valid)
        except InvalidItems as exc:
            refused: dict[int, str] = {}
            for index, name, message in exc.found:
                refused.setdefault(index, f"{name}: {message}" if name else message)
            for index, reason in refused.items():
                set_aside(valid[index][0], reason)
            valid = [v for index, v in enumerate(valid) if index not in refused]
            continue
        return [(item, records[index] if records else None) for index, (item, _) in enumerate(valid)]
    return []
