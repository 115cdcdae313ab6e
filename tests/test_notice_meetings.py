"""Meetings 会议通知, pure rules: RSVP 回执 (decline needs a reason, 委派 only to active staff,
never in a loop), reminders on the working calendar, the attendance list."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from deadlines.calendar import WorkingCalendar
from notices.meetings import (
    Rsvp,
    RsvpRefused,
    attendance,
    check_rsvp,
    offset_code,
    reminder_times,
    to_remind,
    working_time_before,
)
from notices.model import DEFAULT_MEETING_REMINDERS as DEFAULT_REMINDERS
from notices.model import OffsetUnit, RemindOffset, RsvpAnswer
from notifications.messages import message_for

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar(SH, [(time(9), time(12)), (time(13, 30), time(18))])
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
STARTS = datetime(2026, 11, 25, 14, 0, tzinfo=SH)
INVITED = ("u_a", "u_b", "u_c")
STAFF = {"u_a", "u_b", "u_c", "u_d"}


def _rsvp(person: str, answer: RsvpAnswer, *, reason: str | None = None, delegate: str | None = None,
          rsvps: dict[str, Rsvp] | None = None, invited: tuple[str, ...] = INVITED) -> Rsvp:  # fmt: skip
    return check_rsvp(
        person=person,
        answer=answer,
        reason=reason,
        delegate=delegate,
        invited=invited,
        is_active=STAFF.__contains__,
        rsvps=rsvps or {},
        starts_at=STARTS,
        now=NOW,
    )


def _refused(code: str, **kw: object) -> str:
    with pytest.raises(RsvpRefused) as info:
        _rsvp(**kw)  # type: ignore[arg-type]
    assert info.value.reason == code
    words = message_for(info.value)
    assert words != "操作未能完成"
    return words


def test_decline_needs_a_reason() -> None:
    assert "原因" in _refused(
        "rsvp_refused.reason_required", person="u_a", answer=RsvpAnswer.DECLINE, reason="  "
    )
    ok = _rsvp("u_a", RsvpAnswer.DECLINE, reason="出差")
    assert (ok.answer, ok.reason) == (RsvpAnswer.DECLINE, "出差")


def test_leave_may_give_a_reason_and_attend_keeps_none() -> None:
    assert _rsvp("u_a", RsvpAnswer.LEAVE).reason is None
    assert _rsvp("u_a", RsvpAnswer.LEAVE, reason="病假").reason == "病假"
    assert _rsvp("u_a", RsvpAnswer.ATTEND, reason="x").reason is None


def test_delegate_must_be_active_staff_and_not_oneself() -> None:
    _refused("rsvp_refused.delegate_missing", person="u_a", answer=RsvpAnswer.DELEGATE)
    _refused("rsvp_refused.delegate_self", person="u_a", answer=RsvpAnswer.DELEGATE, delegate="u_a")
    words = _refused(
        "rsvp_refused.delegate_not_staff", person="u_a", answer=RsvpAnswer.DELEGATE, delegate="外人"
    )
    assert "在职" in words
    ok = _rsvp("u_a", RsvpAnswer.DELEGATE, delegate="u_d")
    assert ok.delegate == "u_d"


def test_delegations_never_go_round_in_a_loop() -> None:
    a_to_d = _rsvp("u_a", RsvpAnswer.DELEGATE, delegate="u_d")
    d_to_b = _rsvp(
        "u_d", RsvpAnswer.DELEGATE, delegate="u_b", rsvps={"u_a": a_to_d}, invited=(*INVITED, "u_d")
    )
    rsvps = {"u_a": a_to_d, "u_d": d_to_b}
    _refused("rsvp_refused.delegate_loop", person="u_b", answer=RsvpAnswer.DELEGATE, delegate="u_a",
             rsvps=rsvps)  # fmt: skip
    _refused("rsvp_refused.delegate_loop", person="u_d", answer=RsvpAnswer.DELEGATE, delegate="u_a",
             rsvps=rsvps, invited=(*INVITED, "u_d"))  # fmt: skip
    assert _rsvp("u_b", RsvpAnswer.DELEGATE, delegate="u_c", rsvps=rsvps).delegate == "u_c"


def test_only_the_invited_answer_and_only_before_the_start() -> None:
    _refused("rsvp_refused.not_invited", person="u_d", answer=RsvpAnswer.ATTEND)
    with pytest.raises(RsvpRefused) as info:
        check_rsvp(person="u_a", answer=RsvpAnswer.ATTEND, reason=None, delegate=None, invited=INVITED,
                   is_active=STAFF.__contains__, rsvps={}, starts_at=STARTS, now=STARTS)  # fmt: skip
    assert info.value.reason == "rsvp_refused.started"


def test_attendance_list_and_who_is_reminded() -> None:
    rsvps = {
        "u_a": _rsvp("u_a", RsvpAnswer.DELEGATE, delegate="u_d"),
        "u_b": _rsvp("u_b", RsvpAnswer.DECLINE, reason="外出"),
    }
    att = attendance(INVITED, rsvps)
    assert [line.person for line in att.lines] == ["u_a", "u_b", "u_c", "u_d"]
    assert [(line.person, line.delegate) for line in att.delegated] == [("u_a", "u_d")]
    assert [(line.person, line.reason) for line in att.declined] == [("u_b", "外出")]
    assert [(line.person, line.delegated_by) for line in att.unanswered] == [("u_c", ()), ("u_d", ("u_a",))]
    assert to_remind(INVITED, rsvps) == ["u_c", "u_d"]


def test_reminders_one_working_hour_and_fifteen_minutes_before() -> None:
    four = STARTS.replace(hour=16)
    times = reminder_times(four, DEFAULT_REMINDERS, CAL, now=NOW)
    assert [at.astimezone(SH).strftime("%a %H:%M") for _, at in times] == ["Wed 15:00", "Wed 15:45"]
    # across lunch: 14:00 less one working hour is half an hour before the 13:30 start, so 11:30
    times = reminder_times(STARTS, DEFAULT_REMINDERS, CAL, now=NOW)
    assert [at.astimezone(SH).strftime("%a %H:%M") for _, at in times] == ["Wed 11:30", "Wed 13:45"]


def test_a_monday_morning_meeting_is_reminded_on_friday_afternoon() -> None:
    monday_9 = datetime(2026, 11, 30, 9, 0, tzinfo=SH)
    friday = datetime(2026, 11, 27, 9, 0, tzinfo=SH)
    times = reminder_times(monday_9, DEFAULT_REMINDERS, CAL, now=friday)
    assert [at.astimezone(SH).strftime("%a %d %H:%M") for _, at in times] == ["Fri 27 17:00", "Mon 30 08:45"]
    # half an hour into Monday: half an hour of Friday's afternoon is left
    assert working_time_before(CAL, monday_9 + timedelta(minutes=30), timedelta(hours=1)).astimezone(
        SH
    ) == datetime(2026, 11, 27, 17, 30, tzinfo=SH)


def test_reminders_in_the_past_are_dropped_and_configurable() -> None:
    soon = NOW + timedelta(minutes=20)
    assert [offset_code(r) for r, _ in reminder_times(soon, DEFAULT_REMINDERS, CAL, now=NOW)] == ["15m"]
    custom = (RemindOffset(2, OffsetUnit.WORKING_HOURS), RemindOffset(30, OffsetUnit.MINUTES))
    times = reminder_times(STARTS.replace(hour=16), custom, CAL, now=NOW)
    assert [at.astimezone(SH).strftime("%H:%M") for _, at in times] == ["14:00", "15:30"]
