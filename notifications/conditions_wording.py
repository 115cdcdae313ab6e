"""A template condition (`when:` on a step) in words, for previews and the template listing.

`approvals.conditions` evaluates conditions; this module only says them, e.g.
"self_drive = 是 或 overnight = 是". Pure: no I/O; it decides nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from approvals.definitions import AllOf, AnyOf, Compare, CompareOp, Condition, Not

INITIATOR_LABEL = {
    "is_department_head": "发起人是部门负责人",
    "is_sole_department_head": "发起人是部门唯一负责人",
    "department": "发起人部门",
    "level": "发起人职级",
    "roles": "发起人角色",
}

_SYMBOLS = {
    CompareOp.EQ: "=",
    CompareOp.NE: "≠",
    CompareOp.GT: ">",
    CompareOp.GTE: "≥",
    CompareOp.LT: "<",
    CompareOp.LTE: "≤",
}


def describe(cond: Condition, *, labels: Mapping[str, str] | None = None) -> str:
    """A readable line for previews, e.g. "self_drive = 是 或 overnight = 是".

    `labels` (field key → label) shows labels instead of keys.
    """
    return _describe(cond, labels or {}, nested=False)


def _describe(cond: Condition, labels: Mapping[str, str], *, nested: bool) -> str:
    if isinstance(cond, AllOf | AnyOf):
        joiner = " 且 " if isinstance(cond, AllOf) else " 或 "
        if not cond.items:
            return "总是" if isinstance(cond, AllOf) else "从不"
        text = joiner.join(_describe(c, labels, nested=True) for c in cond.items)
        return f"({text})" if nested and len(cond.items) > 1 else text
    if isinstance(cond, Not):
        return f"非 ({_describe(cond.item, labels, nested=False)})"
    subject = _subject(cond, labels)
    if cond.op == CompareOp.EMPTY:
        return f"{subject} {'为空' if cond.value else '不为空'}"
    if cond.op in (CompareOp.IN, CompareOp.NOT_IN):
        verb = "属于" if cond.op == CompareOp.IN else "不属于"
        return f"{subject} {verb} {{{_value(cond.value)}}}"
    if cond.op == CompareOp.CONTAINS:
        return f"{subject} 包含 {_value(cond.value)}"
    return f"{subject} {_SYMBOLS[cond.op]} {_value(cond.value)}"


def _subject(cond: Compare, labels: Mapping[str, str]) -> str:
    if cond.field is not None:
        return labels.get(cond.field, cond.field)
    if cond.initiator is not None:
        return INITIATOR_LABEL.get(cond.initiator, f"发起人.{cond.initiator}")
    return "?"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if value is None:
        return "空"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return "、".join(_value(v) for v in value)
    return str(value)
