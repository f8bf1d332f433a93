"""Errors a caller can act on. Their text reaches the model as it is, so it says what was wrong
and what is valid; anything else raised is a bug and is logged, never shown."""

import difflib
from collections.abc import Iterable


class CrmError(Exception):
    """A problem the caller can fix; nothing was changed."""


class NotFound(CrmError):
    pass


class Conflict(CrmError):
    pass


def closest(name: str, choices: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown(what: str, name: str, choices: Iterable[str]) -> CrmError:
    """`unknown field 'emial'. Did you mean 'emails'? Valid: ...`"""
    choices = list(choices)
    hint = closest(name, choices)
    did_you_mean = f" Did you mean '{hint}'?" if hint else ""
    return CrmError(f"Unknown {what} '{name}'.{did_you_mean} Valid {what}s: {', '.join(choices)}.")
