"""Messages from a template and a person: merge fields, markdown to HTML, a text/plain part, the MIME message.

Merge fields are `{{first_name}}`, with an optional fallback `{{first_name|there}}` used when the person has no
value. Values never become markup: they are escaped in the HTML part, and in markdown they are put in after the
markdown is rendered."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime
from functools import cache
from html.parser import HTMLParser
from typing import Literal

from markdown_it import MarkdownIt

from mcp_crm.errors import CrmError, closest

FIELDS = ("first_name", "last_name", "full_name", "email", "organization")
MERGE = re.compile(r"\{\{\s*([^{}|]*?)\s*(?:\|([^{}]*))?\}\}")
BodyFormat = Literal["markdown", "html"]
DOCUMENT = '<!doctype html>\n<html><head><meta charset="utf-8"></head><body>\n{}</body></html>\n'
# headers given as written (extra_headers) are sent as written, never refolded: a URL folding split or RFC 2047
# encoded would not work in List-Unsubscribe
POLICY = default_policy.clone(refold_source="none")


class MissingValue(Exception):
    """The person has no value for a merge field that has no fallback."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def check_template(subject: str, body: str) -> None:
    """Every merge field is a known one; a CrmError names the unknown ones and the valid fields."""
    for where, template in (("subject", subject), ("body", body)):
        for match in MERGE.finditer(template):
            name = match.group(1)
            if name not in FIELDS:
                hint = closest(name, FIELDS)
                did_you_mean = f" Did you mean {{{{{hint}}}}}?" if hint else ""
                raise CrmError(
                    f"{where}: unknown merge field {match.group(0)}.{did_you_mean} Valid merge fields: "
                    f"{', '.join('{{' + f + '}}' for f in FIELDS)}, each with an optional fallback such as "
                    "{{first_name|there}}. Nothing was sent."
                )


def _merge(template: str, values: dict[str, str | None], escape: bool = False, one_line: bool = False) -> str:
    def value(match: re.Match[str]) -> str:
        name, fallback = match.group(1), match.group(2)
        found = (values.get(name) or "").strip()
        if not found:
            if fallback is None:
                raise MissingValue(name)
            found = fallback.strip()
        if one_line:
            found = " ".join(found.split())
        return html.escape(found) if escape else found

    return MERGE.sub(value, template)


@cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"breaks": True})


def _markdown_html(body: str, values: dict[str, str | None]) -> str:
    """Markdown rendered with placeholders where the merge fields are, then the escaped values put in, so a
    value (a name with * or <) never turns into markup."""
    found: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        found.append(_merge(match.group(0), values, escape=True))
        return f"0mcpcrmmerge{len(found) - 1}z"  # starts with a digit: never read as a tag name or a list

    rendered = _markdown().render(MERGE.sub(placeholder, body))
    return re.sub(r"0mcpcrmmerge(\d+)z", lambda m: found[int(m.group(1))], rendered)


def render(subject: str, body: str, body_format: BodyFormat, values: dict[str, str | None]) -> Rendered:
    """The message for one person; raises MissingValue for a merge field they have no value for."""
    merged_subject = " ".join(_merge(subject, values, one_line=True).split())
    if body_format == "markdown":
        text = _merge(body, values)
        fragment = _markdown_html(body, values)
    else:
        fragment = _merge(body, values, escape=True)
        text = html_to_text(fragment)
    page = fragment if re.search(r"<html[\s>]", fragment, re.IGNORECASE) else DOCUMENT.format(fragment)
    return Rendered(subject=merged_subject, text=text.strip() + "\n", html=page)


class _TextOfHtml(HTMLParser):
    BLOCKS = frozenset({"p", "div", "br", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "hr"})
    HIDDEN = frozenset({"head", "style", "script", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS - {"br"}:
            self.parts.append("\n\n" if tag in ("p", "table") or tag.startswith("h") else "\n")
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href and not href.startswith("#") and href not in self.parts[-1:]:
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """Readable plain text of an HTML body: paragraphs and lines kept, links as 'text (url)'."""
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def address(email: str, name: str | None = None) -> Address:
    """An address header value; ValueError when `email` is not a usable address."""
    if "@" not in email or any(c.isspace() for c in email):
        raise ValueError(f"{email!r} is not an email address")
    local, _, domain = email.rpartition("@")
    return Address(display_name=" ".join((name or "").split()), username=local, domain=domain)


def message_id(outbox_id: str, from_address: str) -> str:
    """The same for every attempt at one message: its outbox row's id at the sender's domain."""
    return f"<{outbox_id}@{from_address.rpartition('@')[2]}>"


def build_message(
    *,
    sender: Address,
    recipient: Address,
    rendered: Rendered,
    message_id: str,
    date: datetime,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> EmailMessage:
    """A multipart/alternative message (text/plain and text/html, UTF-8); non-ASCII headers are encoded as
    RFC 2047 words. `extra_headers` (ASCII, folded already where needed) are added exactly as given."""
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    for name, value in extra_headers:
        message.set_raw(name, value)
    message.set_content(rendered.text, charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    return message
