"""The notice rules: who an audience reaches, what a receipt may become, whether publishing
needs the office, which confidentiality levels may go through the system and to whom, when a
recall is allowed, and when an unanswered receipt defaults to received.

Pure: no I/O, `now` and the organisation are passed in. Every refusal is a `notices.errors`
error carrying its context (the wording is `notifications.messages`').
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from notices.errors import (
    AudienceInvalid,
    ConfidentialityRefused,
    IllegalReceiptMove,
    NoticeInvalid,
    RecallRefused,
    RestrictedAudience,
)
from notices.model import (
    BODY_MAX,
    TITLE_MAX,
    Audience,
    Confidentiality,
    Meeting,
    Notice,
    NoticeKind,
    Poll,
    Receipt,
    ReceiptState,
)
from org.model import Org

# -- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeRules:
    """What the organisation configured (`Settings.notices`).

    - `refuse_from`: levels at or above it do not go through the system (default 机密; set it to
      `secret` to refuse 秘密 as well; None refuses none). OABOT_CONFIDENTIALITY_REFUSED_FROM, shared with documents.
    - `restricted_from`: levels at or above it (and items flagged named-only) go to named people
      only and their cards show the title only (秘密 and above).
    - publishing needs the office's approval for everyone, more than one department, and any
      announcement; `direct_own_department` / `direct_named_people` let a notice to one's own
      department / to named people go out directly (True by default); `approval_always` sends
      everything to the office.
    - `ack_working_days`: an unanswered receipt defaults to received at the end of the Nth working
      day after the publishing day (1: the end of the next working day).
    - password: `password_tries` wrong tries in a row lock a person out of that item for
      `lockout` (5, 15 minutes).
    - `urge_interval`: 催办 at most once per notice in this time (30 minutes, as for approvals).
    """

    refuse_from: Confidentiality | None = Confidentiality.CONFIDENTIAL  # None: refuse no level
    restricted_from: Confidentiality = Confidentiality.SECRET
    direct_own_department: bool = True
    direct_named_people: bool = True
    approval_always: bool = False
    ack_working_days: int = 1
    password_tries: int = 5
    lockout: timedelta = timedelta(minutes=15)
    urge_interval: timedelta = timedelta(minutes=30)


DEFAULT_RULES = NoticeRules()


# -- audiences ----------------------------------------------------------------------------------


def check_audience(org: Org, audience: Audience) -> None:
    """Refuse an audience that names nothing, or names a department or person that does not
    exist; a group that happens to reach nobody active is refused by `resolve_audience`."""
    if audience.is_empty:
        raise AudienceInvalid("audience_invalid.empty")
    for pick in audience.departments:
        if org.department(pick.id) is None:
            raise AudienceInvalid("audience_invalid.department", department=pick.id)
    for person in audience.people:
        if org.user(person) is None:
            raise AudienceInvalid("audience_invalid.person", person=person)


def resolve_audience(org: Org, audience: Audience, *, exclude: Iterable[str] = ()) -> tuple[str, ...]:
    """The active people an audience reaches, each once, in a stable order (name, then id).

    Everyone, the departments (with their sub-departments when picked so), the job levels, the
    roles and the named people are joined; people who left are never addressed; `exclude` (the
    author) is left out. Refuses an audience that reaches nobody.
    """
    check_audience(org, audience)
    chosen: set[str] = set()
    if audience.everyone:
        chosen.update(u.id for u in org.users.values())
    for pick in audience.departments:
        chosen.update(org.members_of(pick.id, include_sub=pick.with_sub))
    if audience.levels:
        levels = set(audience.levels)
        chosen.update(u.id for u in org.users.values() if u.level is not None and u.level in levels)
    for role in audience.roles:
        chosen.update(org.role_holders(role))
    chosen.update(audience.people)
    skip = set(exclude)
    people = [org.users[p] for p in chosen if p in org.users and org.users[p].active and p not in skip]
    if not people:
        raise AudienceInvalid("audience_invalid.nobody")
    return tuple(u.id for u in sorted(people, key=lambda u: (u.name, u.id)))


def departments_reached(org: Org, audience: Audience) -> set[str]:
    """The departments an audience names, sub-departments included where picked so."""
    out: set[str] = set()
    for pick in audience.departments:
        out.add(pick.id)
        if pick.with_sub:
            out.update(org.sub_departments(pick.id))
    return out


# -- approval before publishing -------------------------------------------------------------------


def needs_approval(
    org: Org, *, author: str, kind: NoticeKind, audience: Audience, rules: NoticeRules
) -> bool:
    """Whether the office approves it before it goes out (`notice_publish`).

    Everyone, more than one department (a department with its sub-departments counts as more
    than one when it has any), levels or roles, and any announcement: yes. One's own department
    alone, or named people alone: directly, unless configured otherwise.
    """
    if rules.approval_always or kind == NoticeKind.ANNOUNCEMENT or audience.everyone:
        return True
    if audience.levels or audience.roles:
        return True
    if len(departments_reached(org, audience)) > 1:
        return True
    if audience.departments:
        user = org.user(author)
        own = user is not None and audience.departments[0].id == user.department
        if not (own and rules.direct_own_department):
            return True
    return bool(audience.people) and not rules.direct_named_people


# -- confidentiality ------------------------------------------------------------------------------


def is_restricted(level: Confidentiality, *, named_only: bool, rules: NoticeRules) -> bool:
    return named_only or level.at_least(rules.restricted_from)


def check_confidentiality(
    level: Confidentiality, *, named_only: bool, audience: Audience, rules: NoticeRules
) -> None:
    """Refuse a level at or above the threshold (it does not go through the system), and a
    restricted item addressed to anything but named people."""
    if rules.refuse_from is not None and level.at_least(rules.refuse_from):
        raise ConfidentialityRefused(level=level.value, threshold=rules.refuse_from.value)
    if is_restricted(level, named_only=named_only, rules=rules) and not audience.people_only:
        if level.at_least(rules.restricted_from):
            raise RestrictedAudience(level=level.value)
        raise RestrictedAudience("restricted_audience.named_only", level=level.value)


def check_draft(
    *,
    title: str,
    body: str,
    kind: NoticeKind,
    now: datetime,
    ack_deadline: datetime | None,
    pinned_until: datetime | None,
    has_meeting: bool,
    has_poll: bool,
) -> None:
    """The parts of a draft every kind needs."""
    if not title.strip():
        raise NoticeInvalid("notice_invalid.title")
    if len(title) > TITLE_MAX:
        raise NoticeInvalid("notice_invalid.title_long", most=TITLE_MAX, length=len(title))
    if len(body) > BODY_MAX:
        raise NoticeInvalid("notice_invalid.body_long", most=BODY_MAX, length=len(body))
    if "\x00" in title or "\x00" in body:
        raise NoticeInvalid("notice_invalid.unstorable")
    if ack_deadline is not None and ack_deadline <= now:
        raise NoticeInvalid("notice_invalid.deadline_past")
    if kind == NoticeKind.ANNOUNCEMENT and pinned_until is not None and pinned_until <= now:
        raise NoticeInvalid("notice_invalid.pinned_past")
    if kind == NoticeKind.MEETING and not has_meeting:
        raise NoticeInvalid("notice_invalid.meeting_missing")
    if kind == NoticeKind.POLL and not has_poll:
        raise NoticeInvalid("notice_invalid.poll_missing")


def check_meeting(meeting: Meeting, *, now: datetime) -> None:
    """A meeting still ahead (its reminders and 回执 come before it starts), ending after it starts."""
    if meeting.starts_at <= now:
        raise NoticeInvalid("notice_invalid.meeting_past")
    if meeting.ends_at <= meeting.starts_at:
        raise NoticeInvalid("notice_invalid.meeting_ends")


def check_poll(poll: Poll) -> None:
    """A poll every question of which can be answered, and told apart in a ballot."""
    if not poll.questions:
        raise NoticeInvalid("notice_invalid.poll_missing")
    seen: set[str] = set()
    for q in poll.questions:
        if q.id in seen:
            raise NoticeInvalid("notice_invalid.poll_question_twice", question_id=q.id)
        seen.add(q.id)
        if len(q.options) < 2 and not q.free_text:
            raise NoticeInvalid("notice_invalid.poll_options", shown={"question": q.text})


# -- receipts -------------------------------------------------------------------------------------

# The one table of receipt moves: target state -> the states it may be reached from.
RECEIPT_MOVES: dict[ReceiptState, frozenset[ReceiptState]] = {
    ReceiptState.OPENED: frozenset({ReceiptState.SENT}),
    ReceiptState.ACKNOWLEDGED: frozenset({ReceiptState.SENT, ReceiptState.OPENED}),
    ReceiptState.DEFAULTED: frozenset({ReceiptState.SENT, ReceiptState.OPENED}),
}


def may_move(current: ReceiptState, target: ReceiptState) -> bool:
    return current in RECEIPT_MOVES.get(target, frozenset())


def move_from(target: ReceiptState) -> frozenset[ReceiptState]:
    """The states a receipt may be in to be moved to `target` (the conditional update's guard)."""
    return RECEIPT_MOVES.get(target, frozenset())


def move_receipt(receipt: Receipt, target: ReceiptState, *, now: datetime, channel: str) -> Receipt:
    """The receipt after the move, or IllegalReceiptMove (a second 已收到, a late default)."""
    if not may_move(receipt.state, target):
        if receipt.state == ReceiptState.ACKNOWLEDGED:
            raise IllegalReceiptMove(
                "receipt_move.acknowledged", current=receipt.state.value, target=target.value
            )
        if receipt.state == ReceiptState.DEFAULTED:
            raise IllegalReceiptMove(
                "receipt_move.defaulted", current=receipt.state.value, target=target.value
            )
        raise IllegalReceiptMove(current=receipt.state.value, target=target.value)
    if target == ReceiptState.OPENED:
        return replace(receipt, state=target, opened_at=now, opened_via=channel, version=receipt.version + 1)
    if target == ReceiptState.ACKNOWLEDGED:
        return replace(
            receipt,
            state=target,
            acknowledged_at=now,
            acknowledged_via=channel,
            opened_at=receipt.opened_at or now,
            opened_via=receipt.opened_via or channel,
            version=receipt.version + 1,
        )
    return replace(receipt, state=target, defaulted_at=now, version=receipt.version + 1)


# -- recall ---------------------------------------------------------------------------------------


def check_recall(notice: Notice, receipts: Iterable[Receipt]) -> None:
    """A recall is allowed while nobody opened it; else refused naming who opened it and when
    (earliest first)."""
    openers = sorted((r.opened_at, r.person) for r in receipts if r.opened_at is not None)
    if openers:
        raise RecallRefused(notice_id=notice.id, openers=[(person, at) for at, person in openers])


# -- the access password --------------------------------------------------------------------------


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    """Whether a person is still locked out of an item (too many wrong passwords)."""
    return locked_until is not None and locked_until > now


def after_wrong_password(failures: int, now: datetime, rules: NoticeRules) -> tuple[int, datetime | None]:
    """(failures in a row, locked until) after one more wrong try: the Nth locks and restarts the count."""
    failures += 1
    if failures >= rules.password_tries:
        return 0, now + rules.lockout
    return failures, None


# -- the default 已收到 deadline --------------------------------------------------------------------


def ack_deadline(
    published_at: datetime,
    *,
    tz: ZoneInfo,
    is_working_day: Callable[[date], bool],
    day_end: time,
    working_days: int = 1,
) -> datetime:
    """The end (`day_end`, the last working period's end) of the `working_days`th working day
    after the publishing day, on the organisation's calendar (weekends, holidays and 调休 make-up
    days as the calendar says). 0: the end of the publishing day if it is a working day."""
    day = published_at.astimezone(tz).date()
    counted = 0
    if working_days <= 0 and is_working_day(day):
        return datetime.combine(day, day_end, tzinfo=tz)
    for _ in range(366 * 3):
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
            if counted >= max(working_days, 1):
                return datetime.combine(day, day_end, tzinfo=tz)
    raise ValueError("no working day within three years")  # an impossible calendar


def urge_retry_at(last: datetime | None, now: datetime, rules: NoticeRules) -> datetime | None:
    """None when 催办 is allowed now, else when it will be."""
    if last is None or now - last >= rules.urge_interval:
        return None
    return last + rules.urge_interval
