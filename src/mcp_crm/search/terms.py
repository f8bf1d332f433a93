"""Text as the search index sees it, the same in Python, SQLite and PostgreSQL.

Words are folded here (accents removed, case folded: "Müller" -> "muller") into runs of letters and digits, and
the databases only ever see those: their tokenizers split text on spaces and find nothing left to change.
Values shaped like an email, a phone number or a web address are identifiers: their words rank above other text,
and a phone number also yields its digits (and their trailing runs), so "+1 (415) 555-0100" is found by
"4155550100" and "555 0100". Each token is also stored tagged with its field, for field-targeted search."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, NamedTuple

from mcp_crm.entities import ENTITIES, Entity
from mcp_crm.errors import CrmError

WORD = re.compile(r"[^\W_]+")
MAX_TOKEN = 60  # longer runs are cut (a pasted hash, a URL's query string)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[\d\s().\-/]+$")
NOT_DIGIT = re.compile(r"\D")
WEB = re.compile(r"^(https?://)?([\w-]+\.)+[a-z]{2,}(/\S*)?$", re.IGNORECASE)
MIN_PHONE_DIGITS = 5
MIN_DIGIT_RUN = 7  # a phone's trailing digits are indexed from this many on: "5550100" finds it
MIN_FUZZY = 4  # words at least this long are looked up with a typo
MAX_TERMS = 10


def fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    return [w[:MAX_TOKEN] for w in WORD.findall(fold(text))]


def digits_of(text: str) -> str | None:
    """The digits of a value shaped like a phone number, else None."""
    if not PHONE.match(text):
        return None
    digits = NOT_DIGIT.sub("", text)
    return digits if len(digits) >= MIN_PHONE_DIGITS else None


def tag(field_name: str) -> str:
    """The prefix of a field's tokens in field_terms: letters and digits only, so every tokenizer keeps it whole."""
    return field_name.replace("_", "") + "0"


# ----------------------------------------------------------------------------------------------- documents


@dataclass
class Document:
    title: str
    body: list[str] = field(default_factory=list)  # "field: value" lines
    title_terms: list[str] = field(default_factory=list)
    id_terms: list[str] = field(default_factory=list)
    body_terms: list[str] = field(default_factory=list)
    field_terms: list[str] = field(default_factory=list)
    vocabulary: set[str] = field(default_factory=set)

    def row(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "body": "\n".join(self.body),
            "title_terms": " ".join(self.title_terms),
            "id_terms": " ".join(self.id_terms),
            "body_terms": " ".join(self.body_terms),
            "field_terms": " ".join(self.field_terms),
        }


@cache
def searched_fields(entity: Entity) -> tuple[str, ...]:
    """The fields `q` and search_fields can name: the title's, then the search columns."""
    return tuple(dict.fromkeys((*entity.title_columns, *entity.search_columns)))


@cache
def document_fields(entity: Entity) -> tuple[str, ...]:
    """Every field a document is made of: the searched ones, and what a note's title names (its record_type)."""
    about = ("record_type",) if untrusted_title(entity) and "record_type" in entity.fields else ()
    return (*searched_fields(entity), *about)


@cache
def untrusted_title(entity: Entity) -> bool:
    """A title made of free text (a note's body) is not shown as a title."""
    return any(entity.fields[c].untrusted for c in entity.title_columns)


def display_title(entity: Entity, record: dict[str, Any]) -> str:
    """A record's title in results: its name ("Ada Lovelace"), or for a note "Note on a contact"."""
    if untrusted_title(entity):
        about = ENTITIES.get(str(record.get("record_type")))
        return f"{entity.singular.capitalize()} on a {about.singular}" if about else entity.singular.capitalize()
    return " ".join(str(record[c]) for c in entity.title_columns if record.get(c) is not None)


def strings(value: Any) -> list[str]:
    """The text in a field's value: a string, tags, emails or phones ({value, label}), an address."""
    if isinstance(value, str):  # the common case first
        return [value] if value else []
    if value is None:
        return []
    if isinstance(value, dict):
        if "value" in value:
            return strings(value["value"])
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    return [str(value)]


class ValueTokens(NamedTuple):  # a tuple: made for every value the cache has not seen
    """What one value adds to a document."""

    tokens: tuple[str, ...]
    identifier: bool  # an email, a phone number or a web address
    fuzzable: tuple[str, ...]  # the tokens its vocabulary gets


@lru_cache(maxsize=8192)  # names, titles, tags and cities repeat across records
def value_tokens(text: str) -> ValueTokens:
    """The tokens of one value; a phone number adds its digits and their trailing runs."""
    tokens = words(text)
    digits = digits_of(text)
    if digits:
        runs = [digits[i:] for i in range(len(digits) - MIN_DIGIT_RUN + 1)] or [digits]
        tokens += [run[:MAX_TOKEN] for run in runs if run not in tokens]
    identifier = bool(digits) or bool(EMAIL.match(text) or WEB.match(text))
    return ValueTokens(tuple(tokens), identifier, tuple(t for t in tokens if fuzzable(t)))


@dataclass(frozen=True)
class DocumentField:
    """How a document takes one field, worked out once per entity."""

    name: str
    prefix: str  # of its tokens in field_terms
    titled: bool  # its tokens are title terms, and its values are not in the body
    trusted: bool  # its words join the vocabulary even when it is not an identifier
    label: str  # of its line in the body


@cache
def _document_plan(entity: Entity) -> tuple[DocumentField, ...]:
    title_fields = () if untrusted_title(entity) else entity.title_columns
    return tuple(
        DocumentField(
            name=name,
            prefix=tag(name),
            titled=name in title_fields,
            trusted=not entity.fields[name].untrusted,
            label=name.replace("_", " "),
        )
        for name in searched_fields(entity)
    )


def document(entity: Entity, record: dict[str, Any]) -> Document:
    doc = Document(title=display_title(entity, record)[:500])
    for spec in _document_plan(entity):
        values = strings(record.get(spec.name))
        if not values:
            continue
        for text in values:
            found = value_tokens(text)
            if spec.titled:
                doc.title_terms += found.tokens
            elif found.identifier:
                doc.id_terms += found.tokens
            else:
                doc.body_terms += found.tokens
            doc.field_terms += [spec.prefix + t for t in found.tokens]
            if spec.titled or found.identifier or spec.trusted:
                doc.vocabulary.update(found.fuzzable)
        if not spec.titled:
            doc.body.append(f"{spec.label}: {', '.join(values)}")
    return doc


def fuzzable(word: str) -> bool:
    return MIN_FUZZY <= len(word) <= MAX_TOKEN and not word.isdigit()


# ------------------------------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Term:
    """One thing to find: a word, or the pieces of an email, a web address or a phone number, in order."""

    parts: tuple[str, ...]
    digits: str | None = None  # a phone number's digits
    near: tuple[tuple[str, ...], ...] = ()  # per part, words one typo away (filled in when nothing matched)

    def alternatives(self) -> Iterator[tuple[tuple[str, ...], bool]]:
        """(tokens in order, last one a prefix) a document may hold for this term to match. The exact form
        comes with the prefix form so that a whole word ranks above a word it starts."""
        yield self.parts, False
        if len(self.parts[-1]) >= 2:
            yield self.parts, True
        if self.digits and self.parts != (self.digits,):
            yield (self.digits,), True
        if self.near:
            yield from ((combination, False) for combination in _combinations(self.parts, self.near))

    def words(self) -> set[str]:
        return {*self.parts, *(w for near in self.near for w in near)}


def _combinations(parts: tuple[str, ...], near: tuple[tuple[str, ...], ...], most: int = 16) -> list[tuple[str, ...]]:
    """The parts with one of them replaced by a word one typo away (a typo is one mistake)."""
    found = [(*parts[:i], word, *parts[i + 1 :]) for i, words in enumerate(near) for word in words]
    return found[:most]


def parse(query: str) -> list[Term]:
    """The terms of a query. A query that is a phone number ("+1 (415) 555-0100", "555 0100") is one term."""
    query = query.strip()
    if digits := digits_of(query):
        return [Term(tuple(words(query)), digits)]
    terms = []
    for chunk in query.split():
        if parts := words(chunk):
            terms.append(Term(tuple(parts), digits_of(chunk)))
    if not terms:
        raise CrmError("The query needs at least one word or number (letters or digits).")
    return terms[:MAX_TERMS]


def edits(word: str) -> set[str]:
    """Every word one edit away: a letter left out, added, changed, or two neighbours swapped."""
    letters = set("abcdefghijklmnopqrstuvwxyz0123456789") | set(word)
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    found = {a + b[1:] for a, b in splits if b}
    found |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    found |= {a + c + b[1:] for a, b in splits if b for c in letters}
    found |= {a + c + b for a, b in splits for c in letters}
    found.discard(word)
    return found
