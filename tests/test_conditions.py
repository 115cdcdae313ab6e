"""Step conditions: each operator, nesting, missing fields and mismatched types, and previews."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.conditions import evaluate
from approvals.definitions import AllOf, AnyOf, Compare, CompareOp, Condition, Not
from notifications.conditions_wording import describe

FORM: dict[str, Any] = {
    "days": 5,
    "amount": 5000.5,
    "self_drive": True,
    "overnight": False,
    "leave_type": "年假",
    "note": "需要过夜住宿",
    "tags": ["a", "b"],
    "team": ["u_wu", "u_sun"],
    "blank": "  ",
    "nobody": [],
    "none": None,
    "day": "2026-11-23",
    "at": "2026-11-23T10:00:00+08:00",
}
HEAD = {"is_department_head": True, "is_sole_department_head": False, "department": "marketing", "level": 5, "roles": ["hr_manager"]}  # fmt: skip


def f(op: str, key: str, value: Any) -> Compare:
    return Compare(CompareOp(op), value, field=key)


def holds(cond: Condition, form: dict[str, Any] | None = None, ctx: dict[str, Any] | None = None) -> bool:
    return evaluate(cond, FORM if form is None else form, initiator_ctx=HEAD if ctx is None else ctx)


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (f("eq", "days", 5), True),
        (f("eq", "days", 5.0), True),
        (f("eq", "days", 4), False),
        (f("eq", "self_drive", True), True),
        (f("eq", "leave_type", "年假"), True),
        (f("ne", "leave_type", "年假"), False),
        (f("ne", "leave_type", "事假"), True),
        (f("gt", "days", 3), True),
        (f("gt", "days", 5), False),
        (f("gte", "days", 5), True),
        (f("lt", "amount", 5000), False),
        (f("lte", "amount", 5000.5), True),
        (f("lt", "days", 5.5), True),
        (f("in", "leave_type", ["年假", "调休"]), True),
        (f("in", "leave_type", ["事假"]), False),
        (f("not_in", "leave_type", ["事假"]), True),
        (f("not_in", "leave_type", ["年假"]), False),
        (f("in", "tags", ["b", "z"]), True),  # a list field: any item
        (f("in", "tags", ["z"]), False),
        (f("not_in", "tags", ["z"]), True),
        (f("contains", "tags", "a"), True),
        (f("contains", "tags", "z"), False),
        (f("contains", "team", "u_sun"), True),
        (f("contains", "note", "过夜"), True),
        (f("contains", "note", "出差"), False),
        (f("empty", "blank", True), True),
        (f("empty", "nobody", True), True),
        (f("empty", "none", True), True),
        (f("empty", "note", True), False),
        (f("empty", "note", False), True),
        (f("empty", "overnight", True), False),  # false is a value, not emptiness
        (f("gt", "day", "2026-11-22"), True),
        (f("lte", "day", "2026-11-22"), False),
        (f("gt", "at", "2026-11-23T01:59:00+00:00"), True),  # instants, whatever the offset
        (f("eq", "at", "2026-11-23T02:00:00+00:00"), True),
    ],
)
def test_each_operator(cond: Compare, expected: bool) -> None:
    assert holds(cond) is expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 1, False),
        ("ne", 1, True),
        ("gt", 1, False),
        ("gte", 1, False),
        ("lt", 1, False),
        ("lte", 1, False),
        ("in", [1], False),
        ("not_in", [1], True),
        ("contains", "x", False),
        ("empty", True, True),
        ("empty", False, False),
    ],
)
def test_a_missing_field_fails_every_comparison_but_ne_not_in_and_empty(
    op: str, value: Any, expected: bool
) -> None:
    assert holds(f(op, "absent", value)) is expected
    assert holds(f(op, "none", value)) is expected


@pytest.mark.parametrize(
    "cond",
    [
        f("gt", "amount", "5000"),  # a number against text
        f("eq", "days", "5"),
        f("lt", "leave_type", 3),
        f("eq", "self_drive", 1),  # True is not 1
        f("eq", "days", True),
        f("gt", "self_drive", False),  # booleans do not order
        f("gt", "note", "a"),  # plain text does not order
        f("gt", "day", 20261122),
        f("gt", "at", "2026-11-23T09:00"),  # an instant against a time without an offset
        f("contains", "days", 5),
        f("contains", "note", 5),
        f("in", "days", 5),  # `in` needs a list
        f("eq", "tags", "a"),
    ],
)
def test_mismatched_types_are_false_not_a_crash(cond: Compare) -> None:
    assert holds(cond) is False


def test_groups_nest() -> None:
    self_drive_or_overnight = AnyOf((f("eq", "self_drive", True), f("eq", "overnight", True)))
    assert holds(self_drive_or_overnight)
    assert not holds(self_drive_or_overnight, {"self_drive": False, "overnight": False})
    assert holds(AllOf((self_drive_or_overnight, f("gt", "days", 3))))
    assert not holds(AllOf((self_drive_or_overnight, f("gt", "days", 7))))
    assert holds(Not(f("gt", "days", 7)))
    assert holds(
        AnyOf(
            (Not(self_drive_or_overnight), AllOf((f("gte", "amount", 5000), Not(f("empty", "tags", True)))))
        )
    )
    assert holds(AllOf(())) and not holds(AnyOf(()))


def test_initiator_attributes() -> None:
    def i(op: str, attr: str, value: Any) -> Compare:
        return Compare(CompareOp(op), value, initiator=attr)

    assert holds(i("eq", "is_department_head", True))
    assert not holds(i("eq", "is_sole_department_head", True))
    assert holds(i("in", "department", ["marketing", "finance"]))
    assert holds(i("gte", "level", 5))
    assert holds(i("contains", "roles", "hr_manager"))
    assert not holds(i("eq", "is_department_head", True), ctx={})  # unknown initiator: missing
    assert holds(i("ne", "is_department_head", True), ctx={})


def test_conditions_never_run_code() -> None:
    sneaky = f("eq", "days", "__import__('os').system('false')")
    assert holds(sneaky) is False
    assert holds(f("contains", "note", "__class__")) is False


@pytest.mark.parametrize(
    ("cond", "text"),
    [
        (
            AnyOf((f("eq", "self_drive", True), f("eq", "overnight", True))),
            "self_drive = 是 或 overnight = 是",
        ),
        (f("gt", "days", 3), "days > 3"),
        (f("gte", "amount", 5000.0), "amount ≥ 5000"),
        (f("lte", "amount", 0.5), "amount ≤ 0.5"),
        (f("ne", "direction", "上行"), "direction ≠ 上行"),
        (f("in", "leave_type", ["年假", "调休"]), "leave_type 属于 {年假、调休}"),
        (f("not_in", "leave_type", ["事假"]), "leave_type 不属于 {事假}"),
        (f("contains", "team", "u_sun"), "team 包含 u_sun"),
        (f("empty", "photos", True), "photos 为空"),
        (f("empty", "photos", False), "photos 不为空"),
        (Not(f("eq", "overnight", False)), "非 (overnight = 否)"),
        (
            AllOf((AnyOf((f("eq", "self_drive", True), f("eq", "overnight", True))), f("gt", "days", 1))),
            "(self_drive = 是 或 overnight = 是) 且 days > 1",
        ),
        (Compare(CompareOp.EQ, True, initiator="is_department_head"), "发起人是部门负责人 = 是"),
        (Compare(CompareOp.CONTAINS, "gm", initiator="roles"), "发起人角色 包含 gm"),
    ],
)
def test_describe_reads_like_a_sentence(cond: Condition, text: str) -> None:
    assert describe(cond) == text


def test_describe_can_use_field_labels() -> None:
    cond = AnyOf((f("eq", "self_drive", True), f("eq", "overnight", True)))
    assert describe(cond, labels={"self_drive": "自驾", "overnight": "过夜"}) == "自驾 = 是 或 过夜 = 是"
