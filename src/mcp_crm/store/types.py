"""Column types that behave the same on SQLite and PostgreSQL."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic_core import from_json, to_json
from sqlalchemy import BigInteger, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes. SQLite keeps no offset, so values are normalised to UTC
    on the way in and marked UTC on the way out; ISO strings still sort chronologically."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ScaledDecimal(TypeDecorator[Decimal]):
    """An exact decimal stored as an integer count of 10**-scale units: exact on SQLite (which has
    no decimal type), fast to compare and sort on both databases."""

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self._factor = Decimal(10) ** scale

    def process_bind_param(self, value: Decimal | float | int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int((Decimal(str(value)) * self._factor).to_integral_value())

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(value) / self._factor).quantize(Decimal(1).scaleb(-self.scale))


def json_text(value: Any) -> str:
    """How JSON columns are written: compact UTF-8 (pydantic's serializer, much faster than the json module's
    non-default path). Filters on JSON lists match against this exact text."""
    return to_json(value).decode()


def json_value(text: str) -> Any:
    """How JSON columns are read: pydantic's parser, a few times faster than json.loads on the short texts stored
    here; json.loads itself for what that one refuses (a lone surrogate escape, very deep nesting) or cannot
    read either, so the values and the errors are json.loads's."""
    try:
        return from_json(text)
    except ValueError:
        return json.loads(text)


Money = ScaledDecimal(2)
Quantity = ScaledDecimal(4)
