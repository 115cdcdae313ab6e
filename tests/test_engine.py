"""The approval core without any I/O: routing, every action, policies, delegation, trail."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from approvals import engine
from approvals.definitions import (
    ConsecutivePolicy,
    InitiatorPolicy,
    NoApproverPolicy,
    Policies,
    WithdrawPolicy,
)
from approvals.engine import Action, Context
from approvals.errors import (
    ActionNotAllowed,
    BadTarget,
    NoApprover,
    NotAssignee,
    RateLimited,
    RequestFinished,
    StaleTask,
    TaskAlreadyDecided,
)
from approvals.model import (
    ActionKind,
    Delegation,
    NoticeKind,
    Request,
    RequestStatus,
    SignerPosition,
    StepStatus,
    TaskStatus,
)
from approvals.trail import verify_chain
from notifications.messages import message_for
from notifications.wording import card_outcome, phrase
from tests.helpers import T0, TZ, demo_org, step, template, who

ORG = demo_org()


class Runner:
    """Keeps one request and its accumulated trail, like storage would."""

    def __init__(self, tpl, initiator: str = "u_wu", form=None, delegations=(), now=T0) -> None:
        self.tpl = tpl
        self.now = now
        self.delegations = list(delegations)
        out = engine.submit(self.ctx(), request_id="r1", initiator=initiator, form=form or {"reason": "测试"})
        self.req: Request = out.request
        self.events = list(out.events)
        self.notices = list(out.notices)

    def ctx(self) -> Context:
        return Context(
            template=self.tpl, org=ORG, now=self.now, tz=TZ, delegations=self.delegations, words=phrase
        )

    def pending(self, assignee: str):
        return next(t for t in self.req.tasks if t.assignee == assignee and t.status == TaskStatus.PENDING)

    def do(self, kind: str, actor: str, *, task=None, version=None, **kw):
        if task is None and kind in ("approve", "reject", "return", "transfer", "add_signer", "acknowledge"):
            task = self.pending(actor)
        before = copy.deepcopy(self.req)
        try:
            out = engine.act(
                self.ctx(),
                self.req,
                Action(
                    kind=ActionKind(kind),
                    actor=actor,
                    task_id=task.id if task else None,
                    version=version if version is not None else (task.version if task else None),
                    **kw,
                ),
            )
        except Exception:
            # Refusals change nothing (storage would roll back anyway; the core must not rely on it).
            assert self.req == before
            raise
        self.events += out.events
        self.notices = list(out.notices)
        return out

    def cards_for(self, user: str) -> list:
        return [n for n in self.notices if n.kind == NoticeKind.TASK_CARD and n.recipient == user]


def chain3():
    return template(
        step("leader", who("manager", 1), name="直接领导"),
        step("vp", who("role", "deputy_gm"), name="副总"),
        step("gm", who("role", "gm"), name="总经理"),
        cc=(who("initiator"), who("role", "hr_manager")),
    )


def test_sequential_chain_approves_step_by_step_and_tells_initiator_and_cc():
    r = Runner(chain3())
    assert r.req.status == RequestStatus.RUNNING
    assert [n.recipient for n in r.notices if n.kind == NoticeKind.TASK_CARD] == ["u_sun"]
    r.do("approve", "u_sun")
    assert r.cards_for("u_li")
    r.do("approve", "u_li")
    out = r.do("approve", "u_zhang", comment="同意")
    assert r.req.status == RequestStatus.APPROVED
    kinds = {(n.kind, n.recipient) for n in out.notices}
    assert (NoticeKind.RESULT, "u_wu") in kinds
    assert (NoticeKind.CC, "u_zhao") in kinds
    assert (NoticeKind.CC, "u_wu") not in kinds  # the initiator gets the result once, not twice
    assert verify_chain(r.events) == []


def test_rejection_ends_request_and_closes_other_cards():
    tpl = template(step("both", who("user", "u_sun"), who("user", "u_li"), mode="all"))
    r = Runner(tpl)
    out = r.do("reject", "u_sun", comment="不合规")
    assert r.req.status == RequestStatus.REJECTED
    li = next(t for t in r.req.tasks if t.assignee == "u_li")
    assert li.status == TaskStatus.CLOSED
    closed = [n for n in out.notices if n.kind == NoticeKind.CARD_CLOSED and n.recipient == "u_li"]
    assert closed and "驳回" in card_outcome(closed[0].data, org=ORG, tz=TZ)
    with pytest.raises(RequestFinished):
        r.do("approve", "u_li", task=li)


def test_countersign_all_needs_everyone():
    tpl = template(step("会签", who("user", "u_sun"), who("user", "u_li"), who("user", "u_zhou"), mode="all"))
    r = Runner(tpl)
    assert {n.recipient for n in r.notices if n.kind == NoticeKind.TASK_CARD} == {"u_sun", "u_li", "u_zhou"}
    r.do("approve", "u_li")
    r.do("approve", "u_zhou")
    assert r.req.status == RequestStatus.RUNNING
    r.do("approve", "u_sun")
    assert r.req.status == RequestStatus.APPROVED


def test_any_sign_first_approval_decides_and_closes_siblings():
    tpl = template(
        step("或签", who("user", "u_sun"), who("user", "u_li"), mode="any"), step("gm", who("role", "gm"))
    )
    r = Runner(tpl)
    out = r.do("approve", "u_li")
    sun = next(t for t in r.req.tasks if t.assignee == "u_sun")
    assert sun.status == TaskStatus.CLOSED and sun.close_reason == "decided_by:u_li"
    assert any(
        n.kind == NoticeKind.CARD_CLOSED
        and n.recipient == "u_sun"
        and "李娜" in card_outcome(n.data, org=ORG, tz=TZ)
        for n in out.notices
    )
    assert r.cards_for("u_zhang")
    with pytest.raises(TaskAlreadyDecided):
        r.do("approve", "u_sun", task=sun)


def test_in_turn_step_sends_the_next_card_only_after_the_previous_person():
    tpl = template(
        step("依次", who("role_all", "gm"), who("role_all", "deputy_gm"), mode="sequential", kind="read")
    )
    r = Runner(tpl)
    assert [n.recipient for n in r.notices if n.kind == NoticeKind.TASK_CARD] == ["u_zhang"]
    assert next(t for t in r.req.tasks if t.assignee == "u_li").status == TaskStatus.QUEUED
    r.do("approve", "u_zhang")
    assert r.cards_for("u_li")
    r.do("approve", "u_li")
    assert r.req.status == RequestStatus.APPROVED


def test_second_tap_and_stale_card_change_nothing():
    r = Runner(chain3())
    task = r.pending("u_sun")
    shown_version = task.version
    r.do("approve", "u_sun", task=task, version=shown_version)
    with pytest.raises(TaskAlreadyDecided):
        r.do("approve", "u_sun", task=task, version=shown_version)
    li = r.pending("u_li")
    with pytest.raises(StaleTask):
        r.do("approve", "u_li", task=li, version=li.version - 1)


def test_only_the_assignee_may_act():
    r = Runner(chain3())
    with pytest.raises(NotAssignee):
        r.do("approve", "u_zheng", task=r.pending("u_sun"))


def test_notify_task_can_only_be_acknowledged_and_does_not_hold_the_flow():
    tpl = template(
        step("fyi", who("user", "u_zhao"), permission="notify", kind="notify"),
        step("gm", who("role", "gm")),
    )
    r = Runner(tpl)
    fyi = r.pending("u_zhao")
    assert r.cards_for("u_zhang"), "知会 must not block the next step"
    with pytest.raises(ActionNotAllowed):
        r.do("approve", "u_zhao", task=fyi)
    r.do("approve", "u_zhang")
    assert r.req.status == RequestStatus.APPROVED
    r.do("acknowledge", "u_zhao", task=fyi)
    assert fyi.status == TaskStatus.ACKNOWLEDGED


def test_transfer_moves_the_task_and_refuses_non_staff():
    r = Runner(chain3())
    with pytest.raises(BadTarget):
        r.do("transfer", "u_sun", target="nobody")
    out = r.do("transfer", "u_sun", target="u_zhou", comment="请周杰代看")
    assert any(n.kind == NoticeKind.CARD_CLOSED and n.recipient == "u_sun" for n in out.notices)
    assert r.cards_for("u_zhou")
    r.do("approve", "u_zhou")
    assert r.cards_for("u_li")


def test_collaborate_permission_cannot_transfer():
    tpl = template(step("c", who("user", "u_sun"), permission="collaborate"))
    r = Runner(tpl)
    with pytest.raises(ActionNotAllowed):
        r.do("transfer", "u_sun", target="u_li")


def test_add_signer_before_after_alongside():
    r = Runner(chain3())
    r.do("add_signer", "u_sun", target="u_zhou", position=SignerPosition.BEFORE)
    assert r.cards_for("u_zhou")
    sun = next(t for t in r.req.tasks if t.assignee == "u_sun")
    assert sun.status == TaskStatus.QUEUED
    r.do("approve", "u_zhou")
    assert r.cards_for("u_sun"), "after the signer before me decides, my card comes back"
    r.do("add_signer", "u_sun", target="u_zheng", position=SignerPosition.AFTER)
    r.do("approve", "u_sun")
    assert r.cards_for("u_zheng") and not r.cards_for("u_li")
    r.do("approve", "u_zheng")
    assert r.cards_for("u_li")
    r.do("add_signer", "u_li", target="u_qian", position=SignerPosition.ALONGSIDE)
    r.do("approve", "u_li")
    assert not r.cards_for("u_zhang")
    r.do("approve", "u_qian")
    assert r.cards_for("u_zhang")


def test_return_to_initiator_then_resubmit_starts_a_new_round():
    r = Runner(chain3())
    r.do("approve", "u_sun")
    r.do("return", "u_li", comment="补充附件")
    assert r.req.status == RequestStatus.RETURNED
    assert any(n.kind == NoticeKind.RESULT and n.recipient == "u_wu" for n in r.notices)
    r.do("resubmit", "u_wu", form={"reason": "已补充"})
    assert r.req.status == RequestStatus.RUNNING and r.req.round == 2
    assert r.req.form["reason"] == "已补充"
    assert r.cards_for("u_sun")


def test_return_to_an_earlier_step_reopens_it():
    r = Runner(chain3())
    r.do("approve", "u_sun")
    r.do("approve", "u_li")
    with pytest.raises(BadTarget):
        r.do("return", "u_zhang", target="2")
    r.do("return", "u_zhang", target="0")
    assert r.req.steps[0].status == StepStatus.ACTIVE
    assert r.req.steps[1].status == StepStatus.WAITING
    assert r.cards_for("u_sun")


def test_withdraw_policies():
    r = Runner(chain3())
    with pytest.raises(NotAssignee):
        r.do("withdraw", "u_zheng")  # holds no pending task (a later step's approver, or nobody)
    r.do("withdraw", "u_wu")
    assert r.req.status == RequestStatus.WITHDRAWN
    assert next(t for t in r.req.tasks if t.assignee == "u_sun").status == TaskStatus.CLOSED

    strict = template(*chain3().steps, policies=Policies(withdraw=WithdrawPolicy.BEFORE_FIRST_DECISION))
    r2 = Runner(strict)
    r2.do("approve", "u_sun")
    with pytest.raises(ActionNotAllowed):
        r2.do("withdraw", "u_wu")


def test_terminate_by_admin_or_current_approver_only():
    r = Runner(chain3())
    with pytest.raises(ActionNotAllowed):
        r.do("terminate", "u_zheng")
    r.do("terminate", "u_sun", comment="作废")
    assert r.req.status == RequestStatus.TERMINATED


def test_urge_is_limited_to_once_per_half_hour_per_task():
    r = Runner(chain3())
    out = r.do("urge", "u_wu")
    assert [n.recipient for n in out.notices if n.kind == NoticeKind.URGE] == ["u_sun"]
    r.now = T0 + timedelta(minutes=10)
    with pytest.raises(RateLimited) as exc:
        r.do("urge", "u_wu")
    assert exc.value.retry_at == T0 + timedelta(minutes=30)
    assert "10:30" in message_for(exc.value)
    r.now = T0 + timedelta(minutes=31)
    r.do("urge", "u_wu")


def test_initiator_as_approver_is_auto_approved_with_reason():
    tpl = template(step("self", who("user", "u_wu")), step("leader", who("manager", 1)))
    r = Runner(tpl)
    first = r.req.tasks[0]
    assert first.status == TaskStatus.APPROVED and first.decided_by == "system"
    assert "发起人本人" in (first.comment or "")
    assert any(e.kind == "auto_approved" for e in r.events)
    kept = template(*tpl.steps, policies=Policies(initiator_is_approver=InitiatorPolicy.KEEP))
    r2 = Runner(kept)
    assert r2.cards_for("u_wu")


def test_same_approver_in_consecutive_steps_approves_once():
    tpl = template(
        step("a", who("user", "u_li")), step("b", who("role", "deputy_gm")), step("c", who("role", "gm"))
    )
    r = Runner(tpl)
    r.do("approve", "u_li")
    assert r.req.steps[1].status == StepStatus.APPROVED
    assert any(e.kind == "auto_approved" and "合并" in (e.comment or "") for e in r.events)
    assert r.cards_for("u_zhang")
    keep = template(*tpl.steps, policies=Policies(consecutive_same_approver=ConsecutivePolicy.KEEP))
    r2 = Runner(keep)
    r2.do("approve", "u_li")
    assert r2.cards_for("u_li")


def test_no_approver_policies_skip_admin_refuse():
    missing = step("ghost", who("role", "no_such_role"), name="不存在的角色")
    r = Runner(template(missing, step("gm", who("role", "gm"))))
    assert r.req.steps[0].status == StepStatus.SKIPPED and "跳过" in r.req.steps[0].notes[0]
    assert r.cards_for("u_zhang")
    admin = template(missing, policies=Policies(no_approver=NoApproverPolicy.ADMIN, admin_role="hr_manager"))
    assert Runner(admin).cards_for("u_zhao")
    with pytest.raises(NoApprover):
        Runner(template(missing, policies=Policies(no_approver=NoApproverPolicy.REFUSE)))


def test_fallback_approver_used_when_first_choice_missing():
    spec = who("role", "repair_handler")
    from dataclasses import replace

    spec = replace(spec, fallback=who("role", "admin_service_manager"))
    r = Runner(template(step("handler", spec, kind="handle")))
    assert r.cards_for("u_wang")


def test_delegation_routes_new_tasks_to_the_delegate_and_both_may_act():
    d = Delegation(
        id="d1",
        delegator="u_sun",
        delegate="u_zhou",
        starts_at=T0 - timedelta(hours=1),
        ends_at=T0 + timedelta(days=2),
    )
    r = Runner(chain3(), delegations=[d])
    t = r.req.tasks[0]
    assert (t.assignee, t.acting_for) == ("u_zhou", "u_sun")
    assert r.cards_for("u_zhou")
    out = r.do("approve", "u_zhou", task=t)
    assert out.events[0].acting_for == "u_sun"
    r2 = Runner(chain3(), delegations=[d])
    r2.do("approve", "u_sun", task=r2.req.tasks[0])  # the delegator can still act
    assert r2.cards_for("u_li")


def test_delegate_can_act_on_a_task_created_before_the_delegation():
    r = Runner(chain3())
    t = r.pending("u_sun")
    r.delegations = [
        Delegation(
            id="d1", delegator="u_sun", delegate="u_zhou", starts_at=T0, ends_at=T0 + timedelta(days=1)
        )
    ]
    out = r.do("approve", "u_zhou", task=t)
    assert out.events[0].actor == "u_zhou" and out.events[0].acting_for == "u_sun"


def test_move_pending_tasks_to_delegate():
    r = Runner(chain3())
    d = Delegation(
        id="d1",
        delegator="u_sun",
        delegate="u_zhou",
        starts_at=T0,
        ends_at=T0 + timedelta(days=1),
        move_pending=True,
    )
    out = engine.apply_delegation(r.ctx(), r.req, d)
    t = r.req.tasks[0]
    assert (t.assignee, t.acting_for) == ("u_zhou", "u_sun")
    assert {(n.kind, n.recipient) for n in out.notices} == {
        (NoticeKind.CARD_CLOSED, "u_sun"),
        (NoticeKind.TASK_CARD, "u_zhou"),
    }


def test_tampering_with_the_trail_is_detected():
    from dataclasses import replace

    r = Runner(chain3())
    r.do("approve", "u_sun", comment="同意")
    assert verify_chain(r.events) == []
    edited = list(r.events)
    i = next(i for i, e in enumerate(edited) if e.kind == "approved")
    edited[i] = replace(edited[i], comment="不同意")
    problems = verify_chain(edited)
    assert problems and problems[0].seq == edited[i].seq
    assert verify_chain(r.events[:2] + r.events[3:])


def test_handling_step_cannot_be_rejected():
    r = Runner(template(step("deliver", who("role", "seal_keeper"), kind="handle", action_label="已交付")))
    with pytest.raises(ActionNotAllowed):
        r.do("reject", "u_chen")
    r.do("approve", "u_chen")
    assert r.req.status == RequestStatus.APPROVED


def test_only_after_approval_policy_lets_an_approved_request_be_revoked():
    r = Runner(chain3())
    for approver in ("u_sun", "u_li", "u_zhang"):
        r.do("approve", approver)
    with pytest.raises(RequestFinished):
        r.do("withdraw", "u_wu")
    revocable = template(*chain3().steps, policies=Policies(withdraw=WithdrawPolicy.AFTER_APPROVAL))
    r2 = Runner(revocable)
    for approver in ("u_sun", "u_li", "u_zhang"):
        r2.do("approve", approver)
    out = r2.do("withdraw", "u_wu", comment="销假")
    assert r2.req.status == RequestStatus.WITHDRAWN
    assert any(n.kind == NoticeKind.RESULT and n.recipient == "u_wu" for n in out.notices)
    with pytest.raises(RequestFinished):
        r2.do("withdraw", "u_wu")


def test_allowed_actions_follow_the_engines_own_checks():
    allowed_actions, K = engine.allowed_actions, ActionKind
    r = Runner(chain3())
    ctx, req = r.ctx(), r.req
    first = req.pending_tasks()[0]
    mine = allowed_actions(ctx, req, first.assignee)
    assert set(mine.tasks) == {first.id} and K.APPROVE in mine.tasks[first.id]
    # a 审批 participant may also withdraw and notify others 知会他人; archive waits for the end
    assert {K.TERMINATE, K.COMMENT, K.WITHDRAW, K.NOTIFY_OTHERS} <= mine.request
    assert K.ARCHIVE not in mine.request
    initiator = allowed_actions(ctx, req, req.initiator)
    assert initiator.tasks == {} and {K.WITHDRAW, K.URGE, K.COMMENT} <= initiator.request
    stranger = allowed_actions(ctx, req, "u_zhou")
    assert stranger.tasks == {} and stranger.request == frozenset()
    assert K.TERMINATE in allowed_actions(ctx, req, "u_zhou", is_admin=True).request
    r.do("approve", "u_sun")
    later = allowed_actions(r.ctx(), r.req, "u_li")
    assert K.RETURN in next(iter(later.tasks.values()))
    assert [s.name for s in engine.return_steps(r.req, r.req.steps[1])] == ["直接领导"]
    r.do("return", "u_li", target="initiator")
    back = allowed_actions(r.ctx(), r.req, "u_wu")
    assert (
        back.tasks == {}
        and {K.RESUBMIT, K.WITHDRAW, K.COMMENT} <= back.request
        and K.URGE not in back.request
    )
