"""Preview cannot disagree with a real submission: for every built-in template, several forms
and several initiators, the route `preview` shows is the route the submitted request takes,
and the approvals it calls automatic are the ones the engine makes when everyone approves."""

from __future__ import annotations

from typing import Any

import pytest

from approvals import engine
from approvals.engine import SYSTEM, Action, Context
from approvals.errors import ApprovalError
from approvals.model import ActionKind, Request, StepStatus, TaskStatus
from approvals.template_loader import builtin_templates_dir, load_templates
from notifications.wording import phrase
from tests.helpers import T0, TZ, demo_org
from tests.test_builtin_flows import (
    CHECKIN_FIX,
    DOC_RECEIVE,
    OUTING,
    REPAIR,
    REPORT,
    SEAL,
    VEHICLE,
    contract,
    doc_issue,
    expense,
    leave,
)

ORG = demo_org()
TEMPLATES = load_templates([builtin_templates_dir()], include_builtin=False)
FORMS: dict[str, list[dict[str, Any]]] = {
    "seal_use": [SEAL, {**SEAL, "take_out": True, "return_at": "2026-11-24T17:00:00+08:00"}],
    "vehicle_dispatch": [VEHICLE],
    "repair": [REPAIR],
    "outing": [OUTING],
    "doc_receive": [DOC_RECEIVE],
    "report_signoff": [REPORT],
    "checkin_fix": [CHECKIN_FIX],
    "leave": [leave(1), leave(3), leave(10)],
    "expense": [expense(800), expense(8000), expense(80000)],
    "contract": [contract(50000), contract(500000)],
    "doc_issue": [doc_issue("上行"), doc_issue("下行"), doc_issue("平行")],
    "notice_publish": [
        {
            "notice_id": "n20261123-0a1b2c3d",
            "kind": "公告",
            "subject": "元旦放假安排",
            "audience": "全体人员",
            "confidentiality": "内部",
            "recipients": 11,
            "office": ["u_zhao"],
        }
    ],
}
INITIATORS = ("u_wu", "u_sun", "u_li", "u_zhang", "u_chen", "u_wang", "u_zheng")
CASES = [(key, n, who) for key in sorted(TEMPLATES) for n in range(len(FORMS[key])) for who in INITIATORS]


def test_every_builtin_template_has_forms_here() -> None:
    assert set(FORMS) == set(TEMPLATES)


def _ctx(key: str) -> Context:
    return Context(template=TEMPLATES[key], org=ORG, now=T0, tz=TZ, words=phrase)


def _approve_everything(req: Request, key: str) -> None:
    """Every pending task is approved (or acknowledged) by its holder, with an opinion for the
    steps that ask for one, until nothing is pending."""
    for _ in range(50):
        task = next((t for t in req.pending_tasks() if t.gates_step), None)
        if task is None or req.is_final:
            return
        engine.act(
            _ctx(key),
            req,
            Action(
                kind=ActionKind.APPROVE,
                actor=task.assignee,
                task_id=task.id,
                version=task.version,
                comment="同意",
            ),
        )
    raise AssertionError("the request never finished")


def _automatic(req: Request, index: int) -> list[str]:
    return [
        t.acting_for or t.assignee
        for t in req.tasks
        if t.step_index == index and t.status == TaskStatus.APPROVED and t.decided_by == SYSTEM
    ]


@pytest.mark.parametrize(("key", "n", "initiator"), CASES)
def test_preview_route_is_the_submitted_route(key: str, n: int, initiator: str) -> None:
    form = FORMS[key][n]
    try:
        clean, preview = engine.preview(_ctx(key), initiator=initiator, form=form)
    except ApprovalError as refused:
        with pytest.raises(type(refused)):
            engine.submit(_ctx(key), request_id="r1", initiator=initiator, form=form)
        return
    req = engine.submit(_ctx(key), request_id="r1", initiator=initiator, form=form).request

    assert req.form == clean
    assert [(p.key, p.name, p.mode, p.kind, p.assignees, p.skipped) for p in preview] == [
        (s.key, s.name, s.mode.value, s.kind.value, s.assignees, s.status == StepStatus.SKIPPED)
        for s in req.steps
    ]
    _approve_everything(req, key)
    for p, s in zip(preview, req.steps, strict=True):
        assert sorted(p.auto_approved) == sorted(_automatic(req, s.index)), (key, p.key)
