"""Structured values stored inside a record (as JSON): email addresses, phone numbers, addresses."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


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


# Scalars as the columns can store them, for inputs, filter values and cursors alike.

INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # integer columns are 32-bit on PostgreSQL


def _in_utc(value: datetime) -> datetime:
    """Aware, in UTC (a naive time is taken as UTC); a time that leaves years 1-9999 in UTC is refused."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC (years 1 to 9999)") from None


StoredInt = Annotated[int, Field(ge=INT_MIN, le=INT_MAX)]
StoredDatetime = Annotated[datetime, AfterValidator(_in_utc)]
StoredDecimal = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=20, decimal_places=4)]


def storable(annotation: Any) -> Any:
    """The annotation with the limits of its column type (int, datetime and Decimal get theirs)."""
    return {int: StoredInt, datetime: StoredDatetime, Decimal: StoredDecimal}.get(annotation, annotation)
