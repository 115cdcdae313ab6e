"""Approver resolution: each approver kind finds its people on the demo organisation."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.definitions import ApproverKind, ApproverSpec
from approvals.routing import resolve_approver
from tests.helpers import demo_org, who

ORG = demo_org()


def people(spec: ApproverSpec, initiator: str = "u_wu", form: dict[str, Any] | None = None) -> list[str]:
    return resolve_approver(spec, org=ORG, initiator=initiator, form=form or {}, notes=[])


@pytest.mark.parametrize(
    ("spec", "form", "expected"),
    [
        (who("user", "u_chen"), {}, ["u_chen"]),
        (who("role", "seal_keeper"), {}, ["u_chen"]),
        (who("role_all", "deputy_gm"), {}, ORG.role_holders("deputy_gm")),
        (who("manager", 1), {}, ["u_sun"]),
        (who("manager", 2), {}, ["u_li"]),
        (who("dept_head", "initiator"), {}, ORG.heads_of("marketing")[:1]),
        (who("dept_head", "engineering"), {}, ["u_zhou"]),
        (who("dept_head", "field:office"), {"office": "engineering"}, ["u_zhou"]),
        (who("dept_head_other", "initiator"), {}, ORG.heads_of("marketing")[:1]),
        (who("form_user", "picked"), {"picked": ["u_chen", "u_zhou"]}, ["u_chen", "u_zhou"]),
        (who("form_user", "picked"), {"picked": "u_chen"}, ["u_chen"]),
        (who("initiator"), {}, ["u_wu"]),
    ],
    ids=lambda v: v.kind.value if isinstance(v, ApproverSpec) else None,
)
def test_each_approver_kind_finds_its_people(
    spec: ApproverSpec, form: dict[str, Any], expected: list[str]
) -> None:
    assert people(spec, form=form) == expected


def test_every_approver_kind_is_covered_above() -> None:
    covered = {
        "user",
        "role",
        "role_all",
        "manager",
        "dept_head",
        "dept_head_other",
        "form_user",
        "initiator",
    }
    assert covered == {k.value for k in ApproverKind}


def test_a_sole_head_reviews_their_own_document_and_the_trail_says_so() -> None:
    head = ORG.heads_of("engineering")[0]
    notes: list[str] = []
    found = resolve_approver(
        who("dept_head_other", "initiator"), org=ORG, initiator=head, form={}, notes=notes
    )
    assert found == [head]
    assert notes == ["拟稿人是本部门唯一负责人，由本人核稿（此步骤照常记录）"]


def test_nobody_found_falls_back() -> None:
    spec = ApproverSpec(ApproverKind.ROLE, "no_such_role", fallback=who("role", "seal_keeper"))
    notes: list[str] = []
    assert resolve_approver(spec, org=ORG, initiator="u_wu", form={}, notes=notes) == ["u_chen"]
    assert len(notes) == 1
