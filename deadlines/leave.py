"""The delegation 代理 an approved leave 请假 request sets up for its dates.

The delegate is the form's `delegate` field, else the initiator's manager; the period is the
form's daterange `period` ({start, end} dates in the organisation's timezone, end inclusive),
from the start day's midnight to the midnight after the end day. The delegation moves the
person's pending tasks to the delegate when it starts (`move_pending`), and new tasks meant for
them go to the delegate while it lasts.

Pure: returns the delegation to store, or why there is none; it never raises for a bad form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from approvals.engine import validate_delegation
from approvals.errors import ApprovalError
from approvals.model import Delegation, Request
from org.model import Org

LEAVE_TEMPLATE = "leave"


@dataclass(frozen=True)
class LeavePlan:
    """The delegation to store, or why there is none: `problem` in words, or the engine's
    `refusal` of the delegation (its words come from `notifications.messages`)."""

    delegation: Delegation | None
    problem: str | None = None
    refusal: ApprovalError | None = None


def delegation_id(request_id: str) -> str:
    """One delegation per leave request: its id is derived from the request's."""
    return f"d-leave-{request_id}"


def _day(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def leave_delegation(request: Request, *, org: Org, tz: ZoneInfo, now: datetime) -> LeavePlan:
    """The delegation for an approved leave request, or the reason none is made."""
    period = request.form.get("period")
    start = _day(period.get("start")) if isinstance(period, dict) else None
    end = _day(period.get("end")) if isinstance(period, dict) else None
    if start is None or end is None or end < start:
        return LeavePlan(None, "请假日期缺失或无效，未设置代理")
    starts_at = datetime.combine(start, time(0), tz)
    ends_at = datetime.combine(end + timedelta(days=1), time(0), tz)
    if ends_at <= now:
        return LeavePlan(None, "请假期间已结束，未设置代理")
    delegate = request.form.get("delegate") or org.manager_of(request.initiator)
    if not isinstance(delegate, str) or not delegate:
        return LeavePlan(None, "没有指定工作代理人，也没有直属领导，未设置代理")
    d = Delegation(
        id=delegation_id(request.id),
        delegator=request.initiator,
        delegate=delegate,
        starts_at=starts_at,
        ends_at=ends_at,
        move_pending=True,
        reason=f"请假：{request.title}",
        created_at=now,
        source_request=request.id,
    )
    try:
        validate_delegation(org, d)
    except ApprovalError as exc:
        return LeavePlan(None, refusal=exc)
    return LeavePlan(d)
