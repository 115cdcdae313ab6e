"""督办 actions in the core: a late task's managers may urge its holder, give the task to someone in
their team, or take it over when the template allows it; anyone else, a stale card and a repeat
change nothing. Also: who the ladder tells when the manager chain runs out."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from approvals import engine
from approvals.definitions import Policies
from approvals.engine import Context, SupervisorAction, SupervisorMove
from approvals.errors import (
    ActionNotAllowed,
    BadTarget,
    NotSupervisor,
    RateLimited,
    StaleTask,
    TaskAlreadyDecided,
)
from approvals.model import ActionKind, NoticeKind, Request, TaskStatus
from approvals.trail import verify_chain
from deadlines.ladder import PlannedRung, RungKind, compose_ping
from notifications.messages import message_for
from notifications.wording import card_outcome, phrase
from tests.helpers import T0, TZ, demo_org, step, template, who

ORG = demo_org()


def leader_template(*, may_act: bool = False):  # type: ignore[no-untyped-def]
    return template(
        step("leader", who("manager", 1), name="直接领导"),
        step("gm", who("role", "gm"), name="总经理"),
        policies=Policies(manager_may_act=may_act),
    )


class Desk:
    """One request waiting for 孙丽 (u_sun, the initiator 吴昊's leader; her manager is 李娜)."""

    def __init__(self, *, may_act: bool = False) -> None:
        self.tpl = leader_template(may_act=may_act)
        self.now = T0
        out = engine.submit(self.ctx(), request_id="r1", initiator="u_wu", form={"reason": "测试"})
        self.req: Request = out.request
        self.events = list(out.events)

    def ctx(self) -> Context:
        return Context(template=self.tpl, org=ORG, now=self.now, tz=TZ, words=phrase)

    @property
    def task(self):  # type: ignore[no-untyped-def]
        return next(t for t in self.req.tasks if t.step_index == 0)

    def supervise(self, move: str, actor: str, *, version: int | None = None, **kw: object) -> engine.Outcome:
        task = self.task
        before = copy.deepcopy(self.req)
        action = SupervisorAction(
            kind=SupervisorMove(move),
            actor=actor,
            task_id=task.id,
            version=task.version if version is None else version,
            **kw,  # type: ignore[arg-type]
        )
        try:
            out = engine.supervise(self.ctx(), self.req, action)
        except Exception:
            assert self.req == before  # a refusal changes nothing
            raise
        self.events += out.events
        return out


def test_the_holders_manager_moves_the_task_to_someone_in_their_team_and_the_trail_says_so() -> None:
    d = Desk()
    old = d.task
    out = d.supervise("transfer", "u_li", target="u_zhao", comment="孙丽出差")

    assert old.status == TaskStatus.TRANSFERRED
    new = next(t for t in d.req.tasks if t.assignee == "u_zhao")
    assert new.status == TaskStatus.PENDING
    moved = next(e for e in out.events if e.kind == "transferred")
    assert (moved.actor, moved.before, moved.after, moved.data["as_manager"]) == (
        "u_li",
        "u_sun",
        "u_zhao",
        True,
    )
    # 赵敏 gets a card; 孙丽's card closes saying who moved it.
    assert any(n.kind == NoticeKind.TASK_CARD and n.recipient == "u_zhao" for n in out.notices)
    closed = next(n for n in out.notices if n.kind == NoticeKind.CARD_CLOSED and n.recipient == "u_sun")
    assert card_outcome(closed.data, org=ORG, tz=TZ).startswith("已转交赵敏 · 李娜")
    assert verify_chain(d.events) == []


def test_a_second_tap_on_the_same_card_changes_nothing() -> None:
    d = Desk()
    version = d.task.version
    d.supervise("transfer", "u_li", target="u_zhao")
    sun_task = d.req.tasks[0]
    with pytest.raises(TaskAlreadyDecided):
        engine.supervise(
            d.ctx(),
            d.req,
            SupervisorAction(SupervisorMove.TRANSFER, "u_li", sun_task.id, version, target="u_qian"),
        )


def test_only_the_holders_managers_or_an_admin_may_supervise() -> None:
    d = Desk()
    for stranger in ("u_wu", "u_zhou", "u_sun"):  # the initiator, another department's head, herself
        with pytest.raises(NotSupervisor) as refused:
            d.supervise("transfer", stranger, target="u_zhao")
    assert message_for(refused.value).startswith("只有孙丽的上级领导或管理员可以督办")
    d.supervise("urge", "u_zhang")  # the GM is 孙丽's manager two levels up
    d.now += timedelta(hours=1)
    d.supervise("transfer", "u_zhou", target="u_zheng", is_admin=True)  # an admin, anyone active


def test_transfer_outside_the_team_is_refused_with_words() -> None:
    d = Desk()
    # 李娜 manages almost everyone but not 张伟 (her own manager).
    with pytest.raises(BadTarget) as refused:
        d.supervise("transfer", "u_li", target="u_zhang")
    assert message_for(refused.value) == "张伟 不在您管理的团队中，只能转交给您团队中的人"
    with pytest.raises(BadTarget):
        d.supervise("transfer", "u_li", target="u_sun")  # to the holder herself


def test_a_stale_card_changes_nothing() -> None:
    d = Desk()
    with pytest.raises(StaleTask):
        d.supervise("urge", "u_li", version=d.task.version - 1)


def test_urging_is_once_per_30_minutes_per_task_whoever_urges() -> None:
    d = Desk()
    out = d.supervise("urge", "u_li")
    assert [(n.kind, n.recipient) for n in out.notices] == [(NoticeKind.URGE, "u_sun")]
    urged = next(e for e in out.events if e.kind == "urged")
    assert (urged.actor, urged.after, urged.data["as_manager"]) == ("u_li", "u_sun", True)
    d.now += timedelta(minutes=29)
    with pytest.raises(RateLimited):
        d.supervise("urge", "u_zhang")
    # The initiator's own 催办 counts against the same clock.
    with pytest.raises(RateLimited):
        engine.act(d.ctx(), d.req, engine.Action(kind=ActionKind.URGE, actor="u_wu"))
    d.now += timedelta(minutes=1)
    d.supervise("urge", "u_li")


def test_taking_over_needs_the_template_to_allow_it() -> None:
    d = Desk(may_act=False)
    with pytest.raises(ActionNotAllowed) as refused:
        d.supervise("take_over", "u_li")
    assert message_for(refused.value) == "该模板不允许上级代为处理，请催办或转交"


def test_a_manager_who_takes_over_decides_for_the_assignee_on_the_record() -> None:
    d = Desk(may_act=True)
    out = d.supervise("take_over", "u_li")
    task = d.task
    assert (task.assignee, task.acting_for, task.status) == ("u_li", "u_sun", TaskStatus.PENDING)
    taken = next(e for e in out.events if e.kind == "taken_over")
    assert (taken.actor, taken.acting_for, taken.before, taken.after) == ("u_li", "u_sun", "u_sun", "u_li")
    assert any(n.kind == NoticeKind.TASK_CARD and n.recipient == "u_li" for n in out.notices)
    closed = next(n for n in out.notices if n.kind == NoticeKind.CARD_CLOSED)
    assert closed.recipient == "u_sun" and card_outcome(closed.data, org=ORG, tz=TZ).startswith(
        "已由李娜代为处理"
    )

    done = engine.act(
        d.ctx(),
        d.req,
        engine.Action(kind=ActionKind.APPROVE, actor="u_li", task_id=task.id, version=task.version),
    )
    approved = next(e for e in done.events if e.kind == "approved")
    assert (approved.actor, approved.acting_for) == ("u_li", "u_sun")  # 李娜（代 孙丽）同意


# -- the ladder when the chain runs out -----------------------------------------------------------
def _ping(req: Request, assignee_task, kind: RungKind, level: int, office: tuple[str, ...]):  # type: ignore[no-untyped-def]
    rung = PlannedRung(kind=kind, at=T0, point=1.0 if kind == RungKind.DUE else 2.0, level=level)
    return compose_ping(
        rung,
        request=req,
        task=assignee_task,
        template=leader_template(),
        org=ORG,
        tz=TZ,
        now=T0 + timedelta(hours=5),
        public_url="http://oa",
        office=office,
    )


def test_past_the_top_of_the_chain_the_office_is_told_once_and_it_is_in_the_trail() -> None:
    d = Desk()
    d.supervise("transfer", "u_li", target="u_wang")  # 王芳 → 李娜 → 张伟, nobody above 张伟
    task = next(t for t in d.req.tasks if t.status == TaskStatus.PENDING)
    task.due_at = T0

    at_top = _ping(d.req, task, RungKind.ESCALATE, 3, ("u_zhao",))  # 3 levels up: past 张伟
    assert [(m.kind, m.recipient) for m in at_top.messages] == [("escalate", "u_zhao")]
    text = at_top.messages[0].payload["text"]
    assert text.startswith("【督办·无上级】王芳 的待办已超时") and "张伟 之上已无上级" in text
    note = at_top.events[0]
    assert (note.kind, note.after, note.data["to_office"]) == ("escalated", "u_zhao", True)
    assert at_top.messages[0].payload["card"]["title"].startswith("督办（无上级）")

    beyond = _ping(d.req, task, RungKind.ESCALATE, 4, ("u_zhao",))  # the office was already told
    assert beyond.messages == [] and beyond.events == []


def test_a_holder_without_any_manager_has_the_office_supervise_at_the_due_time() -> None:
    d = Desk()
    d.supervise("transfer", "u_zhang", target="u_zhou", is_admin=True)
    task = next(t for t in d.req.tasks if t.status == TaskStatus.PENDING)
    task.assignee = "u_zhang"  # the GM holds it: nobody above
    task.due_at = T0

    ping = _ping(d.req, task, RungKind.DUE, 1, ("u_zhao",))
    assert [(m.kind, m.recipient) for m in ping.messages] == [("remind", "u_zhang"), ("escalate", "u_zhao")]
    assert _ping(d.req, task, RungKind.DUE, 1, ("u_zhang",)).messages[1:] == []  # never the holder
