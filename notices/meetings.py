"""Meeting notices 会议通知: RSVP 回执, reminders before the meeting, the attendance list.

- `check_rsvp` decides whether an answer may be recorded: 参加 attend, 不参加 decline (a reason
  is required), 请假 leave (a reason may be given), 委派他人参加 delegate (to an active member of
  the organisation, not oneself, and never so that the delegations go round in a loop). Only
  people the meeting was sent to (or a delegate added to it) answer, and only before it starts.
  Answering again replaces the earlier answer.
- `reminder_times` says when to remind: by default 1 working hour before the start (counted
  back on the working calendar, so a Monday 09:00 meeting is reminded on Friday afternoon) and
  15 minutes before; reminders already in the past are dropped.
- `attendance` sorts the invited into who attends, who declined (with the reason), who is on
  leave, who delegated to whom, and who has not answered; `to_remind` is who gets reminders.

Pure: no I/O, no clock; `now` and the calendar come in. Refusals are `RsvpRefused`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol

from notices.model import OffsetUnit, RemindOffset, RsvpAnswer
from org.errors import Category, DomainError

REASON_MAX = 200
SEARCH_DAYS = 3 * 366  # how far back a working-time search goes before giving up


class RsvpRefused(DomainError):
    code = "rsvp_refused"
    category = Category.INVALID


def offset_code(r: RemindOffset) -> str:
    """A short stable name of a reminder for its timer key: `1wh`, `15m`."""
    return f"{r.amount}{'wh' if r.unit == OffsetUnit.WORKING_HOURS else 'm'}"


@dataclass(frozen=True)
class Rsvp:
    person: str
    answer: RsvpAnswer
    reason: str | None
    delegate: str | None
    at: datetime


class WorkingDays(Protocol):
    """What the reminder arithmetic needs of a calendar (`deadlines.calendar.WorkingCalendar`)."""

    @property
    def tz(self) -> tzinfo: ...
    @property
    def periods(self) -> tuple[tuple[time, time], ...]: ...
    def is_working_day(self, d: date) -> bool: ...


# -- reminders ------------------------------------------------------------------------------------
def working_time_before(calendar: WorkingDays, at: datetime, duration: timedelta) -> datetime:
    """The latest instant from which `duration` of working time has passed by `at`
    (`at` itself for zero). Counted back through the working periods of working days."""
    if at.tzinfo is None:
        raise ValueError("working_time_before needs an aware datetime")
    remaining = duration
    if remaining <= timedelta(0):
        return at
    day = at.astimezone(calendar.tz).date()
    for _ in range(SEARCH_DAYS):
        if calendar.is_working_day(day):
            for start, end in reversed(calendar.periods):
                begins = datetime.combine(day, start, tzinfo=calendar.tz).astimezone(UTC)
                ends = min(datetime.combine(day, end, tzinfo=calendar.tz).astimezone(UTC), at)
                if ends <= begins:
                    continue
                if remaining <= ends - begins:
                    return ends - remaining
                remaining -= ends - begins
        day -= timedelta(days=1)
    raise ValueError(f"no working time within {SEARCH_DAYS} days before {at.isoformat()}")


def reminder_times(
    starts_at: datetime,
    reminders: Sequence[RemindOffset],
    calendar: WorkingDays,
    *,
    now: datetime,
) -> list[tuple[RemindOffset, datetime]]:
    """When each reminder goes out, in time order; none in the past, none twice at one instant."""
    planned: dict[datetime, RemindOffset] = {}
    for r in reminders:
        if r.amount <= 0:
            continue
        if r.unit == OffsetUnit.WORKING_HOURS:
            at = working_time_before(calendar, starts_at, timedelta(hours=r.amount))
        else:
            at = starts_at - timedelta(minutes=r.amount)
        if now < at < starts_at:
            planned.setdefault(at.astimezone(UTC), r)
    return sorted(((r, at) for at, r in planned.items()), key=lambda p: p[1])


# -- RSVP -----------------------------------------------------------------------------------------
def delegation_chain(start: str, rsvps: Mapping[str, Rsvp]) -> list[str]:
    """`start`, the person `start` delegated to, the one they delegated to, ... (stops at a repeat)."""
    chain = [start]
    current = rsvps.get(start)
    while current is not None and current.answer == RsvpAnswer.DELEGATE and current.delegate:
        if current.delegate in chain:
            break
        chain.append(current.delegate)
        current = rsvps.get(current.delegate)
    return chain


def _reason(raw: str | None) -> str | None:
    text = (raw or "").strip() or None
    if text is not None and len(text) > REASON_MAX:
        raise RsvpRefused("rsvp_refused.reason_too_long", limit=REASON_MAX)
    return text


def check_rsvp(
    *,
    person: str,
    answer: RsvpAnswer,
    reason: str | None,
    delegate: str | None,
    invited: Collection[str],
    is_active: Callable[[str], bool],
    rsvps: Mapping[str, Rsvp],
    starts_at: datetime,
    now: datetime,
) -> Rsvp:
    """The answer to record, or a refusal saying why it cannot be."""
    if person not in invited:
        raise RsvpRefused("rsvp_refused.not_invited", person=person)
    if now >= starts_at:
        raise RsvpRefused("rsvp_refused.started", shown={"starts_at": starts_at})
    text = _reason(reason)
    if answer == RsvpAnswer.DECLINE and text is None:
        raise RsvpRefused("rsvp_refused.reason_required")
    if answer != RsvpAnswer.DELEGATE:
        kept = None if answer == RsvpAnswer.ATTEND else text
        return Rsvp(person, answer, kept, None, now)
    target = (delegate or "").strip()
    if not target:
        raise RsvpRefused("rsvp_refused.delegate_missing")
    if target == person:
        raise RsvpRefused("rsvp_refused.delegate_self")
    if not is_active(target):
        raise RsvpRefused("rsvp_refused.delegate_not_staff", delegate=target)
    if person in delegation_chain(target, rsvps):
        raise RsvpRefused("rsvp_refused.delegate_loop", delegate=target)
    return Rsvp(person, answer, text, target, now)


def same_answer(a: Rsvp | None, b: Rsvp) -> bool:
    """Whether `b` says what `a` already said (a repeated tap records nothing new)."""
    return a is not None and (a.answer, a.reason, a.delegate) == (b.answer, b.reason, b.delegate)


# -- the attendance list --------------------------------------------------------------------------
@dataclass(frozen=True)
class AttendanceLine:
    person: str
    answer: RsvpAnswer | None  # None: not answered
    reason: str | None
    delegate: str | None  # whom they delegated to
    delegated_by: tuple[str, ...]  # who delegated to them (a delegate added to the meeting)
    at: datetime | None


@dataclass(frozen=True)
class Attendance:
    lines: tuple[AttendanceLine, ...]

    def _of(self, answer: RsvpAnswer | None) -> list[AttendanceLine]:
        return [line for line in self.lines if line.answer == answer]

    @property
    def attending(self) -> list[AttendanceLine]:
        return self._of(RsvpAnswer.ATTEND)

    @property
    def declined(self) -> list[AttendanceLine]:
        return self._of(RsvpAnswer.DECLINE)

    @property
    def on_leave(self) -> list[AttendanceLine]:
        return self._of(RsvpAnswer.LEAVE)

    @property
    def delegated(self) -> list[AttendanceLine]:
        return self._of(RsvpAnswer.DELEGATE)

    @property
    def unanswered(self) -> list[AttendanceLine]:
        return self._of(None)


def attendance(invited: Sequence[str], rsvps: Mapping[str, Rsvp]) -> Attendance:
    """Every invited person (delegates added to the meeting included) with their answer."""
    by: dict[str, list[str]] = {}
    for given in rsvps.values():
        if given.answer == RsvpAnswer.DELEGATE and given.delegate:
            by.setdefault(given.delegate, []).append(given.person)
    people = list(dict.fromkeys([*invited, *by]))
    lines = []
    for p in people:
        r = rsvps.get(p)
        lines.append(
            AttendanceLine(
                person=p,
                answer=r.answer if r else None,
                reason=r.reason if r else None,
                delegate=r.delegate if r else None,
                delegated_by=tuple(sorted(by.get(p, []))),
                at=r.at if r else None,
            )
        )
    return Attendance(tuple(lines))


def to_remind(invited: Sequence[str], rsvps: Mapping[str, Rsvp]) -> list[str]:
    """Who is reminded: everyone invited (delegates included) who has not declined, gone on
    leave or handed the meeting to someone else."""
    away = {RsvpAnswer.DECLINE, RsvpAnswer.LEAVE, RsvpAnswer.DELEGATE}
    return [line.person for line in attendance(invited, rsvps).lines if line.answer not in away]
