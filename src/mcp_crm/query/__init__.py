"""Filter trees, sorting and keyset cursors, compiled to SQLAlchemy for any entity."""

from mcp_crm.query.filters import And, Condition, FilterNode, Not, Or, compile_filter
from mcp_crm.query.operators import OPERATORS, operators_for
from mcp_crm.query.pages import SortKey, keyset_after, make_cursor, order_by, read_cursor

__all__ = [
    "OPERATORS",
    "And",
    "Condition",
    "FilterNode",
    "Not",
    "Or",
    "SortKey",
    "compile_filter",
    "keyset_after",
    "make_cursor",
    "operators_for",
    "order_by",
    "read_cursor",
]
