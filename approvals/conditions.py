"""The safe condition language of templates (`when:` on a step): evaluate it.

A condition is data (`Compare`, `AllOf`, `AnyOf`, `Not` from `approvals.definitions`), never
code: nothing here calls eval. Evaluation is total: a missing field or a value of another type
makes a comparison false instead of raising. Pure: no I/O, no clock. It holds no words:
`notifications.conditions_wording` describes a condition for people.

Rules:
- A missing field (absent or None) fails every comparison except `ne` and `not_in` (the exact
  negations of `eq` and `in`) and `empty: true`.
- Values compare only with values of their own kind: numbers with numbers (money is a number),
  text with text, true/false with true/false; `True` is not `1`. ISO dates ("2026-11-23")
  order as dates and ISO datetimes with an offset as instants; other text does not order.
- `in` / `not_in` take a list; on a list-valued field (users, multiselect, list) `in` means
  "any item is in the list". `contains` looks for an item in a list, or a substring in text.
- `empty: true` holds for a missing field, blank text and an empty list.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from approvals.definitions import AllOf, AnyOf, CompareOp, Condition, Not

# What a condition may ask about the initiator (`initiator: <name>`).
INITIATOR_ATTRIBUTES = ("is_department_head", "is_sole_department_head", "department", "level", "roles")

_MISSING = object()


def evaluate(cond: Condition, form: Mapping[str, Any], *, initiator_ctx: Mapping[str, Any]) -> bool:
    """Whether `cond` holds for this form and initiator (attributes as in INITIATOR_ATTRIBUTES)."""
    if isinstance(cond, AllOf):
        return all(evaluate(c, form, initiator_ctx=initiator_ctx) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any(evaluate(c, form, initiator_ctx=initiator_ctx) for c in cond.items)
    if isinstance(cond, Not):
        return not evaluate(cond.item, form, initiator_ctx=initiator_ctx)
    if cond.field is not None:
        actual = form.get(cond.field, _MISSING)
    elif cond.initiator is not None:
        actual = initiator_ctx.get(cond.initiator, _MISSING)
    else:
        actual = _MISSING
    if actual is None:
        actual = _MISSING
    return _compare(cond.op, actual, cond.value)


def _compare(op: CompareOp, actual: Any, expected: Any) -> bool:
    if op == CompareOp.EMPTY:
        return _is_empty(actual) == bool(expected)
    if op == CompareOp.NE:
        return actual is _MISSING or not _equal(actual, expected)
    if op == CompareOp.NOT_IN:
        return actual is _MISSING or not _within(actual, expected)
    if actual is _MISSING:
        return False
    if op == CompareOp.EQ:
        return _equal(actual, expected)
    if op == CompareOp.IN:
        return _within(actual, expected)
    if op == CompareOp.CONTAINS:
        if isinstance(actual, list | tuple):
            return any(_equal(item, expected) for item in actual)
        return isinstance(actual, str) and isinstance(expected, str) and expected in actual
    return _ordered(op, actual, expected)


def _is_empty(value: Any) -> bool:
    if value is _MISSING or value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict):
        return len(value) == 0
    return False


def _orderable(value: Any) -> tuple[str, Any] | None:
    """(kind, comparable) for values that have an order, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, datetime):
        return ("instant", value) if value.tzinfo is not None else None
    if isinstance(value, date):
        return ("date", value)
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            try:
                return ("date", date.fromisoformat(text))
            except ValueError:
                return None
        if len(text) > 10:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                return None
            return ("instant", moment) if moment.tzinfo is not None else None
    return None


def _equal(a: Any, b: Any) -> bool:
    oa, ob = _orderable(a), _orderable(b)
    if oa is not None and ob is not None and oa[0] == ob[0]:
        return bool(oa[1] == ob[1])
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return False


def _within(actual: Any, options: Any) -> bool:
    if not isinstance(options, list | tuple):
        return False
    items = actual if isinstance(actual, list | tuple) else [actual]
    return any(_equal(item, option) for item in items for option in options)


def _ordered(op: CompareOp, actual: Any, expected: Any) -> bool:
    oa, ob = _orderable(actual), _orderable(expected)
    if oa is None or ob is None or oa[0] != ob[0]:
        return False
    a, b = oa[1], ob[1]
    if op == CompareOp.GT:
        return bool(a > b)
    if op == CompareOp.GTE:
        return bool(a >= b)
    if op == CompareOp.LT:
        return bool(a < b)
    if op == CompareOp.LTE:
        return bool(a <= b)
    return False  # pragma: no cover - every other op is handled above
