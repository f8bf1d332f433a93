"""What an import works with: its plan, the rows it reads, the items they become, the report it keeps."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mcp_crm.entities import Entity
from mcp_crm.transfer.columns import Mapping

MAX_ROWS = 500  # per import_rows call
CREATABLE = ("organizations", "contacts", "pipelines", "stages")
MATCH_KEYS = {"contacts": ("email", "name"), "organizations": ("domain", "name")}
KEY_TEXT = {("activities", "type"), ("activity_types", "key")}  # typed like keys: "Phone call" -> phone_call
LISTS = ("emails", "phones", "tags", "labels")
LOST_WITHOUT_REASON = "Not recorded before the import"
NOTE_SUBJECT_ORDER = ("deals", "leads", "contacts", "organizations")  # a row naming several: the most specific
PENDING = "0" * 36  # stands for a reference not looked up yet, while a row's own values are checked


@dataclass(frozen=True)
class Plan:
    """What an import does with each row."""

    entity: Entity
    mapping: Mapping
    custom: dict[str, dict[str, Any]]  # the entity's custom fields, by key
    match: str | None = None  # id, email, domain, name or a field: rows naming an existing record update it
    create_missing: bool = False
    day_first: bool = False


@dataclass
class Row:
    line: int  # as the user counts: the header is line 1 of a file
    cells: dict[str, Any]


@dataclass
class Report:
    """What an import did (or, checking, would do)."""

    rows: int = 0
    ok: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    linked: int = 0
    related_created: Counter[str] = field(default_factory=Counter)
    errors_by_reason: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), the first MAX_ERRORS
    bad_rows: int = 0

    MAX_ERRORS = 200

    def add(self, other: Report) -> None:
        for name in ("rows", "ok", "created", "updated", "unchanged", "linked", "bad_rows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.related_created.update(other.related_created)
        self.errors_by_reason.update(other.errors_by_reason)
        self.errors.extend(other.errors[: self.MAX_ERRORS - len(self.errors)])

    def bad(self, line: int, reason: str) -> None:
        self.bad_rows += 1
        self.errors_by_reason[_reason_kind(reason)] += 1
        if len(self.errors) < self.MAX_ERRORS:
            self.errors.append((line, reason))

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ok": self.ok,
            "bad": self.bad_rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "linked": self.linked,
            "related_created": dict(self.related_created),
            "errors_by_reason": dict(self.errors_by_reason.most_common()),
            "errors": [{"line": line, "error": reason} for line, reason in self.errors],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        report = cls(**{k: data[k] for k in ("rows", "ok", "created", "updated", "unchanged", "linked")})
        report.bad_rows = data["bad"]
        report.related_created.update(data["related_created"])
        report.errors_by_reason.update(data["errors_by_reason"])
        report.errors = [(e["line"], e["error"]) for e in data["errors"]]
        return report


def _reason_kind(reason: str) -> str:
    """An error without the values in it, to count errors by reason."""
    return re.sub(r"'[^']*'", "…", reason.split("\n")[0])[:160]


@dataclass
class Planned:
    """What earlier batches of a check created only in rolled-back transactions: the next batches count those
    records as there (a second row for the same email is an update, an organization is created once)."""

    keys: set[Any] = field(default_factory=set)
    related: set[tuple[str, str]] = field(default_factory=set)

    def copy(self) -> Planned:
        return Planned(set(self.keys), set(self.related))

    def reset(self, to: Planned) -> None:
        self.keys, self.related = set(to.keys), set(to.related)


@dataclass
class Item:
    """One record's worth of rows: usually one row, several when rows of a batch match the same record."""

    lines: list[int]
    values: dict[str, Any]
    refs: list[Ref]
    key: Any = None
    record_id: str | None = None  # the record it updates
    planned: bool = False  # updates a record an earlier batch of a check would have created


@dataclass
class Ref:
    """A reference given by name, to look up: where its id goes (field, and index in a list)."""

    field: str
    target: str
    name: str
    index: int | None = None
    column: str = ""


def entry_key(entry: Any) -> Any:
    if isinstance(entry, dict):
        value = entry.get("value") or next((v for k, v in entry.items() if k.endswith("_id")), None)
        return str(value).casefold()
    return str(entry).casefold()


def union(old: list[Any], new: list[Any]) -> list[Any]:
    seen = {entry_key(e) for e in old}
    added = [e for e in new if entry_key(e) not in seen and not seen.add(entry_key(e))]  # type: ignore[func-returns-value]
    if added and old and any(isinstance(e, dict) and e.get("primary") for e in old):
        added = [e | {"primary": False} if isinstance(e, dict) and "primary" in e else e for e in added]
    return old + added
