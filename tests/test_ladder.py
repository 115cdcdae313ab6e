"""The reminder ladder, pure: which rungs a task gets, when, what they say, and automatic decisions.

Times are on the real 2026 Chinese schedule in Shanghai with 09:00-12:00 and 13:30-18:00 hours.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from approvals import engine
from approvals.engine import Context, SystemNote
from approvals.errors import ActionNotAllowed, BadTarget, TaskAlreadyDecided
from approvals.model import ActionKind, RequestStatus, TaskStatus, Urgency
from approvals.trail import verify_chain
from deadlines.calendar import WorkingCalendar
from deadlines.ladder import (
    DEFAULT_LADDER,
    AutoAction,
    AutoActionKind,
    Ladder,
    LadderConfigError,
    PlannedRung,
    RungKind,
    compose_ping,
    in_quiet_hours,
    ladder_for,
    plan_rungs,
    template_problems,
)
from notifications.wording import format_duration
from tests.helpers import demo_org, step, template, who

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar(SH, ((time(9), time(12)), (time(13, 30), time(18))))
FOUR_HOURS = timedelta(hours=4)


def sh(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


def plan(
    activated: datetime,
    urgency: Urgency = Urgency.NORMAL,
    ladder: Ladder = DEFAULT_LADDER,
    limit: timedelta = FOUR_HOURS,
) -> dict[RungKind, datetime]:
    due = min(
        CAL.add_working_time(activated, limit),
        activated + timedelta(hours={Urgency.NORMAL: 24, Urgency.IMPORTANT: 12, Urgency.URGENT: 6}[urgency]),
    )
    rungs = plan_rungs(
        ladder, activated_at=activated, due_at=due, step_limit=limit, urgency=urgency, calendar=CAL
    )
    return {r.kind: r.at.astimezone(SH) for r in rungs}


# -- when each rung fires --------------------------------------------------------------------------
def test_default_ladder_reminds_at_half_time_supervises_at_due_and_escalates_one_limit_later() -> None:
    rungs = plan(sh(11, 23, 10))  # Monday 10:00, a 4 working-hour step: due 15:30

    assert rungs == {
        RungKind.REMIND: sh(11, 23, 12),  # 2 working hours in: the end of the morning still counts
        RungKind.DUE: sh(11, 23, 15, 30),
        RungKind.ESCALATE: sh(11, 24, 10, 30),  # 15:30 + 4 working hours: 2.5 h today, 1.5 h tomorrow
    }


def test_ladder_skips_the_national_day_holiday_and_counts_its_make_up_working_saturday() -> None:
    # Sent Wednesday 16:00 before the 1-7 October holiday: the 24 h cap makes it due 1 October
    # 16:00, a holiday, so the due rung waits for 8 October and escalation counts from there.
    before = plan(sh(9, 30, 16))

    assert before[RungKind.REMIND] == sh(9, 30, 17)  # half of the 2 working hours before the cap
    assert before[RungKind.DUE] == sh(10, 8, 9)
    assert before[RungKind.ESCALATE] == sh(10, 8, 14, 30)

    friday = plan(sh(10, 9, 16))  # Saturday 10 October is a make-up working day 调休
    assert friday[RungKind.DUE] == sh(10, 10, 11)


def test_quiet_hours_hold_rungs_until_the_next_working_start() -> None:
    # Sent Friday 17:00: the 24 h urgency cap makes it due Saturday 17:00, outside working time.
    rungs = plan(sh(11, 27, 17))

    assert rungs[RungKind.REMIND] == sh(11, 27, 17, 30)  # half of the one working hour left
    assert rungs[RungKind.DUE] == sh(11, 30, 9)  # waits for Monday morning
    assert rungs[RungKind.ESCALATE] == sh(11, 30, 14, 30)


def test_urgent_requests_are_chased_at_any_hour() -> None:
    rungs = plan(sh(11, 27, 17), Urgency.URGENT)  # 紧急: due 6 h after sending

    assert rungs[RungKind.DUE] == sh(11, 27, 23)
    assert all(
        r.quiet is False
        for r in plan_rungs(
            DEFAULT_LADDER,
            activated_at=sh(11, 27, 17),
            due_at=sh(11, 27, 23),
            step_limit=FOUR_HOURS,
            urgency=Urgency.URGENT,
            calendar=CAL,
        )
    )


def test_an_urgent_request_sent_at_night_is_reminded_halfway_in_real_time() -> None:
    rungs = plan(sh(11, 27, 20), Urgency.URGENT)  # no working time before the 02:00 due time

    assert rungs[RungKind.REMIND] == sh(11, 27, 23)
    assert rungs[RungKind.DUE] == sh(11, 28, 2)


def test_a_period_end_is_inside_working_hours_but_the_lunch_break_is_not() -> None:
    assert not in_quiet_hours(CAL, sh(11, 23, 12))
    assert in_quiet_hours(CAL, sh(11, 23, 12, 1))
    assert not in_quiet_hours(CAL, sh(11, 23, 18))
    assert in_quiet_hours(CAL, sh(11, 28, 10))  # Saturday


def test_rungs_carry_their_details_through_a_timer_row() -> None:
    rung = PlannedRung(RungKind.AUTO, sh(11, 24, 9), 3.0, action=AutoActionKind.TRANSFER, reason="超时转交")

    assert PlannedRung.from_data("auto", rung.at, rung.to_data()) == rung


# -- overrides -------------------------------------------------------------------------------------
def test_templates_and_steps_override_the_default_key_by_key() -> None:
    t = template(
        step("a", who("manager", 1), deadlines={"escalate": [2, 3], "auto": {"action": "transfer", "at": 4}}),
        step("b", who("manager", 1)),
        deadlines={"remind": 0.25, "quiet_hours": False},
    )

    assert ladder_for(t, "a") == Ladder(
        remind=0.25,
        supervise=1.0,
        escalate=(2.0, 3.0),
        auto=AutoAction(AutoActionKind.TRANSFER, 4.0),
        quiet_hours=False,
    )
    assert ladder_for(t, "b") == Ladder(remind=0.25, quiet_hours=False)
    assert ladder_for(template(step("a", who("manager", 1)))) == DEFAULT_LADDER


def test_rungs_can_be_switched_off() -> None:
    quiet = Ladder(remind=None, supervise=None, escalate=())
    t = template(
        step("a", who("manager", 1)), deadlines={"remind": False, "supervise": None, "escalate": False}
    )

    assert ladder_for(t, "a") == quiet
    assert plan(sh(11, 23, 10), ladder=quiet) == {}


def test_an_automatic_action_is_planned_at_its_point() -> None:
    lad = replace(DEFAULT_LADDER, auto=AutoAction(AutoActionKind.APPROVE, 3.0, "超时自动通过"))

    rungs = plan_rungs(
        lad,
        activated_at=sh(11, 23, 10),
        due_at=sh(11, 23, 15, 30),
        step_limit=FOUR_HOURS,
        urgency=Urgency.NORMAL,
        calendar=CAL,
    )

    auto = next(r for r in rungs if r.kind == RungKind.AUTO)
    assert auto.at.astimezone(SH) == sh(11, 24, 16)  # due + 2 step limits: 2.5 h Monday, 5.5 h Tuesday
    assert (auto.action, auto.reason) == (AutoActionKind.APPROVE, "超时自动通过")


def test_every_problem_in_a_deadlines_mapping_is_named() -> None:
    t = template(
        step("a", who("manager", 1), deadlines={"remind": -1, "auto": {"action": "explode", "at": 2}}),
        deadlines={"remnid": 0.5, "escalate": ["soon"], "quiet_hours": "yes"},
    )

    problems = template_problems(t)

    assert problems == [
        "template t: deadlines.remnid: unknown key; allowed: remind, supervise, escalate, auto, quiet_hours",
        "template t: deadlines.escalate: expected a positive number (a point of the ladder), got 'soon'",
        "template t: deadlines.quiet_hours: expected true or false, got 'yes'",
        "template t: steps.a.deadlines.remind: expected a positive number (a point of the ladder), got -1",
        "template t: steps.a.deadlines.auto.action: expected one of approve, transfer, reject, got 'explode'",
    ]
    with pytest.raises(LadderConfigError) as caught:
        ladder_for(t, "a")
    assert caught.value.problems == problems


# -- what a rung says --------------------------------------------------------------------------------
def _running(initiator: str = "u_wu", urgency: Urgency = Urgency.NORMAL):  # type: ignore[no-untyped-def]
    org = demo_org()
    t = template(
        step("mgr", who("manager", 1), name="直属领导审批"),
        step("vp", who("role", "deputy_gm"), name="副总审批"),
    )

    def deadline(req, st, task, now):  # type: ignore[no-untyped-def]
        return CAL.add_working_time(now, timedelta(hours=st.time_limit_hours))

    ctx = Context(template=t, org=org, now=sh(11, 23, 10), tz=SH, deadline_fn=deadline)
    out = engine.submit(ctx, request_id="r1", initiator=initiator, form={"reason": "测试"}, urgency=urgency)
    return out, t, org, ctx


def test_the_due_rung_reminds_the_assignee_and_supervises_their_manager() -> None:
    out, t, org, _ = _running()
    req, events = out.request, list(out.events)
    task = req.pending_tasks()[0]
    assert task.assignee == "u_sun"
    before = req.version

    ping = compose_ping(
        PlannedRung(RungKind.DUE, sh(11, 23, 15, 30), 1.0, level=1),
        request=req,
        task=task,
        template=t,
        org=org,
        tz=SH,
        now=sh(11, 23, 16, 5),
        public_url="http://oa",
    )

    assert [(m.kind, m.recipient) for m in ping.messages] == [("remind", "u_sun"), ("supervise", "u_li")]
    remind, supervise = (m.payload for m in ping.messages)
    assert remind["task_id"] == task.id and remind["version"] == task.version and remind["card"]["buttons"]
    assert "已超时 35 分钟" in remind["text"]
    assert supervise["text"].startswith("【督办】孙丽 的待办已超时 35 分钟：「测试审批」")
    assert "吴昊 提交" in supervise["text"] and "11-23 15:30" in supervise["text"]
    # The 督办 card: 催办 and 代为处理 call back, 转交 opens the person picker, 查看 the request.
    assert [(b["label"], b.get("url")) for b in supervise["buttons"]] == [
        ("催办", None),
        ("转交", f"/m/s/{task.id}/{task.version}"),
        ("查看", "http://oa/m/r/r1"),
    ]
    assert supervise["card"]["buttons"] == supervise["buttons"]
    assert supervise["overdue_s"] == 35 * 60
    assert [(e.kind, e.actor, e.after) for e in ping.events] == [
        ("reminded", "system", "u_sun"),
        ("supervised", "system", "u_li"),
    ]
    assert verify_chain(events + ping.events) == []
    assert req.version == before + 2


def test_escalation_goes_one_manager_higher_and_stops_at_the_top() -> None:
    out, t, org, _ = _running()
    req = out.request
    task = req.pending_tasks()[0]

    second = compose_ping(
        PlannedRung(RungKind.ESCALATE, sh(11, 24, 10, 30), 2.0, level=2),
        request=req,
        task=task,
        template=t,
        org=org,
        tz=SH,
        now=sh(11, 24, 10, 30),
        public_url="",
    )
    third = compose_ping(
        PlannedRung(RungKind.ESCALATE, sh(11, 24, 15), 3.0, level=3),
        request=req,
        task=task,
        template=t,
        org=org,
        tz=SH,
        now=sh(11, 24, 15),
        public_url="",
    )

    assert [(m.kind, m.recipient) for m in second.messages] == [("escalate", "u_zhang")]  # 孙丽 → 李娜 → 张伟
    assert "已督办 李娜" in second.messages[0].payload["text"]
    assert third.messages == [] and third.events == []  # nobody above the GM


def test_a_half_time_reminder_says_when_it_is_due() -> None:
    out, t, org, _ = _running()
    task = out.request.pending_tasks()[0]

    ping = compose_ping(
        PlannedRung(RungKind.REMIND, sh(11, 23, 12), 0.5),
        request=out.request,
        task=task,
        template=t,
        org=org,
        tz=SH,
        now=sh(11, 23, 12),
        public_url="",
    )

    assert [m.kind for m in ping.messages] == ["remind"]
    assert (
        ping.messages[0].payload["text"]
        == "【催办】「测试审批」测试审批 等待您同意，11-23 15:30 到期（一般）"
    )


def test_system_events_continue_the_hash_chain() -> None:
    out, *_ = _running()
    req = out.request
    e = engine.system_note(req, sh(11, 23, 11), SystemNote.DIGEST_SENT, after="u_sun", role="assignee")

    assert (e.seq, e.actor, e.channel) == (len(out.events) + 1, "system", "system")
    assert verify_chain([*out.events, e]) == []


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=20), "不到 1 分钟"),
        (timedelta(minutes=12), "12 分钟"),
        (timedelta(hours=3, minutes=5), "3 小时 5 分钟"),
        (timedelta(days=1, hours=2), "1 天 2 小时"),
        (timedelta(days=2), "2 天"),
    ],
)
def test_durations_read_naturally(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


# -- automatic decisions through the engine ---------------------------------------------------------
def test_auto_approve_moves_the_request_on_and_names_the_reason() -> None:
    out, _, _, ctx = _running()
    req = out.request
    task = req.pending_tasks()[0]

    auto = engine.system_act(
        replace(ctx, now=sh(11, 24, 15)), req, ActionKind.APPROVE, task.id, "超时自动通过"
    )

    assert task.status == TaskStatus.APPROVED and task.decided_by == "system"
    decided = next(e for e in auto.events if e.kind == "auto_approved")
    assert (decided.actor, decided.comment, decided.data["rule"]) == ("system", "超时自动通过", "deadline")
    assert [t.assignee for t in req.pending_tasks()] == ["u_li"]
    assert verify_chain([*out.events, *auto.events]) == []


def test_auto_reject_ends_the_request() -> None:
    out, _, _, ctx = _running()
    task = out.request.pending_tasks()[0]

    auto = engine.system_act(ctx, out.request, ActionKind.REJECT, task.id, "超时自动驳回")

    assert out.request.status == RequestStatus.REJECTED
    assert [e.kind for e in auto.events][-1] == "request_rejected"


def test_auto_transfer_hands_the_task_to_the_manager_with_a_fresh_deadline() -> None:
    out, _, org, ctx = _running()
    task = out.request.pending_tasks()[0]
    later = replace(ctx, now=sh(11, 24, 10, 30))

    auto = engine.system_act(
        later, out.request, ActionKind.TRANSFER, task.id, "超时转交", target=org.manager_of(task.assignee)
    )

    new = out.request.pending_tasks()[0]
    assert (task.status, new.assignee, new.origin) == (TaskStatus.TRANSFERRED, "u_li", "transfer")
    assert new.due_at is not None and new.due_at > later.now
    assert next(e for e in auto.events if e.kind == "auto_transferred").after == "u_li"


def test_automatic_decisions_are_refused_like_anyone_elses() -> None:
    out, _, _, ctx = _running()
    task = out.request.pending_tasks()[0]

    with pytest.raises(BadTarget):
        engine.system_act(ctx, out.request, ActionKind.TRANSFER, task.id, "x", target=None)
    with pytest.raises(ActionNotAllowed):
        engine.system_act(ctx, out.request, ActionKind.WITHDRAW, task.id, "x")
    engine.system_act(ctx, out.request, ActionKind.APPROVE, task.id, "x")
    with pytest.raises(TaskAlreadyDecided):
        engine.system_act(ctx, out.request, ActionKind.APPROVE, task.id, "x")


def test_a_reminder_for_a_task_no_longer_pending_is_refused_and_changes_nothing() -> None:
    out, t, org, ctx = _running()
    req = out.request
    task = req.pending_tasks()[0]
    engine.system_act(ctx, req, ActionKind.APPROVE, task.id, "x")
    seq, version = req.last_seq, req.version

    with pytest.raises(TaskAlreadyDecided):
        compose_ping(
            PlannedRung(RungKind.DUE, sh(11, 23, 15, 30), 1.0, level=1),
            request=req,
            task=task,
            template=t,
            org=org,
            tz=SH,
            now=sh(11, 23, 16, 5),
            public_url="",
        )
    assert (req.last_seq, req.version) == (seq, version)
