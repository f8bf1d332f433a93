"""A row's cells into the values a create or update takes, by the column mapping and lenient.py's rules."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Any

from mcp_crm.entities import Kind
from mcp_crm.entities.custom import TYPES
from mcp_crm.transfer import lenient
from mcp_crm.transfer.columns import Target
from mcp_crm.transfer.lenient import BadValue
from mcp_crm.transfer.plan import KEY_TEXT, LOST_WITHOUT_REASON, NOTE_SUBJECT_ORDER, Item, Plan, Ref, Row, union


class RowReader:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.entity = plan.entity

    def read(self, row: Row) -> Item:
        """The row's values as the create tool takes them; raises BadValue naming the column."""
        values: dict[str, Any] = {}
        refs: list[Ref] = []
        record_id = None
        problems = []
        for header, target in self.plan.mapping.columns.items():
            cell = row.cells.get(header)
            if cell is None or (isinstance(cell, str) and lenient.blank(cell)):
                continue
            cell = _unguarded(cell_text(cell))
            try:
                if target.field == "id":  # only `match id` reads it: other imports make new records
                    record_id = cell.strip() if self.plan.match == "id" else None
                else:
                    self._put(values, refs, target, cell, header)
            except BadValue as exc:
                problems.append(f"{header}: {exc}")
        try:
            self._finish(values)
        except BadValue as exc:
            problems.append(str(exc))
        if problems:
            raise BadValue("; ".join(problems))
        return Item([row.line], values, refs, record_id=record_id)

    def _put(self, values: dict[str, Any], refs: list[Ref], target: Target, cell: str, header: str) -> None:
        name, part = target.field, target.part
        if name == "full_name":
            values["_full_name"] = (header, lenient.text(cell))
        elif name == "record":  # one record a note is about: of several named (Pipedrive's export names the
            held = values.get("record_type")  # deal, its person and organization), the first in NOTE_SUBJECT_ORDER
            if held is not None and NOTE_SUBJECT_ORDER.index(held) < NOTE_SUBJECT_ORDER.index(part or ""):
                return
            refs[:] = [r for r in refs if r.field != "record_id"]
            refs.append(Ref("record_id", part or "", lenient.text(cell), column=header))
            values["record_type"] = part
        elif name == "custom":
            self._put_custom(values, refs, target, cell, header)
        elif name in ("emails", "phones"):
            read = lenient.email if name == "emails" else lenient.phone
            entries = values.setdefault(name, [])
            for value in lenient.values(cell):
                entries.append({"value": read(value), "label": part or "work"})
        else:
            spec = self.entity.fields[name]
            if spec.kind is Kind.relations and target.part is not None:  # a link attribute, aligned
                values.setdefault("_attributes", {})[(name, part)] = lenient.aligned(cell)
            elif spec.kind is Kind.relations:
                names = lenient.values(cell, names=True)
                if target.by_name:
                    for index, each in enumerate(names):
                        refs.append(Ref(name, spec.target or "", each, index, header))
                    values[name] = [None] * len(names)
                else:
                    values[name] = names
            elif spec.kind is Kind.relation and target.by_name:
                refs.append(Ref(name, spec.target or "", lenient.text(cell), column=header))
                values[name] = None
            elif spec.kind is Kind.object:
                values.setdefault(name, {})[part or "street"] = lenient.text(cell)
            elif spec.kind is Kind.datetime and part:
                values.setdefault("_moments", {}).setdefault(name, {})[part] = cell
            else:
                values[name] = self._scalar(spec.kind, name, spec, cell, values)

    def _scalar(self, kind: Kind, name: str, spec: Any, cell: str, values: dict[str, Any]) -> Any:
        if kind in (Kind.text, Kind.long_text, Kind.relation):
            text = lenient.text(cell) if kind is not Kind.long_text else cell.strip()
            return re.sub(r"[\s-]+", "_", text.casefold()) if (self.entity.name, name) in KEY_TEXT else text
        if kind is Kind.money:
            amount, currency = lenient.money(cell)
            if currency and "currency" in self.entity.writable:
                values.setdefault("currency", currency)
            return amount
        if kind is Kind.number:
            if name.endswith("_minutes") and re.fullmatch(r"\d{1,3}:\d{2}(:\d{2})?", cell.strip()):
                hours, minutes = cell.strip().split(":")[:2]
                return int(hours) * 60 + int(minutes)
            return lenient.integer(cell) if spec.annotation is int else lenient.number(cell)
        if kind is Kind.date:
            return lenient.day(cell, self.plan.day_first)
        if kind is Kind.datetime:
            return lenient.moment(cell, self.plan.day_first)
        if kind is Kind.boolean:
            return lenient.boolean(cell)
        if kind is Kind.enum:
            return lenient.option(cell, spec.enum or ())
        if kind is Kind.tags:
            return lenient.values(cell)
        raise BadValue(f"{name} cannot be imported from a cell")

    def _put_custom(self, values: dict[str, Any], refs: list[Ref], target: Target, cell: str, header: str) -> None:
        key, _, part = (target.part or "").partition(".")
        kind = self.plan.custom[key]["type"]
        custom = values.setdefault("custom", {})
        if part:
            whole = custom.setdefault(key, {})
            if part == "amount":
                whole["amount"], found = lenient.money(cell)
                if found:
                    whole.setdefault("currency", found)
            elif part == "currency":
                whole["currency"] = lenient.text(cell).upper()  # wins over a symbol in the amount's cell
            elif kind == "date_range":
                whole[part] = lenient.day(cell, self.plan.day_first)
            else:
                whole[part] = lenient.text(cell)
            return
        if TYPES[kind].target:
            refs.append(Ref(f"custom.{key}", TYPES[kind].target or "", lenient.text(cell), column=header))
            custom[key] = None
        elif kind == "monetary":
            amount, currency = lenient.money(cell)
            custom[key] = {"amount": amount, "currency": currency or values.get("currency") or "USD"}
        elif kind == "number":
            custom[key] = lenient.number(cell)
        elif kind == "date":
            custom[key] = lenient.day(cell, self.plan.day_first)
        elif kind == "boolean":
            custom[key] = lenient.boolean(cell)
        elif kind == "multiple_options":
            custom[key] = lenient.values(cell)
        elif kind == "address":
            custom[key] = {"street": lenient.text(cell)}
        elif kind == "phone":
            custom[key] = lenient.phone(cell)
        elif kind == "email":
            custom[key] = lenient.email(cell)
        elif kind in ("date_range", "time_range"):
            raise BadValue(f"give the range as two columns, custom.{key}.start and custom.{key}.end")
        else:
            custom[key] = cell.strip() if kind == "long_text" else lenient.text(cell)

    def _finish(self, values: dict[str, Any]) -> None:
        """Values made of several columns: a whole name, a date and a time, link attributes."""
        header, full = values.pop("_full_name", (None, None))
        if full and not ("first_name" in values and "last_name" in values):
            try:
                first, last = split_name(full)
            except BadValue as exc:
                raise BadValue(f"{header}: {exc}") from None
            values.setdefault("first_name", first)
            values.setdefault("last_name", last)
        for name, parts in values.pop("_moments", {}).items():
            if "date" not in parts:
                raise BadValue(f"{name}: a time without a date")
            moment = lenient.moment(parts["date"], self.plan.day_first)
            if "time" in parts:
                clock = parts["time"].strip()
                if not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", clock):
                    raise BadValue(f"'{clock}' is not a time of day (write it as 14:30)")
                moment = moment.replace(hour=0, minute=0) + _offset(time.fromisoformat(clock.zfill(5)))
            values[name] = moment
        for (name, attribute), listed in values.pop("_attributes", {}).items():
            entries = values.get(name)
            if entries is None or len(listed) > len(entries):
                raise BadValue(f"{name}: more {attribute} values than linked records")
            column = self.entity.fields[name].link.target_column  # type: ignore[union-attr]
            values[name] = [
                (e if isinstance(e, dict) else {column: e}) | ({attribute: v} if v else {})
                for e, v in zip(entries, listed + [None] * (len(entries) - len(listed)), strict=True)
            ]
        for name in ("emails", "phones"):
            if values.get(name):  # an export has `email` beside `emails`: each address once
                values[name] = union([], values[name])
                values[name][0]["primary"] = True
        if self.entity.name == "deals" and values.get("status") == "lost" and not values.get("lost_reason"):
            values["lost_reason"] = LOST_WITHOUT_REASON  # other CRMs close deals without one; ours need one


def _unguarded(cell: str) -> str:
    """A cell as it was before an export quoted it so spreadsheets would not run it ('=1+2 -> =1+2)."""
    return cell[1:] if len(cell) > 1 and cell[0] == "'" and cell[1] in "=+-@\t\r" else cell


def _offset(clock: time) -> timedelta:
    return timedelta(hours=clock.hour, minutes=clock.minute, seconds=clock.second)


def split_name(full: str) -> tuple[str, str]:
    """ "Ada Lovelace" and "Lovelace, Ada" -> ("Ada", "Lovelace")."""
    if "," in full:
        last, _, first = full.partition(",")
        first, last = first.strip(), last.strip()
    else:
        first, _, last = full.rpartition(" ")
        if not first:
            raise BadValue(f"'{full}' needs a first and a last name")
    if not first or not last:
        raise BadValue(f"'{full}' needs a first and a last name")
    return first, last


def cell_text(value: Any) -> str:
    """A JSON value as a cell: lists joined with `; `, booleans and numbers as written."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(cell_text(v) for v in value)
    return str(value)
