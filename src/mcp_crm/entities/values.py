"""Structured values stored inside a record (as JSON): email addresses, phone numbers, addresses."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Value(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmailAddress(Value):
    value: str = Field(
        max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="The address, e.g. ada@acme.com."
    )
    label: Literal["work", "home", "other"] = "work"
    primary: bool = Field(False, description="The address used by default; the first one when none is marked.")


class PhoneNumber(Value):
    value: str = Field(
        max_length=40,
        pattern=r"^\+?[0-9 ()./-]{3,40}$",
        description="Digits with optional +, spaces, dots, dashes and parentheses, e.g. +49 30 1234567.",
    )
    label: Literal["work", "mobile", "home", "other"] = "work"
    primary: bool = False


class Address(Value):
    street: str | None = Field(None, max_length=200)
    city: str | None = Field(None, max_length=100)
    region: str | None = Field(None, max_length=100, description="State, province or county.")
    postal_code: str | None = Field(None, max_length=20)
    country: str | None = Field(None, max_length=100)


def primary_value(entries: list[dict[str, Any]] | None) -> str | None:
    """The value marked primary, else the first one."""
    if not entries:
        return None
    chosen = next((e for e in entries if e.get("primary")), entries[0])
    return chosen["value"]
