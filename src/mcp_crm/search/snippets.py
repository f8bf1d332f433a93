"""A result's snippet: the line of its document that holds most of the query, the matches in **bold**."""

from __future__ import annotations

import re

from mcp_crm.search.terms import WORD, Term, fold

PHONE_RUN = re.compile(r"\+?\d[\d\s().\-/]{3,}\d")
WIDTH = 160  # characters of a long line kept around its first match


def _spans(line: str, terms: list[Term]) -> tuple[list[tuple[int, int]], int]:
    """(matched spans, how many of the terms matched) in one line."""
    spans, matched = [], set()
    for m in WORD.finditer(line):
        token = fold(m.group())
        for index, term in enumerate(terms):
            if token in term.words() or any(len(p) >= 2 and token.startswith(p) for p in term.parts):
                spans.append(m.span())
                matched.add(index)
    for m in PHONE_RUN.finditer(line):
        digits = "".join(c for c in m.group() if c.isdigit())
        for index, term in enumerate(terms):
            if term.digits and term.digits in digits:
                spans.append(m.span())
                matched.add(index)
    return _merged(spans), len(matched)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def snippet(title: str, body: str, terms: list[Term]) -> str:
    lines = [line for line in body.split("\n") if line]
    scored = [(line, *_spans(line, terms)) for line in lines]
    line, spans, count = max(scored, key=lambda s: s[2], default=("", [], 0))
    if count == 0:
        title_spans, title_count = _spans(title, terms)
        if title_count or not lines:
            return _marked(title, title_spans)
        line, spans = lines[0], []
    start = 0
    if len(line) > WIDTH and spans:
        start = max(0, min(spans[0][0] - WIDTH // 3, len(line) - WIDTH))
    end = start + WIDTH
    window = [(max(s, start), min(e, end)) for s, e in spans if e > start and s < end]
    text = _marked(line[start:end], [(s - start, e - start) for s, e in window])
    return ("…" if start > 0 else "") + text + ("…" if end < len(line) else "")


def _marked(text: str, spans: list[tuple[int, int]]) -> str:
    out, at = [], 0
    for start, end in spans:
        out += [text[at:start], "**", text[start:end], "**"]
        at = end
    return "".join(out) + text[at:]
