"""The rows of a prepared SELECT (built once, run on every call with new values: a record by id, one record's
links) as plain dicts, read on SQLite through the driver itself.

Through SQLAlchemy such a statement costs several times what SQLite spends on it (an execution context, events,
a cursor result and row objects per call): the two statements of a contacts_get take 63 us in a loop, 25 us this
way, and inside a whole tool call, with the caches cold, the difference was ~150 us (bench/core.py figure 1).
The SQL is SQLAlchemy's own compilation of the statement, and each value goes through the result processor
SQLAlchemy would apply (JSON, times in UTC, booleans, money), so the rows equal `conn.execute(statement, values)`'s;
driver errors are raised as SQLAlchemy's, as from any statement. Unlike other statements these are not seen by
SQLAlchemy's cursor events or its echo log. A statement this cannot run exactly so (other dialects, values that need
converting on the way in, expanding IN lists, result columns named twice or not by their keys) goes through
SQLAlchemy."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

_GIVEN = object()  # a parameter each call gives a value for (one it does not give: SQLAlchemy says so)


@dataclass(frozen=True)
class _Plan:
    sql: str
    binds: tuple[tuple[str, Any], ...]  # each placeholder's parameter and its value unless given one (or _GIVEN)
    keys: tuple[str, ...]  # result column names, as the driver reports them
    processors: tuple[Callable[[Any], Any] | None, ...]


def select_rows(conn: Connection, statement: Select[Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    plan = _plan(statement, conn.dialect)
    params = [values.get(name, value) for name, value in plan.binds] if plan is not None else []
    if plan is None or any(param is _GIVEN for param in params):
        return _through_sqlalchemy(conn, statement, values)
    try:
        cursor = conn.connection.driver_connection.execute(plan.sql, params)  # type: ignore[union-attr]
        found = cursor.fetchall()
    except sqlite3.Error as exc:
        hide = conn.engine.hide_parameters
        raise DBAPIError.instance(plan.sql, params, exc, sqlite3.Error, hide, dialect=conn.dialect) from exc
    if tuple(column[0] for column in cursor.description) != plan.keys:  # named otherwise than its columns' keys
        return _through_sqlalchemy(conn, statement, values)
    keys, processors = plan.keys, plan.processors
    return [
        {
            key: value if process is None else process(value)
            for key, process, value in zip(keys, processors, row, strict=True)
        }
        for row in found
    ]


def _through_sqlalchemy(conn: Connection, statement: Select[Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    return list(as_dicts(conn.execute(statement, values)))


def as_dicts(result: Any) -> Iterator[dict[str, Any]]:
    """A result's rows as plain dicts (`dict(row_mapping)` builds a key view per row, which costs more)."""
    keys = list(result.keys())
    return (dict(zip(keys, row, strict=True)) for row in result)


@lru_cache(maxsize=1024)
def _plan(statement: Select[Any], dialect: Dialect) -> _Plan | None:
    if dialect.name != "sqlite" or dialect.driver != "pysqlite" or dialect.paramstyle != "qmark":
        return None
    compiled = statement.compile(dialect=dialect)
    binds = []
    for name in compiled.positiontup or ():
        bind = compiled.binds.get(name)
        if bind is None or bind.expanding or bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
            return None
        binds.append((name, _GIVEN if bind.required else bind.effective_value))  # literals in the statement: " "
    columns = list(statement.selected_columns)
    keys = tuple(column.key for column in columns)
    if len(set(keys)) != len(keys) or any(key is None for key in keys):
        return None
    processors = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
    return _Plan(sql=compiled.string, binds=tuple(binds), keys=keys, processors=processors)
