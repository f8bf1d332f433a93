"""Duplicates: finding likely duplicate contacts or organizations, and merging them into one record.

Finding compares keys, never every pair: exact keys (an email, a phone's last 9 digits, a domain, a normalised
name) group records in one pass over the workspace, and names a typo apart meet on a key too (the name with one
letter left out), so only those pairs are compared.
Duplicates of one record are looked up through the search index instead, without reading the workspace.

A merge is one transaction of ordinary writes: every record that points at a duplicate (a reference field, a
link from either side, a note's record_id, a custom field of type contact/organization) is updated to point at
the primary, the primary takes the merged values, and the duplicates go to the trash. Revisions, change events,
the search index and webhooks follow from those writes. What points at an entity is derived from the entity
declarations, so a new relation is merged without touching this module."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import combinations
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, create_model
from sqlalchemy import JSON, Connection, Table, Text, and_, cast, delete, insert, not_, or_, select, update

from mcp_crm.entities import ENTITIES, Entity, Kind, Link
from mcp_crm.entities.custom import TYPES, all_definitions, definitions
from mcp_crm.entities.models import update_model_for
from mcp_crm.errors import CrmError, unknown
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.records import (
    fetch_rows,
    not_found,
    rows_by_id,
    table_of,
    title_of,
    to_output,
    with_links,
    without_removed_fields,
)
from mcp_crm.operations.trash import trash_records
from mcp_crm.operations.writes import update_records
from mcp_crm.search import text_condition
from mcp_crm.search.match import in_fields, matched, query_text, with_near_words
from mcp_crm.search.terms import digits_of, fuzzable, parse, words
from mcp_crm.store.search_tables import DOCUMENTS
from mcp_crm.store.tables import TRASH

Prefer = Literal["primary", "newest"]

MERGEABLE = ("contacts", "organizations")
MAX_DUPLICATES = 20
SIMILAR = 0.88  # the ratio (as difflib's) from which two names a typo apart count as the same name
MAX_HOLDERS = 50  # names sharing a variant that are compared with each other (beyond: a very common variant)
MIN_FUZZY = 5  # characters a name needs before it is compared by similarity (short ones would match anything)
PHONE_DIGITS = 9  # phones compare by their last 9 digits: "+49 30 1234567" is "030 1234567"
MIN_PHONE = 6
CANDIDATES = 200  # records looked at per key when finding the duplicates of one record
SHOWN_RECORDS = 50
SHOWN_REASONS = 20

NOT_DIGIT = re.compile(r"\D")
PHONE_PUNCTUATION = str.maketrans("", "", " ()./-+")

# trailing words of an organization's name that say what kind of company it is, not which one
LEGAL_FORMS = frozenset(
    {
        *("inc", "incorporated", "corp", "corporation", "co", "company", "cos", "llc", "llp", "lp", "ltd", "limited"),
        *("plc", "gmbh", "mbh", "ag", "kg", "kgaa", "ohg", "ug", "ev", "sa", "sas", "sarl", "sl", "slu", "srl", "spa"),
        *("bv", "nv", "ab", "as", "asa", "oy", "oyj", "aps", "pty", "pte", "kk", "se", "sro", "zoo"),
    }
)


# ------------------------------------------------------------------------------------------------- keys


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def email_key(value: str) -> str:
    return value.strip().casefold()


def phone_key(value: str) -> str | None:
    digits = value.translate(PHONE_PUNCTUATION)
    if not digits.isdigit():
        digits = NOT_DIGIT.sub("", value)
    if len(digits) < MIN_PHONE:
        return None
    return digits[-PHONE_DIGITS:]


def domain_key(domain: str | None, website: str | None = None) -> str | None:
    host = domain or (urlsplit(website).hostname if website else None)
    if not host:
        return None
    host = host.strip().casefold().rstrip(".")
    return host.removeprefix("www.") or None


def name_key(text: str, legal_forms: bool = False) -> str:
    """Case, accents, punctuation and word order left out (and legal forms: "ACME, Inc." is "acme")."""
    tokens = words(text.replace(".", ""))  # "S.A." is "sa"
    if legal_forms:
        while len(tokens) > 1 and tokens[-1] in LEGAL_FORMS:
            tokens.pop()
    return " ".join(sorted(tokens))


VALUE = re.compile(r'"value"\s*:\s*"([^"\\]*)"')


def entry_values(raw: Any) -> list[str]:
    """The values of a list of emails or phones, decoded or as stored JSON text. Scans read the text: the values
    are found by a pattern, four times faster than decoding it (text with an escaped character is decoded)."""
    if not raw:
        return []
    if isinstance(raw, str):
        if "\\" not in raw:
            return VALUE.findall(raw)
        raw = json.loads(raw)
    return [entry["value"] for entry in raw]


@dataclass(frozen=True)
class Profile:
    """How records of one entity are compared and shown."""

    matches: tuple[str, ...]  # the reasons it can match by
    compared: tuple[str, ...]  # the columns its keys and name are made of
    shown: tuple[str, ...]  # the columns a group shows beside id, name and updated_at
    keys: Callable[[dict[str, Any]], list[tuple[str, str]]]  # (reason, key) exact keys of a row
    name: Callable[[dict[str, Any]], str]
    search: dict[str, tuple[str, ...]]  # reason -> the fields the search index finds its key in


def _contact_keys(row: dict[str, Any]) -> list[tuple[str, str]]:
    keys = [("email", email_key(value)) for value in entry_values(row["emails"])]
    keys += [("phone", key) for value in entry_values(row["phones"]) if (key := phone_key(value))]
    return keys


def _organization_keys(row: dict[str, Any]) -> list[tuple[str, str]]:
    keys = []
    if domain := domain_key(row["domain"], row["website"]):
        keys.append(("domain", domain))
    if row["phone"] and (phone := phone_key(row["phone"])):
        keys.append(("phone", phone))
    return keys


PROFILES = {
    "contacts": Profile(
        matches=("email", "phone", "name"),
        compared=("first_name", "last_name", "emails", "phones"),
        shown=("emails", "phones"),
        keys=_contact_keys,
        name=lambda row: name_key(f"{row['first_name']} {row['last_name']}"),
        search={"email": ("emails",), "phone": ("phones",), "name": ("first_name", "last_name")},
    ),
    "organizations": Profile(
        matches=("domain", "phone", "name"),
        compared=("name", "domain", "website", "phone"),
        shown=("domain", "website", "phone"),
        keys=_organization_keys,
        name=lambda row: name_key(row["name"], legal_forms=True),
        search={"domain": ("domain", "website"), "phone": ("phone",), "name": ("name",)},
    ),
}


def one_typo(a: str, b: str) -> bool:
    """Whether two different strings are a typo apart: a letter left out or added, one changed, or two
    neighbours swapped (as the search index's typo matching counts them)."""
    if len(a) == len(b):
        differ = [k for k in range(len(a)) if a[k] != b[k]]
        return len(differ) == 1 or (
            len(differ) == 2
            and differ[1] == differ[0] + 1
            and a[differ[0]] == b[differ[1]]
            and a[differ[1]] == b[differ[0]]
        )
    shorter, longer = sorted((a, b), key=len)
    return len(longer) == len(shorter) + 1 and any(longer[:k] + longer[k + 1 :] == shorter for k in range(len(longer)))


def _typo_ratio(a: str, b: str) -> float:
    """difflib's ratio, 2 x (letters in common, in order) / (letters in both), of two names without spaces a typo
    apart: the shorter one is common to both when the lengths differ, all letters but one otherwise."""
    common = min(len(a), len(b)) if len(a) != len(b) else len(a) - 1
    return round(2 * common / (len(a) + len(b)), 3)


def name_similarity(a: str, b: str) -> float | None:
    """1.0 for the same normalised name; for two names a typo apart (spaces aside), their ratio when it is at
    least SIMILAR; else None. What similar_names finds, for one pair."""
    compact_a, compact_b = a.replace(" ", ""), b.replace(" ", "")
    if compact_a == compact_b:
        return 1.0
    if min(len(compact_a), len(compact_b)) < MIN_FUZZY or not one_typo(compact_a, compact_b):
        return None
    ratio = _typo_ratio(compact_a, compact_b)
    return ratio if ratio >= SIMILAR else None


def similar_names(names: list[str]) -> Iterator[tuple[str, str, float]]:
    """(a, b, ratio) for the names a typo apart (spaces aside) whose ratio is at least SIMILAR, in time linear in
    the number of names, where comparing every pair is quadratic. Two names a typo apart share a variant: the
    name itself or the name with one letter left out. Variants of one length V (the names of length V, and the
    names of length V + 1 with a letter left out) are counted in C; only names sharing one are compared."""
    by_length: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for i, name in enumerate(names):
        compact = name.replace(" ", "")
        if len(compact) >= MIN_FUZZY:
            by_length[len(compact)].append((i, compact))
    pairs: set[tuple[int, int]] = set()
    for length in sorted(by_length.keys() | {n - 1 for n in by_length}):
        names_of, longer = by_length.get(length, []), by_length.get(length + 1, [])
        variants = [c for _, c in names_of] + [c[:k] + c[k + 1 :] for _, c in longer for k in range(length + 1)]
        owners = [i for i, _ in names_of] + [i for i, _ in longer for _ in range(length + 1)]
        shared = {variant for variant, count in Counter(variants).items() if count > 1}
        holders: dict[str, list[int]] = defaultdict(list)
        for variant, i in [(v, i) for v, i in zip(variants, owners, strict=True) if v in shared]:
            if i not in holders[variant]:  # "anna" is "ana" twice
                holders[variant].append(i)
        for held in holders.values():
            pairs.update((min(pair), max(pair)) for pair in combinations(held[:MAX_HOLDERS], 2))
    for i, j in sorted(pairs):
        a, b = sorted((names[i], names[j]))
        if (ratio := name_similarity(a, b)) is not None:
            yield a, b, ratio


# -------------------------------------------------------------------------------------------- finding


def _profile(entity: Entity) -> Profile:
    if entity.name not in PROFILES:
        raise unknown("entity", entity.name, MERGEABLE)
    return PROFILES[entity.name]


def _compared_rows(conn: Connection, actor: Actor, entity: Entity, profile: Profile) -> list[dict[str, Any]]:
    """Id and compared columns of every record of the workspace. Lists of emails or phones come as their JSON
    text (cast in SQL: asyncpg would decode the JSON itself), which entry_values reads without decoding."""
    table = table_of(entity)
    columns = [
        cast(table.c[name], Text).label(name) if isinstance(table.c[name].type, JSON) else table.c[name]
        for name in profile.compared
    ]
    query = select(table.c.id, *columns).where(table.c.workspace_id == actor.workspace_id)
    names = ("id", *profile.compared)
    return [dict(zip(names, row, strict=True)) for row in conn.execute(query)]


def _shown_records(
    conn: Connection, actor: Actor, entity: Entity, profile: Profile, ids: set[str]
) -> dict[str, dict[str, Any]]:
    """{id: {id, name, shown columns, updated_at}} for the records a page shows."""
    table = table_of(entity)
    records = {}
    for rid, row in rows_by_id(conn, actor, entity, sorted(ids)).items():
        shown = {c: entry_values(row[c]) if isinstance(table.c[c].type, JSON) else row[c] for c in profile.shown}
        records[rid] = {"id": rid, "name": title_of(entity, row), **shown, "updated_at": row["updated_at"]}
    return records


Reason = tuple[str, str, list[int], float]  # (match, value, row indexes, similarity)


class _Groups:
    """Union-find over row indexes, with the reasons that joined them."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))
        self.reasons: list[Reason] = []

    def root(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, match: str, value: str, members: list[int], score: float = 1.0) -> None:
        first = self.root(members[0])
        for other in members[1:]:
            self.parent[self.root(other)] = first
        self.reasons.append((match, value, members, score))


def find_duplicates(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    record_id: str | None = None,
    by: list[str] | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> dict[str, Any]:
    """{groups: [{records, reasons, size}], has_more, next_cursor, total}: groups of likely duplicates, oldest
    first (by their oldest record), or the one group of `record_id` and the records that match it."""
    profile = _profile(entity)
    for reason in by or ():
        if reason not in profile.matches:
            raise unknown("match", reason, profile.matches)
    wanted = set(by or profile.matches)
    if record_id is not None:
        groups = _duplicates_of(conn, actor, entity, profile, record_id, wanted)
        return {"groups": groups, "has_more": False, "next_cursor": None, "total": len(groups)}
    rows = _compared_rows(conn, actor, entity, profile)
    found = _group(rows, profile, wanted)
    total = len(found)
    if cursor is not None:
        found = [g for g in found if rows[g[0][0]]["id"] > cursor]
    page = found[:limit]
    records = _shown_records(
        conn, actor, entity, profile, {rows[i]["id"] for members, _ in page for i in members[:SHOWN_RECORDS]}
    )
    shown = [_shown_group(records, rows, members, reasons) for members, reasons in page]
    has_more = len(found) > limit
    return {
        "groups": shown,
        "has_more": has_more,
        "next_cursor": shown[-1]["records"][0]["id"] if has_more else None,
        "total": total,
    }


def _group(rows: list[dict[str, Any]], profile: Profile, wanted: set[str]) -> list[tuple[list[int], list[Reason]]]:
    """(row indexes sorted by id, reasons) of each group of two or more, oldest group first."""
    groups = _Groups(len(rows))
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    by_name: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        for reason, key in profile.keys(row):
            members = by_key[(reason, key)]
            if reason in wanted and (not members or members[-1] != i):  # a record with an email twice is one
                members.append(i)
        if "name" in wanted and (name := profile.name(row)):
            by_name[name].append(i)
    for (reason, key), members in by_key.items():
        if len(members) > 1:
            groups.join(reason, key, members)
    for name, members in by_name.items():
        if len(members) > 1:
            groups.join("name", name, members)
    if "name" in wanted:
        for a, b, ratio in similar_names(list(by_name)):
            groups.join("name", f"{a} ~ {b}", [*by_name[a], *by_name[b]], ratio)
    members_of: dict[int, list[int]] = defaultdict(list)
    for i in {i for _, _, members, _ in groups.reasons for i in members}:
        members_of[groups.root(i)].append(i)
    reasons_of: dict[int, list[Reason]] = defaultdict(list)
    for reason in groups.reasons:
        reasons_of[groups.root(reason[2][0])].append(reason)
    found = [
        (sorted(members, key=lambda i: rows[i]["id"]), reasons_of[root])
        for root, members in members_of.items()
        if len(members) > 1
    ]
    return sorted(found, key=lambda group: rows[group[0][0]]["id"])


def _shown_group(
    records: dict[str, dict[str, Any]], rows: list[dict[str, Any]], members: list[int], reasons: list[Reason]
) -> dict[str, Any]:
    return {
        "records": [records[rows[i]["id"]] for i in members[:SHOWN_RECORDS]],
        "reasons": [
            {
                "match": match,
                "value": value,
                "ids": sorted(rows[i]["id"] for i in group)[:SHOWN_RECORDS],
                "similarity": score,
            }
            for match, value, group, score in reasons[:SHOWN_REASONS]
        ],
        "size": len(members),
    }


def _duplicates_of(
    conn: Connection, actor: Actor, entity: Entity, profile: Profile, record_id: str, wanted: set[str]
) -> list[dict[str, Any]]:
    """The record and the records that match it, found through the search index (no scan of the workspace)."""
    own = rows_by_id(conn, actor, entity, [record_id]).get(record_id)
    if own is None:
        raise not_found(entity, [record_id])
    table = table_of(entity)
    keys = [(reason, key) for reason, key in profile.keys(own) if reason in wanted]
    candidates: set[str] = set()
    for reason, key in keys:
        condition = text_condition(conn, actor.workspace_id, entity, table, key, list(profile.search[reason]))
        candidates.update(conn.execute(select(table.c.id).where(condition).limit(CANDIDATES)).scalars())
    name = profile.name(own)
    if "name" in wanted and name:
        candidates.update(_named_like(conn, actor, entity, profile, name))
    candidates.discard(record_id)
    if not candidates:
        return []
    rows = [own, *rows_by_id(conn, actor, entity, sorted(candidates)).values()]
    reasons: list[Reason] = []
    for reason, key in dict.fromkeys(keys):
        members = [i for i, row in enumerate(rows) if (reason, key) in profile.keys(row)]
        if len(members) > 1:
            reasons.append((reason, key, members, 1.0))
    if "name" in wanted and name:
        names: dict[str, list[int]] = defaultdict(list)
        for i, row in enumerate(rows[1:], start=1):
            names[profile.name(row)].append(i)
        for other, members in names.items():
            score = name_similarity(name, other)
            if score is not None:
                reasons.append(
                    ("name", name if score == 1.0 else " ~ ".join(sorted((name, other))), [0, *members], score)
                )
    matched_rows = sorted({i for _, _, members, _ in reasons for i in members}, key=lambda i: rows[i]["id"])
    if len(matched_rows) < 2:
        return []
    records = _shown_records(conn, actor, entity, profile, {rows[i]["id"] for i in matched_rows[:SHOWN_RECORDS]})
    return [_shown_group(records, rows, matched_rows, reasons)]


def _named_like(conn: Connection, actor: Actor, entity: Entity, profile: Profile, name: str) -> set[str]:
    """Records holding every word of the name in its name fields, each word as it is or a typo away. The index
    looks up typos of words of four letters or more, so a shorter word is also left out once ("ken leywoodski"
    finds "Ben Leywoodski" by "leywoodski")."""
    tokens = name.split()
    wordings = [tokens] + [tokens[:i] + tokens[i + 1 :] for i, word in enumerate(tokens) if not fuzzable(word)]
    found: set[str] = set()
    for wording in wordings:
        if not wording:
            continue
        terms = parse(" ".join(wording))
        terms = with_near_words(conn, actor.workspace_id, terms) or terms
        query = (
            matched(conn, query_text(conn.dialect.name, terms, "all"), DOCUMENTS.c.record_id)
            .where(DOCUMENTS.c.workspace_id == actor.workspace_id, DOCUMENTS.c.entity == entity.name)
            .where(in_fields(terms, "all", profile.search["name"]))
            .limit(CANDIDATES)
        )
        found.update(conn.execute(query).scalars())
    return found


# --------------------------------------------------------------------------------------------- merging


Changes = dict[str, dict[str, dict[str, Any]]]  # {entity: {record id: {field: new value}}}


def merge_records(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    primary_id: str,
    duplicate_ids: list[str],
    prefer: Prefer = "primary",
) -> dict[str, Any]:
    """{record, merged_ids, fields, moved}: the primary as it is now, the duplicates (now in the trash), the
    choice made for each field the records disagreed on or the primary lacked, and the related records moved."""
    _profile(entity)
    duplicates = list(dict.fromkeys(duplicate_ids))
    if not duplicates:
        raise CrmError("duplicate_ids needs at least one id. Nothing was changed.")
    if len(duplicates) > MAX_DUPLICATES:
        raise CrmError(
            f"At most {MAX_DUPLICATES} duplicates per merge ({len(duplicates)} given); merge them in batches. "
            "Nothing was changed."
        )
    if primary_id in duplicates:
        raise CrmError(
            f"{primary_id} is the primary and also in duplicate_ids; the primary is the record the others merge "
            "into, so leave it out of duplicate_ids. Nothing was changed."
        )
    ids = [primary_id, *duplicates]
    # a record of another workspace is missing here, and named as such
    stored = fetch_rows(conn, actor, entity, ids, lock=True)
    rows = with_links(conn, entity, [stored[i] for i in ids])
    records = [to_output(entity, row) for row in rows]
    # the order values are taken in: the primary first, or the most recently updated first
    if prefer == "primary":
        ranked = records
    else:
        ranked = sorted(records, key=lambda r: stored[r["id"]]["updated_at"], reverse=True)

    changes: Changes = defaultdict(lambda: defaultdict(dict))
    fields = _merged_fields(conn, actor, entity, records, ranked, changes[entity.name][primary_id])
    moved: list[dict[str, Any]] = []
    for owner, link in _links_naming(entity):
        _move_links(conn, entity, owner, link, ranked, duplicates, changes, moved)
    for other, name in _references_to(entity):
        _move_references(conn, actor, entity, other, name, ids, changes, moved)
    _move_custom_references(conn, actor, entity, ids, changes, moved)
    _move_members(conn, entity, primary_id, duplicates, moved)

    # the related records first, then the duplicates (now pointing at nothing) go, then the primary takes
    # their values: unique values a duplicate held are free by then
    for name, edits in changes.items():
        other = ENTITIES[name]
        items = sorted((rid, values) for rid, values in edits.items() if rid not in ids)
        _update(conn, actor, other, items, follow_up=True)
    own_links = [(rid, changes[entity.name][rid]) for rid in duplicates if changes[entity.name].get(rid)]
    _update(conn, actor, entity, own_links, follow_up=True)
    _move_trashed_references(conn, actor, entity, ids, moved)
    trash_records(conn, actor, entity, duplicates, bulk=True)
    primary_changes = changes[entity.name][primary_id]
    if primary_changes:
        (record,) = _update(conn, actor, entity, [(primary_id, primary_changes)], follow_up=False)
    else:  # read again: links stored on the other side (an organization's contacts) may have changed
        (row,) = with_links(conn, entity, [fetch_rows(conn, actor, entity, [primary_id])[primary_id]])
        without_removed_fields(conn, entity, [row])
        record = to_output(entity, row)
    return {"record": record, "merged_ids": duplicates, "fields": fields, "moved": moved}


def _update(
    conn: Connection, actor: Actor, entity: Entity, items: list[tuple[str, dict[str, Any]]], follow_up: bool
) -> list[dict[str, Any]]:
    if not items:
        return []
    edits = [(rid, _changes_model(entity, frozenset(values)).model_validate(values)) for rid, values in items]
    return update_records(conn, actor, entity, edits, bulk=len(edits) > 1, follow_up=follow_up)


@cache
def _changes_model(entity: Entity, names: frozenset[str]) -> type[BaseModel]:
    """The entity's update model, with the read-only fields a merge sets (a contact's email_opted_out_at)."""
    model = update_model_for(entity)
    read_only = sorted(n for n in names if n not in model.model_fields and n in entity.fields)
    if not read_only:
        return model
    fields: dict[str, Any] = {n: (Any, None) for n in read_only}
    return create_model(f"{model.__name__}Merged", __base__=model, **fields)


def _merged_fields(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    records: list[dict[str, Any]],
    ranked: list[dict[str, Any]],
    primary_changes: dict[str, Any],
) -> list[dict[str, Any]]:
    """Fills `primary_changes` with the merged values of the primary's own fields; returns the report. A
    reference to one of the merged records is left out (it would point at the primary itself or at the trash)."""
    primary, merged_ids = records[0], {r["id"] for r in records}
    opted_out = "email_opt_out" in entity.fields and any(r["email_opt_out"] for r in records)
    report = _merged_opt_out(ranked, primary, primary_changes) if opted_out else []
    for name, spec in entity.writable.items():
        if spec.link is not None:
            continue  # links move with the related records
        if opted_out and name in OPT_OUT:
            continue  # an opt-out was merged above
        if spec.kind is Kind.custom:
            continue
        self_reference = spec.kind is Kind.relation and spec.target == entity.name
        values = _candidates([(r["id"], r[name]) for r in ranked], merged_ids if self_reference else set())
        if spec.kind in (Kind.tags, Kind.objects):
            merged = _union([v for _, v in values], spec.kind)
            if merged != (primary[name] or []):
                primary_changes[name] = merged
                report.append(_choice(name, merged, None, values, conflict=False))
            continue
        chosen = _pick(values)
        if chosen is None:
            if self_reference and primary[name] in merged_ids - {primary["id"]}:
                primary_changes[name] = None
                report.append(_cleared(name, primary["id"], primary[name]))
            continue
        source, value = chosen
        conflict = len({repr(v) for _, v in values}) > 1
        if value != primary[name]:
            primary_changes[name] = value
        if conflict or value != primary[name]:
            report.append(_choice(name, value, source, values, conflict))
    if "custom" in entity.writable:
        report += _merged_custom(conn, actor, entity, records, ranked, primary_changes)
    return report


OPT_OUT = ("email_opt_out", "email_opt_out_reason", "email_opted_out_at")


def _merged_opt_out(
    ranked: list[dict[str, Any]], primary: dict[str, Any], primary_changes: dict[str, Any]
) -> list[dict[str, Any]]:
    """An opt-out is never lost (a compliance matter): when any of the records opted out of email, the merged
    record has too, whatever the ranking, with the earliest opt-out's time and reason. Returns the report of
    email_opt_out and email_opt_out_reason."""
    opted = [r for r in ranked if r["email_opt_out"]]
    never = datetime.max.replace(tzinfo=UTC)
    earliest = min(opted, key=lambda r: _aware(r["email_opted_out_at"]) or never)
    report = []
    for name in OPT_OUT:
        value = earliest[name]
        if name == "email_opted_out_at":
            value = _aware(value)
            if value != _aware(primary[name]):
                primary_changes[name] = value  # read-only: _update lets a merge set it
            continue
        if value != primary[name]:
            primary_changes[name] = value
        values = [(r["id"], r[name]) for r in ranked]
        if name == "email_opt_out_reason":
            values = [(rid, v) for rid, v in values if not _empty(v)]
        conflict = len({repr(v) for _, v in values}) > 1
        if conflict or value != primary[name]:
            report.append(_choice(name, value, earliest["id"], values, conflict))
    return report


def _aware(value: datetime | str | None) -> datetime | None:
    """A time as a record shows it (ISO text) or as stored, in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _candidates(values: list[tuple[str, Any]], left_out: set[str]) -> list[tuple[str, Any]]:
    """The (record id, value) pairs with a value, but for values in `left_out` (ids: other values are lists)."""
    return [(rid, v) for rid, v in values if not _empty(v) and not (left_out and v in left_out)]


def _cleared(field: str, primary_id: str, held: str) -> dict[str, Any]:
    """The report of a reference the primary held to one of the duplicates, now cleared: it would point at the
    trash, and no other record offered a value."""
    return _choice(field, None, None, [(primary_id, held)], conflict=False)


def _pick(values: list[tuple[str, Any]]) -> tuple[str, Any] | None:
    """The (record id, value) kept: the first non-empty one in rank order (the primary's first, or the most
    recently updated record's)."""
    return values[0] if values else None


def _choice(
    field: str, chosen: Any, source: str | None, values: list[tuple[str, Any]], conflict: bool
) -> dict[str, Any]:
    return {
        "field": field,
        "chosen": chosen,
        "from_id": source,
        "values": [{"id": rid, "value": value} for rid, value in values],
        "conflict": conflict,
    }


def _union(lists: list[list[Any]], kind: Kind) -> list[Any]:
    """Tags without repeats (any case); emails and phones without repeats (phones compared as when finding
    duplicates), the primary flag kept only on the entries of the first list."""
    merged: list[Any] = []
    seen: set[str] = set()
    for position, items in enumerate(lists):
        for item in items:
            if kind is Kind.tags:
                key = str(item).casefold()
            else:
                text = str(item.get("value", item))
                key = (phone_key(text) if digits_of(text) else None) or text.strip().casefold()
            if key in seen:
                continue
            seen.add(key)
            if kind is Kind.objects and position > 0 and item.get("primary"):
                item = item | {"primary": False}
            merged.append(item)
    return merged


def _merged_custom(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    records: list[dict[str, Any]],
    ranked: list[dict[str, Any]],
    primary_changes: dict[str, Any],
) -> list[dict[str, Any]]:
    """Custom values merged like the columns: option lists unioned, one value chosen for the rest. A reference
    to one of the merged records is left out (it would point at the primary itself or at the trash)."""
    merged_ids = {r["id"] for r in records}
    primary, report, changed = records[0], [], {}
    for key, definition in definitions(conn, actor.workspace_id, entity).items():
        self_reference = TYPES[definition["type"]].target == entity.name
        held = [(r["id"], (r["custom"] or {}).get(key)) for r in ranked]
        values = _candidates(held, merged_ids if self_reference else set())
        current = (primary["custom"] or {}).get(key)
        if definition["type"] == "multiple_options":
            merged = _union([v for _, v in values], Kind.tags)
            if merged != (current or []):
                changed[key] = merged
                report.append(_choice(f"custom.{key}", merged, None, values, conflict=False))
            continue
        chosen = _pick(values)
        if chosen is None:
            if self_reference and current in merged_ids - {primary["id"]}:
                changed[key] = None
                report.append(_cleared(f"custom.{key}", primary["id"], current))
            continue
        source, value = chosen
        conflict = len({repr(v) for _, v in values}) > 1
        if value != current:
            changed[key] = value
        if conflict or value != current:
            report.append(_choice(f"custom.{key}", value, source, values, conflict))
    if changed:
        primary_changes["custom"] = changed
    return report


# ------------------------------------------------------------------------------------- what points at them


def _links_naming(entity: Entity) -> list[tuple[Entity, Link]]:
    """For each link table that joins the entity to another: the declaration to rewrite it through. A table
    declared from both sides (contact_organizations) is written from the side whose input carries the most of
    its attributes (a contact writes a membership's is_primary, an organization cannot), else from the entity."""
    sides: dict[Any, list[tuple[Entity, Link]]] = defaultdict(list)
    for owner in ENTITIES.values():
        for link in owner.links:
            if owner is entity or link.target == entity.name:
                sides[link.table].append((owner, link))

    def carried(side: tuple[Entity, Link]) -> tuple[int, bool]:
        owner, link = side
        attributes = set(link.attributes.model_fields) if link.attributes else set()
        return len(attributes & set(link.attribute_defaults)), owner is entity

    return [max(declared, key=carried) for declared in sides.values()]


def _entry(link: Link, row: dict[str, Any], target: str) -> Any:
    """A link row as a write sends it: an id, or {target id, attributes the input takes}."""
    if link.attributes is None:
        return target
    names = set(link.attributes.model_fields) & set(link.attribute_defaults)
    return {link.target_column: target} | {n: row[n] for n in names}


def _combined(link: Link, entries: list[Any]) -> list[Any]:
    """Entries for the same target become one: the first one's attributes, empty ones filled from the others
    (a flag is set when any of them sets it)."""
    if link.attributes is None:
        return list(dict.fromkeys(entries))
    by_target: dict[str, dict[str, Any]] = {}
    for entry in entries:
        kept = by_target.setdefault(entry[link.target_column], dict(entry))
        for name, value in entry.items():
            if isinstance(value, bool):
                kept[name] = kept[name] or value
            elif _empty(kept[name]) and not _empty(value):
                kept[name] = value
    return list(by_target.values())


def _one_flag_each(link: Link, lists: list[list[Any]], merged: list[dict[str, Any]]) -> None:
    """A flag each list set on at most one entry (a contact's primary organization) stays on one: the first."""
    if link.attributes is None:
        return
    for name, default in link.attribute_defaults.items():
        if not isinstance(default, bool):
            continue
        if all(sum(bool(e.get(name)) for e in entries) <= 1 for entries in lists):
            flagged = [e for e in merged if e.get(name)]
            for entry in flagged[1:]:
                entry[name] = False


def _move_links(
    conn: Connection,
    entity: Entity,
    owner: Entity,
    link: Link,
    ranked: list[dict[str, Any]],
    duplicates: list[str],
    changes: Changes,
    moved: list[dict[str, Any]],
) -> None:
    table = link.table.__table__  # type: ignore[attr-defined]
    primary_id = next(r["id"] for r in ranked if r["id"] not in duplicates)
    if owner is entity:
        # the merged records hold the link: the primary gets all their entries, the duplicates none
        order = [r["id"] for r in ranked]
        rows = conn.execute(select(table).where(table.c[link.own_column].in_(order))).mappings().all()
        lists: dict[str, list[Any]] = {rid: [] for rid in order}
        for row in rows:
            lists[row[link.own_column]].append(_entry(link, dict(row), row[link.target_column]))
        merged = _combined(link, [e for rid in order for e in lists[rid]])
        _one_flag_each(link, list(lists.values()), merged)
        before = {(e[link.target_column] if isinstance(e, dict) else e) for e in lists[primary_id]}
        gained = [t for e in merged if (t := e[link.target_column] if isinstance(e, dict) else e) not in before]
        if gained or any(lists[d] for d in duplicates):
            changes[entity.name][primary_id][link.input] = merged
            for rid in duplicates:
                if lists[rid]:
                    changes[entity.name][rid][link.input] = []
        if gained:
            moved.append({"entity": link.target, "through": f"{owner.name}.{link.input}", "ids": gained})
        return
    # the related records hold the link: each one linked to a duplicate is linked to the primary instead
    linked = select(table.c[link.own_column]).where(table.c[link.target_column].in_(duplicates)).distinct()
    owners = sorted(conn.execute(linked).scalars())
    if not owners:
        return
    rank = {r["id"]: i for i, r in enumerate(ranked)}
    rows = conn.execute(select(table).where(table.c[link.own_column].in_(owners))).mappings().all()
    entries: dict[str, list[tuple[tuple[int, int], Any]]] = defaultdict(list)
    for position, row in enumerate(rows):
        target = row[link.target_column]
        # entries naming a merged record come in rank order, after the owner's other links in stored order
        order = rank.get(target, -1)
        new_target = primary_id if target in duplicates else target
        entries[row[link.own_column]].append(((order, position), _entry(link, dict(row), new_target)))
    for rid in owners:
        listed = [e for _, e in sorted(entries[rid], key=lambda pair: pair[0])]
        changes[owner.name][rid][link.input] = _combined(link, listed)
    moved.append({"entity": owner.name, "through": f"{owner.name}.{link.input}", "ids": owners})


def _member_columns(entity: Entity) -> list[tuple[Entity, Table, str]]:
    """(owner, member table, column) for each column of a member table (a list's contacts) holding this entity's ids."""
    target = table_of(entity)
    return [
        (owner, model.__table__, column.name)  # type: ignore[attr-defined]
        for owner in ENTITIES.values()
        for model in owner.member_tables
        for column in model.__table__.c  # type: ignore[attr-defined]
        if any(fk.column.table is target for fk in column.foreign_keys)
    ]


def _move_members(
    conn: Connection, entity: Entity, primary_id: str, duplicates: list[str], moved: list[dict[str, Any]]
) -> None:
    """Member rows naming a duplicate name the primary instead (it joins the duplicates' lists); a row the primary
    has already stays as it is. The duplicates keep none, as with links."""
    for owner, table, column in _member_columns(entity):
        others = [c.name for c in table.primary_key.columns if c.name != column]
        held = {
            tuple(r) for r in conn.execute(select(*(table.c[o] for o in others)).where(table.c[column] == primary_id))
        }
        rows = conn.execute(select(table).where(table.c[column].in_(duplicates)).order_by(*table.primary_key.columns))
        gained: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in rows.mappings():
            key = tuple(row[o] for o in others)
            if key not in held and key not in gained:
                gained[key] = dict(row) | {column: primary_id}
        conn.execute(delete(table).where(table.c[column].in_(duplicates)))
        if gained:
            conn.execute(insert(table), list(gained.values()))
            owner_ids = sorted({row[others[0]] for row in gained.values()})
            moved.append({"entity": owner.name, "through": f"{owner.name}.{table.name}", "ids": owner_ids})


def _references_to(entity: Entity) -> list[tuple[Entity, str]]:
    """(entity, field) of every reference to a record of this entity: a task's contact_id, and a note's
    record_id (an entity with record_type naming this entity and a record_id points at any record)."""
    found = []
    for other in ENTITIES.values():
        for name, spec in other.fields.items():
            if spec.kind is Kind.relation and spec.target == entity.name and not spec.read_only:
                found.append((other, name))
        record_type = other.fields.get("record_type")
        if record_type and record_type.enum and entity.name in record_type.enum and "record_id" in other.fields:
            found.append((other, "record_id"))
    return found


def _move_references(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    other: Entity,
    name: str,
    ids: list[str],
    changes: Changes,
    moved: list[dict[str, Any]],
) -> None:
    primary_id, duplicates = ids[0], ids[1:]
    table = table_of(other)
    query = select(table.c.id).where(table.c.workspace_id == actor.workspace_id, table.c[name].in_(duplicates))
    if name == "record_id":
        query = query.where(table.c.record_type == entity.name)
    referring = sorted(rid for rid in conn.execute(query).scalars() if not (other is entity and rid in ids))
    for rid in referring:
        changes[other.name][rid][name] = primary_id
    if referring:
        moved.append({"entity": other.name, "through": f"{other.name}.{name}", "ids": referring})


def _move_custom_references(
    conn: Connection, actor: Actor, entity: Entity, ids: list[str], changes: Changes, moved: list[dict[str, Any]]
) -> None:
    """Custom fields of type contact or organization that hold a duplicate's id take the primary's."""
    primary_id, duplicates = ids[0], ids[1:]
    for definition in all_definitions(conn, actor.workspace_id):
        if TYPES[definition["type"]].target != entity.name:
            continue
        other, key = ENTITIES[definition["entity"]], definition["key"]
        table = table_of(other)
        query = select(table.c.id).where(
            table.c.workspace_id == actor.workspace_id, table.c.custom[key].as_string().in_(duplicates)
        )
        referring = sorted(rid for rid in conn.execute(query).scalars() if not (other is entity and rid in ids))
        for rid in referring:
            custom = changes[other.name][rid].setdefault("custom", {})
            custom[key] = primary_id
        if referring:
            moved.append({"entity": other.name, "through": f"{other.name}.custom.{key}", "ids": referring})


# ------------------------------------------------------------------------------------------ what the trash holds


def _move_trashed_references(
    conn: Connection, actor: Actor, entity: Entity, ids: list[str], moved: list[dict[str, Any]]
) -> None:
    """Trash entries naming a duplicate name the primary instead, so a restore links to it: a trashed record's
    reference (a task's contact_id, a note's record_id, a custom field), the link rows it had (a trashed deal's
    contacts) and the references its delete cleared on a duplicate. The duplicates' own entries, made next, are
    left alone."""
    primary_id, duplicates = ids[0], set(ids[1:])
    naming = [
        cast(column, Text).contains(rid, autoescape=True)
        for column in (TRASH.c.row, TRASH.c.links, TRASH.c.referenced_by)
        for rid in sorted(duplicates)
    ]
    query = select(TRASH).where(
        TRASH.c.workspace_id == actor.workspace_id,
        or_(*naming),
        not_(and_(TRASH.c.entity == entity.name, TRASH.c.record_id.in_(ids))),
    )
    swap = {rid: primary_id for rid in duplicates}
    custom, link_columns = _custom_references(conn, actor, entity), _link_columns(entity)
    rewritten: dict[str, list[str]] = defaultdict(list)
    for entry in conn.execute(query.order_by(TRASH.c.id)).mappings().all():
        values = {
            "row": _trashed_row(entity, entry["entity"], dict(entry["row"]), custom, swap),
            "links": _trashed_links(link_columns, entry["links"], swap),
            "referenced_by": _trashed_referrers(entity, entry["referenced_by"], swap),
        }
        changed = {name: value for name, value in values.items() if value != entry[name]}
        if changed:
            conn.execute(update(TRASH).where(TRASH.c.id == entry["id"]).values(changed))
            rewritten[entry["entity"]].append(entry["record_id"])
    for name, rids in sorted(rewritten.items()):
        moved.append({"entity": name, "through": "trash", "ids": sorted(rids)})


def _custom_references(conn: Connection, actor: Actor, entity: Entity) -> dict[str, list[str]]:
    """{entity: [custom field keys]} of the workspace's custom fields that reference this entity."""
    found: dict[str, list[str]] = defaultdict(list)
    for definition in all_definitions(conn, actor.workspace_id):
        if TYPES[definition["type"]].target == entity.name:
            found[definition["entity"]].append(definition["key"])
    return found


def _trashed_row(
    entity: Entity, owner: str, row: dict[str, Any], custom: dict[str, list[str]], swap: dict[str, str]
) -> dict[str, Any]:
    """A trashed record's row with its references to a duplicate swapped for the primary."""
    for other, name in _references_to(entity):
        if other.name == owner and row.get(name) in swap and (name != "record_id" or row["record_type"] == entity.name):
            row[name] = swap[row[name]]
    values = dict(row.get("custom") or {})
    for key in custom.get(owner, []):
        if isinstance(values.get(key), str) and values[key] in swap:
            values[key] = swap[values[key]]
    if custom.get(owner) and values != (row.get("custom") or {}):
        row["custom"] = values
    return row


def _link_columns(entity: Entity) -> dict[str, tuple[list[str], list[str]]]:
    """{link table: (columns holding ids of this entity, the table's key)}."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for owner in ENTITIES.values():
        for link in owner.links:
            table = link.table.__table__  # type: ignore[attr-defined]
            columns = [link.own_column] if owner is entity else []
            columns += [link.target_column] if link.target == entity.name else []
            if columns:
                held, _ = found.setdefault(table.name, ([], [c.name for c in table.primary_key]))
                held.extend(c for c in columns if c not in held)
    for _, table, column in _member_columns(entity):
        held, _ = found.setdefault(table.name, ([], [c.name for c in table.primary_key]))
        held.append(column)
    return found


def _trashed_links(
    columns: dict[str, tuple[list[str], list[str]]], links: dict[str, list[dict[str, Any]]], swap: dict[str, str]
) -> dict[str, Any]:
    """A trashed record's link rows with a duplicate swapped for the primary (`columns`: as _link_columns); a row
    that becomes one the record already had is dropped (the first one stays), so a restore inserts each link once."""
    result: dict[str, Any] = {}
    for table, rows in links.items():
        if table not in columns:
            result[table] = rows
            continue
        held, key = columns[table]
        kept: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in rows:
            row = row | {c: swap[row[c]] for c in held if row.get(c) in swap}
            kept.setdefault(tuple(row.get(c) for c in key), row)
        result[table] = list(kept.values())
    return result


def _trashed_referrers(entity: Entity, referenced_by: list[list[str]], swap: dict[str, str]) -> list[list[str]]:
    """[entity, field, referring id] cleared when the record was trashed: a duplicate that referred to it is the
    primary now (restoring the record sets the primary's field, if it is still empty)."""
    result: list[list[str]] = []
    for other, name, rid in referenced_by:
        entry = [other, name, swap.get(rid, rid) if other == entity.name else rid]
        if entry not in result:
            result.append(entry)
    return result
