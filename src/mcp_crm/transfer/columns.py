"""Which field each column of an import fills: matched by name, by label and by the words people use for them,
ignoring case, spacing and punctuation ("E-mail (work)" is `emails:work`), or set by a mapping the user gives.

A column's target is written as a spec, the same text the printed mapping shows and `--map` accepts:

    first_name, job_title, ...           a field of the entity
    name                                 a person's whole name, split into first and last (contacts)
    emails, emails:home, phones:mobile   one more email or phone, with its label
    address, address.city                an address (a whole one goes to street) or one part of it
    owner, organization, stage           a reference by name (users also by email, organizations also by domain,
                                         contacts also by email), `owner_id` by id
    organizations, organization_ids      a many-relation, names or ids separated by `;`
    organizations.role                   a link attribute, aligned with the names or ids
    custom.<key>, custom.<key>.<part>    a custom field (or its label); a part of a monetary, range or address one
    due_at.date, due_at.time             a time given as two columns
    record.deal, record.contact, ...     what a note is about, by name
    id                                   the record's id (for --match id)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mcp_crm.entities import ENTITIES, Entity, Kind
from mcp_crm.entities.custom import TYPES
from mcp_crm.entities.values import Address
from mcp_crm.errors import CrmError, closest
from mcp_crm.search.terms import fold

ADDRESS_PARTS = tuple(Address.model_fields)
EMAIL_LABELS = ("work", "home", "other")
PHONE_LABELS = ("work", "mobile", "home", "other")
LABEL_WORDS = {
    "work": "work",
    "office": "work",
    "business": "work",
    "home": "home",
    "private": "home",
    "personal": "home",
    "mobile": "mobile",
    "cell": "mobile",
    "cellphone": "mobile",
    "other": "other",
}
EMAIL_WORDS = {"email", "e mail", "mail", "email address", "e mail address", "emails"}
PHONE_WORDS = {"phone", "phones", "telephone", "tel", "phone number", "mobile", "cell", "cellphone", "fax"}
ADDRESS_WORDS = {
    "street": "street",
    "street address": "street",
    "address line 1": "street",
    "street house number": "street",
    "city": "city",
    "town": "city",
    "city town village locality": "city",
    "region": "region",
    "state": "region",
    "province": "region",
    "county": "region",
    "state county": "region",
    "postal code": "postal_code",
    "postcode": "postal_code",
    "zip": "postal_code",
    "zip code": "postal_code",
    "zip postal code": "postal_code",
    "country": "country",
    "state province": "region",
    "locality": "city",
}
# words people (and other CRMs' exports) use for a field, by entity; each maps to a spec
ALIASES: dict[str, dict[str, str]] = {
    "contacts": {
        "first": "first_name",
        "firstname": "first_name",
        "given name": "first_name",
        "forename": "first_name",
        "last": "last_name",
        "lastname": "last_name",
        "surname": "last_name",
        "family name": "last_name",
        "full name": "name",
        "person name": "name",
        "contact": "name",
        "contact name": "name",
        "person": "name",
        "title": "job_title",
        "position": "job_title",
        "job": "job_title",
        "role": "job_title",
        "company": "organizations",
        "company name": "organizations",
        "organization": "organizations",
        "organisation": "organizations",
        "organization name": "organizations",
        "account": "organizations",
        "account name": "organizations",
        "employer": "organizations",
        "date of birth": "birthday",
        "dob": "birthday",
        "birth date": "birthday",
        "note": "notes",
        "comments": "notes",
        "description": "notes",
    },
    "organizations": {
        "organization": "name",
        "organisation": "name",
        "company": "name",
        "company name": "name",
        "organization name": "name",
        "account": "name",
        "account name": "name",
        "web": "website",
        "url": "website",
        "homepage": "website",
        "sector": "industry",
        "employees": "employee_count",
        "number of employees": "employee_count",
        "people": "contacts",
        "contact": "contacts",
        "note": "notes",
        "comments": "notes",
        "description": "notes",
        "telephone": "phone",
    },
    "deals": {
        "title": "name",
        "deal": "name",
        "deal name": "name",
        "deal title": "name",
        "amount": "value",
        "deal value": "value",
        "value currency": "currency",
        "value amount": "value",
        "close date": "expected_close_date",
        "expected close": "expected_close_date",
        "expected close date": "expected_close_date",
        "won time": "won_at",
        "lost time": "lost_at",
        "contact": "contacts",
        "contact person": "contacts",
        "person": "contacts",
        "company": "organizations",
        "organization": "organizations",
        "organisation": "organizations",
        "account": "organizations",
        "note": "description",
        "notes": "description",
    },
    "leads": {
        "name": "title",
        "lead": "title",
        "amount": "value",
        "contact person": "contact",
        "person": "contact",
        "company": "organization",
        "labels": "labels",
        "label": "labels",
        "tags": "labels",
        "note": "notes",
    },
    "services": {
        "product": "name",
        "product name": "name",
        "price": "amount",
        "unit price": "amount",
        "unit prices": "amount",
        "price amount": "amount",
        "price currency": "currency",
        "product code": "sku",
        "code": "sku",
    },
    "tasks": {
        "task": "name",
        "title": "name",
        "subject": "name",
        "due": "due_at",
        "due date": "due_at.date",
        "due time": "due_at.time",
        "assigned to": "assignee",
        "assigned to user": "assignee",
        "owner": "assignee",
        "contact person": "contact",
        "person": "contact",
        "company": "organization",
        "note": "description",
    },
    "activities": {
        "title": "subject",
        "activity type": "type",
        "due": "due_at",
        "due date": "due_at.date",
        "due time": "due_at.time",
        "duration": "duration_minutes",
        "marked as done time": "done_at",
        "assigned to user": "owner",
        "assigned to": "owner",
        "contact person": "contact",
        "person": "contact",
        "company": "organization",
        "notes": "note",
        "participants": "participants",
    },
    "notes": {
        "content": "body",
        "note": "body",
        "text": "body",
        "deal": "record.deal",
        "person": "record.contact",
        "contact": "record.contact",
        "organization": "record.organization",
        "company": "record.organization",
        "lead": "record.lead",
        "author": "author",
        "user": "author",
    },
}
COMMON_ALIASES = {
    "labels": "tags",
    "label": "tags",
    "categories": "tags",
    "assigned to": "owner",
    "sales rep": "owner",
    "account owner": "owner",
    "record id": "id",
}
NOTE_SUBJECTS = ("contacts", "organizations", "leads", "deals")
# Pipedrive's export (`--from pipedrive`): its own ids and counts, not fields to fill; the parts of an address
# that its whole-address column already holds (as Pipedrive's API names them, "House number of Address", and
# as its export does, "Address - House number"); and the subfield it labels "District", whose key is `locality`
# ("Locality (e.g. city)" in its API reference)
PIPEDRIVE_IGNORED = {
    "id": "Pipedrive's own id",
    "people": "a count in Pipedrive",
    "visible to": "Pipedrive's visibility setting",
}
PIPEDRIVE_ADDRESS_WORDS = {"district": "city"}
PIPEDRIVE_IN_WHOLE_ADDRESS = {
    "street road name",
    "house number",
    "apartment suite",
    "apartment suite no",
    "district sublocality",
    "address value",
    "formatted address",
    "full combined address",
}
# set by the CRM, written as norm() has them
IGNORED = {"created at", "updated at", "revision", "add time", "update time", "created", "updated"}


@dataclass(frozen=True)
class Target:
    """Where a column's values go. `field` is the entity's field (or `id`, `full_name` or `record`); `part` an
    address part, email/phone label, custom key (with `.part`), link attribute, `date`/`time` or the entity a
    note is about; `by_name`: a reference given by name rather than id."""

    spec: str
    field: str
    part: str | None = None
    by_name: bool = False
    target: str | None = None  # the entity a reference points to

    @property
    def many(self) -> bool:
        """Several columns may fill it (emails, phones, tags)."""
        return self.field in ("emails", "phones", "tags", "labels")


@dataclass
class Mapping:
    """Header -> target for the columns that are read; the rest are `ignored` with why."""

    entity: Entity
    columns: dict[str, Target]
    ignored: dict[str, str]
    headers: list[str]

    def rows(self) -> list[tuple[str, str]]:
        """(header, spec or why it is ignored) in column order, as printed for the user to confirm."""
        shown = {h: t.spec for h, t in self.columns.items()} | {h: f"(ignored: {w})" for h, w in self.ignored.items()}
        return [(h, shown[h]) for h in self.headers]


def norm(header: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", fold(header)))


def _references(entity: Entity) -> dict[str, tuple[str, str]]:
    """name-style spec -> (field, target entity) for each single reference (`owner` -> owner_id)."""
    found = {}
    for name, field in entity.writable.items():
        if field.kind is Kind.relation and field.target and name.endswith("_id"):
            found[name.removesuffix("_id")] = (name, field.target)
    return found


def targets(entity: Entity, custom: dict[str, dict[str, Any]]) -> dict[str, Target]:
    """Every spec the entity accepts, with its target."""
    found: dict[str, Target] = {"id": Target("id", "id")}
    for name, field in entity.writable.items():
        if field.kind is Kind.relations and field.link is not None:
            link = field.link
            found[name] = Target(name, name, target=field.target)
            found[link.name] = Target(link.name, name, by_name=True, target=field.target)
            for attribute in link.attribute_defaults if link.attributes else ():
                spec = f"{link.name}.{attribute}"
                found[spec] = Target(spec, name, part=attribute)
        elif field.kind is Kind.custom:
            for key, definition in custom.items():
                kind = TYPES[definition["type"]]
                parts = list(kind.parts or {}) + (list(ADDRESS_PARTS) if definition["type"] == "address" else [])
                if definition["type"] == "monetary":
                    parts.append("currency")
                found[f"custom.{key}"] = Target(f"custom.{key}", "custom", key, target=kind.target)
                for part in parts:
                    spec = f"custom.{key}.{part}"
                    found[spec] = Target(spec, "custom", f"{key}.{part}")
        elif field.kind is Kind.objects and name in ("emails", "phones"):
            found[name] = Target(name, name, part="work")
            for label in EMAIL_LABELS if name == "emails" else PHONE_LABELS:
                found[f"{name}:{label}"] = Target(f"{name}:{label}", name, part=label)
        elif field.kind is Kind.object and field.annotation is Address:
            found[name] = Target(name, name, part="street")
            for part in ADDRESS_PARTS:
                found[f"{name}.{part}"] = Target(f"{name}.{part}", name, part=part)
        elif field.kind is Kind.datetime:
            found[name] = Target(name, name)
            for part in ("date", "time"):
                found[f"{name}.{part}"] = Target(f"{name}.{part}", name, part=part)
        else:
            found[name] = Target(name, name, target=field.target)
    for spec, (name, target) in _references(entity).items():
        found[spec] = Target(spec, name, by_name=True, target=target)
    if entity.name == "contacts":
        found["name"] = Target("name", "full_name")
    if entity.name == "notes":
        for subject in NOTE_SUBJECTS:
            spec = f"record.{ENTITIES[subject].singular}"
            found[spec] = Target(spec, "record", part=subject, by_name=True, target=subject)
    return found


def target_of(entity: Entity, spec: str, custom: dict[str, dict[str, Any]]) -> Target:
    """The target a spec names (custom fields also by label), or a CrmError with the closest valid spec."""
    known = targets(entity, custom)
    if spec in known:
        return known[spec]
    if spec.startswith("custom."):
        key, _, part = spec.removeprefix("custom.").partition(".")
        for field_key, definition in custom.items():
            if norm(definition["label"]) == norm(key):
                return target_of(entity, f"custom.{field_key}" + (f".{part}" if part else ""), custom)
    hint = closest(spec, known)
    did_you_mean = f" Did you mean '{hint}'?" if hint else ""
    raise CrmError(f"'{spec}' is not something {entity.name} can be imported into.{did_you_mean}")


def _auto(entity: Entity, custom: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Normalized header -> spec, for matching columns nobody mapped."""
    known = targets(entity, custom)
    table: dict[str, str] = {}
    for alias, spec in COMMON_ALIASES.items():
        if spec in known:
            table[alias] = spec
    for alias, spec in ALIASES.get(entity.name, {}).items():
        if spec in known:
            table[alias] = spec
    for spec in known:
        table.setdefault(norm(spec), spec)
        if spec.endswith("_id"):
            table.setdefault(norm(spec.removesuffix("_id") + " id"), spec)
    for key, definition in custom.items():
        table[norm(definition["label"])] = f"custom.{key}"
        table[norm(key)] = f"custom.{key}"
        for spec in known:
            if spec.startswith(f"custom.{key}."):
                table.setdefault(norm(f"{definition['label']} {spec.rsplit('.', 1)[1]}"), spec)
    return table


def _contact_point(entity: Entity, header: str) -> str | None:
    """`Work email`, `E-mail (home)`, `Mobile`, `Phone - Work`: an email or phone column with its label."""
    words = header.split()
    labels = [LABEL_WORDS[w] for w in words if w in LABEL_WORDS]
    rest = " ".join(w for w in words if w not in LABEL_WORDS or w in ("mobile", "cell"))
    bare = " ".join(w for w in words if w not in LABEL_WORDS)  # `Phone - Mobile`: phone, labelled mobile
    for field, kinds, allowed in (("emails", EMAIL_WORDS, EMAIL_LABELS), ("phones", PHONE_WORDS, PHONE_LABELS)):
        if field in entity.writable and (rest in kinds or header in kinds or bare in kinds):
            label = next((label for label in labels if label in allowed), None)
            if rest in ("mobile", "cell", "cellphone"):
                label = "mobile"
            return f"{field}:{label}" if label else field
    return None


def map_columns(
    entity: Entity,
    headers: list[str],
    custom: dict[str, dict[str, Any]],
    given: dict[str, str | None] | None = None,
    strip_prefix: bool = False,
) -> Mapping:
    """The mapping of `headers`: `given` first (a spec, or None to skip the column), then automatic matching.
    `strip_prefix`: headers carry their entity's name first, as Pipedrive writes them ("Person - Name"), and are
    read as Pipedrive's export (`_pipedrive`)."""
    given = given or {}
    unknown = [h for h in given if h not in headers]
    if unknown:
        raise CrmError(
            f"The mapping names columns the file does not have: {', '.join(unknown)}. Columns: {', '.join(headers)}."
        )
    auto = _auto(entity, custom)
    columns: dict[str, Target] = {}
    ignored: dict[str, str] = {}
    words_of = {h: norm(h.split(" - ", 1)[1] if strip_prefix and " - " in h else h) for h in headers}
    whole_address = next((h for h in headers if words_of[h] == "address" and h not in given), None)
    for header in headers:
        if header in given:
            spec = given[header]
            if spec is None:
                ignored[header] = "skipped by the mapping"
            else:
                columns[header] = target_of(entity, spec, custom)
            continue
        words = words_of[header]
        if strip_prefix:
            words, why = _pipedrive(entity, words, auto, whole_address)
            if why is not None:
                ignored[header] = why
                continue
        if words.startswith("address ") and words.removeprefix("address ") in ADDRESS_WORDS:
            words = words.removeprefix("address ")
        spec = auto.get(words) or _contact_point(entity, words)
        if spec is None and words in ADDRESS_WORDS and "address" in entity.writable:
            spec = f"address.{ADDRESS_WORDS[words]}"
        if spec is None:
            ignored[header] = _why_ignored(entity, words, auto)
        else:
            columns[header] = targets(entity, custom)[spec]
    return _without_conflicts(entity, Mapping(entity, columns, ignored, headers))


def _pipedrive(entity: Entity, words: str, auto: dict[str, str], whole_address: str | None) -> tuple[str, str | None]:
    """A Pipedrive export's column, its `<Entity> - ` taken off: (the words to match it by, why it is ignored or
    None). Its subfields are `<part> of <field>` ("Currency of Value", "Country of Address")."""
    if words in PIPEDRIVE_IGNORED:
        return words, PIPEDRIVE_IGNORED[words]
    if words not in auto and (found := re.fullmatch(r"(.+?) of (.+)", words)):
        words = f"{found[2]} {found[1]}"
    part = words.removeprefix("address ") if words.startswith("address ") else None
    if part is not None and "address" in entity.writable:
        if part in PIPEDRIVE_IN_WHOLE_ADDRESS and whole_address is not None:
            return words, f"part of '{whole_address}'"
        if part == "street road name":
            return "address street", None
        if part in PIPEDRIVE_ADDRESS_WORDS:
            return f"address {PIPEDRIVE_ADDRESS_WORDS[part]}", None
    return words, None


def _why_ignored(entity: Entity, words: str, auto: dict[str, str]) -> str:
    if words in IGNORED or words in ("email", "phone"):
        return "set by the CRM"
    if words in ("label", "labels") and "tags" not in entity.writable:
        return f"{entity.name} have no tags; add a custom field labelled '{words.capitalize()}' to keep them"
    hint = closest(words, auto)
    return f"no such field; did you mean '{auto[hint]}'?" if hint else "no such field"


def _without_conflicts(entity: Entity, mapping: Mapping) -> Mapping:
    """Two columns for one single value: a column of ids wins over one of names (an export has both);
    otherwise the mapping must say which to use."""
    by_field: dict[tuple[str, str | None], list[str]] = {}
    for header, target in mapping.columns.items():
        if not target.many:
            by_field.setdefault((target.field, target.part), []).append(header)
    clashes = []
    for (field, _), headers in by_field.items():
        if len(headers) < 2:
            continue
        by_id = [h for h in headers if not mapping.columns[h].by_name]
        if len(by_id) == 1:
            for header in headers:
                if header != by_id[0]:
                    del mapping.columns[header]
                    mapping.ignored[header] = f"'{by_id[0]}' gives the ids"
        else:
            clashes.append(f"{', '.join(repr(h) for h in headers)} all fill {field}")
    if clashes:
        raise CrmError(
            "Some columns fill the same field: "
            + "; ".join(clashes)
            + '. Say which to use with a mapping ({"column": "field", "other column": null}).'
        )
    return mapping
