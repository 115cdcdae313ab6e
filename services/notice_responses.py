"""Answers to meeting notices 会议通知 and polls 调查: RSVP 回执 (with 委派), votes, results with
their charts, the organiser's attendance list (and its CSV), and the reminders before a meeting.

Each change is one transaction: the RSVP or votes, the notice trail (`notice_events`), the
recipient's receipt moved to acknowledged (an RSVP or a vote counts as 已收到, through the
receipt transition of `notices.rules`), a delegate's receipt (added by the person who delegated)
and the message telling them, all commit together or not at all. A repeated answer changes
nothing. The notice's row is locked while a meeting's answers change (PostgreSQL), so two
people delegating to each other at once cannot both succeed.

Reminders are `meeting_remind` timers on the one timer table, written by
`schedule_meeting_reminders` in the transaction that publishes the meeting (n1's publish calls
it); each fires once whatever the number of replicas and reminds the attendees who have not
declined, gone on leave or handed the meeting on.

The rules are `notices.meetings` and `notices.polls`; this module loads, calls them and stores.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from deadlines import timers
from deadlines.calendar import WorkingCalendar
from deadlines.timer_kinds import FireResult, TimerKinds
from deadlines.timers import Timer, TimerKind, TimerStatus
from notices import meetings, polls
from notices.errors import NotAuthor, NoticeNotFound, NoticeNotPublished, NotRecipient, PasswordRequired
from notices.meetings import Rsvp, RsvpRefused
from notices.model import (
    DEFAULT_MEETING_REMINDERS,
    Meeting,
    Notice,
    NoticeEvent,
    NoticeEventKind,
    NoticeKind,
    NoticeStatus,
    Poll,
    Question,
    Receipt,
    ReceiptState,
    RsvpAnswer,
    parse_card_task_id,
)
from notices.polls import Answer, OptionCount, PollRefused
from notices.rules import DEFAULT_RULES, NoticeRules, is_restricted, move_from
from notifications import meeting_wording as words
from notifications.notice_wording import STATUS_LABEL, notice_card_message
from org.errors import Category
from org.model import Org
from reports.poll_chart import ChartBar, poll_bar_chart
from services.directory import Directory
from services.links import PersonalLinks
from storage import notice_response_store as answers
from storage import notice_store as store
from storage.approval_models import OutboxRow
from storage.db import Database

logger = logging.getLogger(__name__)

CARD_CLOSED = "card_closed"  # the recipient's notice card, updated in place
TAP_ANSWERS = {"rsvp_attend": RsvpAnswer.ATTEND, "rsvp_leave": RsvpAnswer.LEAVE}  # rsvp_decline: the page
RSVP_TAP_ACTIONS = frozenset({"rsvp_attend", "rsvp_leave", "rsvp_decline"})


def poll_results_page(notice_id: str) -> str:
    """The poll's page: the ballot, and its results to those who voted and to the author."""
    return f"/m/n/{notice_id}/poll"


CSV_HEADERS = ("姓名", "部门", "回执", "原因", "委派给", "受谁委派", "回执时间")


class ResultsHidden(PollRefused):
    """Results are shown to those who voted and to the author."""

    code = "poll_results_hidden"
    category = Category.FORBIDDEN


class Unlock(Protocol):
    async def __call__(
        self, *, viewer: str, notice_id: str, password: str, channel: str = "web"
    ) -> object: ...


class AddRecipient(Protocol):
    async def __call__(
        self,
        session: AsyncSession,
        *,
        notice_id: str,
        person: str,
        added_by: str,
        now: datetime,
        channel: str = "web",
        org: Org | None = None,
    ) -> Receipt | None: ...


class CalendarSource(Protocol):
    """The organisation's working calendar, current overrides included (`OrgCalendar`)."""

    @property
    def current(self) -> WorkingCalendar: ...


# -- views ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PersonPick:
    id: str
    name: str
    title: str
    department: str


@dataclass(frozen=True)
class RsvpPage:
    notice_id: str
    title: str
    starts: str  # 11-25（周三）14:00
    ends: str
    place: str
    agenda: str
    organiser: str
    answer: RsvpAnswer | None
    answer_label: str  # 未回执 when none
    reason: str | None
    delegate: str | None
    delegate_name: str
    delegated_by: list[str]  # names of who handed the meeting to the viewer
    can_answer: bool
    started: bool
    may_see_attendance: bool
    people: list[PersonPick]  # the 委派 picker: active staff but the viewer


@dataclass(frozen=True)
class QuestionResultView:
    text: str
    multiple: bool
    voters: int
    options: tuple[OptionCount, ...]
    texts: tuple[str, ...]
    svg: str  # the chart, escaped SVG to put in the page as it is


@dataclass(frozen=True)
class ChoiceLine:
    """Who chose what (named polls, the author only)."""

    name: str
    department: str
    question: str
    choices: str
    text: str


@dataclass(frozen=True)
class ResultsView:
    notice_id: str
    title: str
    anonymous: bool
    closed: bool
    closes: str  # local time, or 不限
    voters: int
    invited: int
    questions: list[QuestionResultView]
    who: list[ChoiceLine] | None  # None: not shown (anonymous, or not the author)
    is_author: bool


@dataclass(frozen=True)
class PollPage:
    notice_id: str
    title: str
    anonymous: bool
    closes: str
    closed: bool
    questions: tuple[Question, ...]
    mine: dict[str, Answer]  # the viewer's last ballot
    voted: bool
    can_vote: bool
    results: ResultsView | None  # after voting, and always for the author


@dataclass(frozen=True)
class AttendanceRow:
    person: str
    name: str
    department: str
    answer: str  # 参加 / 不参加 / 请假 / 委派他人参加 / 未回执
    reason: str
    delegate: str  # name
    delegated_by: str  # names
    at: str


@dataclass(frozen=True)
class AttendanceView:
    notice_id: str
    title: str
    starts: str
    place: str
    organiser: str
    total: int
    attending: list[AttendanceRow]
    declined: list[AttendanceRow]
    on_leave: list[AttendanceRow]
    delegated: list[AttendanceRow]
    unanswered: list[AttendanceRow]

    @property
    def rows(self) -> list[AttendanceRow]:
        return [*self.attending, *self.delegated, *self.on_leave, *self.declined, *self.unanswered]


# -- the service --------------------------------------------------------------------------------
class NoticeResponses:
    def __init__(
        self,
        *,
        db: Database,
        directory: Directory,
        links: PersonalLinks,
        calendar: CalendarSource,
        tz: ZoneInfo,
        now: Callable[[], datetime],
        kinds: TimerKinds | None = None,
        rules: NoticeRules = DEFAULT_RULES,
    ) -> None:
        self.db = db
        self.rules = rules
        # `Notices.unlock`: checks an access password (wrong tries counted, lock-out, trail);
        # set by the wiring once the notice service is built.
        self.unlock: Unlock | None = None
        # `Notices.add_recipient_in`: a 委派 delegate's receipt, card and trail line, in our
        # transaction; set by the wiring (without it, the same is written here).
        self.add_recipient: AddRecipient | None = None
        self.directory = directory
        self.links = links
        self.calendar = calendar
        self.tz = tz
        self.now = now
        if kinds is not None:
            kinds.register(TimerKind.MEETING_REMIND, self.fire_reminder)
            kinds.register(TimerKind.POLL_CLOSE, self.fire_poll_close)

    async def org(self) -> Org:
        return await self.directory.org()

    # -- loading ------------------------------------------------------------------------------
    async def _notice(self, session: AsyncSession, notice_id: str, *, lock: bool = False) -> Notice:
        stored = await store.load_notice(session, notice_id=notice_id, for_update=lock)
        if stored is None:
            raise NoticeNotFound(notice_id=notice_id)
        return stored.notice

    async def _gate(self, viewer: str, notice_id: str, password: str | None, channel: str) -> None:
        """A notice with an access password shows its meeting or poll to its author, and to others
        only with the password (checked, counted and recorded by the notice service)."""
        async with self.db.session() as s:
            notice = await self._notice(s, notice_id)
        if not notice.has_password or viewer == notice.author:
            return
        if not password or self.unlock is None:
            raise PasswordRequired("password_required.answer", notice_id=notice_id)
        await self.unlock(viewer=viewer, notice_id=notice_id, password=password, channel=channel)

    @staticmethod
    def _published(notice: Notice) -> None:
        if notice.status != NoticeStatus.PUBLISHED:
            raise NoticeNotPublished(
                notice_id=notice.id,
                status=notice.status.value,
                shown={"status_label": STATUS_LABEL[notice.status]},
            )

    @staticmethod
    def _meeting(notice: Notice) -> Meeting:
        if notice.kind != NoticeKind.MEETING or notice.meeting is None:
            raise RsvpRefused("rsvp_refused.not_meeting", notice_id=notice.id)
        return notice.meeting

    @staticmethod
    def _poll(notice: Notice) -> Poll:
        if notice.kind != NoticeKind.POLL or notice.poll is None:
            raise PollRefused("poll_refused.not_poll", notice_id=notice.id)
        return notice.poll

    def _shown_place(self, notice: Notice) -> str | None:
        """A meeting's place as chat may show it: None for a restricted or password-protected
        meeting (its messages, like its cards, carry the title and time only)."""
        if (
            notice.meeting is None
            or notice.has_password
            or is_restricted(notice.confidentiality, named_only=notice.named_only, rules=self.rules)
        ):
            return None
        return notice.meeting.place

    def _local(self, at: datetime | None, empty: str = "") -> str:
        return words.when(at, self.tz) if at else empty

    def _until(self, starts: datetime, ends: datetime) -> str:
        """The end of a meeting: its time alone on the day it starts."""
        same_day = starts.astimezone(self.tz).date() == ends.astimezone(self.tz).date()
        return ends.astimezone(self.tz).strftime("%H:%M") if same_day else self._local(ends)

    async def _link(self, session: AsyncSession, person: str, path: str) -> str:
        return await self.links.url(person, path, session=session)

    @staticmethod
    def _queue(
        session: AsyncSession,
        *,
        kind: str,
        person: str,
        payload: dict[str, Any],
        now: datetime,
        task_id: str | None = None,
    ) -> None:
        session.add(OutboxRow.due_now(kind=kind, recipient=person, payload=payload, now=now, task_id=task_id))

    async def _acknowledge(
        self,
        session: AsyncSession,
        notice: Notice,
        receipt: Receipt | None,
        *,
        channel: str,
        outcome: str,
        now: datetime,
    ) -> None:
        """An answer counts as 已收到: the receipt moves (if it may) and the card closes."""
        if receipt is None or receipt.state not in move_from(ReceiptState.ACKNOWLEDGED):
            return
        values = {
            "state": ReceiptState.ACKNOWLEDGED.value,
            "acknowledged_at": now,
            "acknowledged_via": channel[:16],
            "opened_at": receipt.opened_at or now,
            "opened_via": (receipt.opened_via or channel)[:16],
        }
        moved = await store.move_receipt(
            session,
            notice_id=notice.id,
            person=receipt.person,
            from_states=move_from(ReceiptState.ACKNOWLEDGED),
            values=values,
        )
        if not moved:
            return
        await store.add_event(
            session,
            event=NoticeEvent(
                notice.id, now, NoticeEventKind.ACKNOWLEDGED, receipt.person, channel, {"by": outcome}
            ),
        )
        await self._card(session, notice, receipt.person, receipt.card_no, now, outcome=outcome)

    async def _card(
        self,
        session: AsyncSession,
        notice: Notice,
        person: str,
        card_no: int,
        now: datetime,
        *,
        outcome: str | None = None,
    ) -> None:
        """The person's notice card (as `services.notices` sends it), or its update in place to
        `outcome` (the card then keeps only its link button)."""
        org = await self.org()
        link = await self._link(session, person, f"/m/n/{notice.id}")
        restricted = is_restricted(notice.confidentiality, named_only=notice.named_only, rules=self.rules)
        kind, task_id, payload = notice_card_message(
            notice, card_no=card_no, org=org, tz=self.tz, link=link, restricted=restricted, outcome=outcome
        )
        self._queue(session, kind=kind, person=person, payload=payload, now=now, task_id=task_id)

    # -- meetings: RSVP -------------------------------------------------------------------------
    async def rsvp_page(
        self, viewer: str, notice_id: str, *, password: str | None = None, channel: str = "web"
    ) -> RsvpPage:
        await self._gate(viewer, notice_id, password, channel)
        org = await self.org()
        now = self.now()
        async with self.db.session() as s:
            notice = await self._notice(s, notice_id)
            meeting = self._meeting(notice)
            if viewer not in notice.recipients and viewer not in (notice.author, meeting.organiser):
                raise NotRecipient(notice_id=notice_id, person=viewer)
            rsvps = await answers.rsvps_of(s, notice_id=notice_id)
        mine = rsvps.get(viewer)
        started = now >= meeting.starts_at
        return RsvpPage(
            notice_id=notice.id,
            title=notice.title,
            starts=self._local(meeting.starts_at),
            ends=self._until(meeting.starts_at, meeting.ends_at),
            place=meeting.place,
            agenda=meeting.agenda,
            organiser=org.display_name(meeting.organiser or notice.author),
            answer=mine.answer if mine else None,
            answer_label=words.RSVP_LABEL[mine.answer] if mine else words.UNANSWERED,
            reason=mine.reason if mine else None,
            delegate=mine.delegate if mine else None,
            delegate_name=org.display_name(mine.delegate) if mine and mine.delegate else "",
            delegated_by=[
                org.display_name(r.person)
                for r in rsvps.values()
                if r.answer == RsvpAnswer.DELEGATE and r.delegate == viewer
            ],
            can_answer=viewer in notice.recipients
            and not started
            and notice.status == NoticeStatus.PUBLISHED,
            started=started,
            may_see_attendance=viewer in (notice.author, meeting.organiser),
            people=self._people(org, exclude=viewer),
        )

    @staticmethod
    def _people(org: Org, *, exclude: str) -> list[PersonPick]:
        return [
            PersonPick(u.id, u.name, u.title, _department_name(org, u.id))
            for u in sorted(org.users.values(), key=lambda u: u.id)
            if u.active and u.id != exclude
        ]

    async def rsvp(
        self,
        person: str,
        notice_id: str,
        answer: RsvpAnswer,
        *,
        reason: str | None = None,
        delegate: str | None = None,
        channel: str = "web",
        password: str | None = None,
    ) -> str:
        """Record a 回执; the confirmation to show. A refusal (`RsvpRefused`, `NotRecipient`...)
        changes nothing; the same answer again changes nothing either."""
        await self._gate(person, notice_id, password, channel)
        org = await self.org()
        now = self.now()
        async with self.db.transaction() as s:
            notice = await self._notice(s, notice_id, lock=True)
            meeting = self._meeting(notice)
            self._published(notice)
            rsvps = await answers.rsvps_of(s, notice_id=notice_id)
            given = meetings.check_rsvp(
                person=person,
                answer=answer,
                reason=reason,
                delegate=delegate,
                invited=notice.recipients,
                is_active=org.is_active,
                rsvps=rsvps,
                starts_at=meeting.starts_at,
                now=now,
            )
            done = words.rsvp_recorded(given.answer, delegate_name=org.display_name(given.delegate))
            if meetings.same_answer(rsvps.get(person), given):
                return done
            await answers.put_rsvp(s, notice_id=notice_id, rsvp=given)
            data = {"answer": given.answer.value, "reason": given.reason, "delegate": given.delegate}
            await store.add_event(
                s, event=NoticeEvent(notice_id, now, NoticeEventKind.RSVP, person, channel, data)
            )
            if given.answer == RsvpAnswer.DELEGATE and given.delegate:
                await self._add_delegate(s, notice, given, org, channel, now)
            receipts = {r.person: r for r in await store.receipts_of(s, notice_id=notice_id)}
            await self._acknowledge(
                s,
                notice,
                receipts.get(person),
                channel=channel,
                outcome=f"已回执 · {words.RSVP_LABEL[given.answer]}",
                now=now,
            )
        logger.info(
            "meeting rsvp recorded",
            extra={
                "notice_id": notice_id,
                "user": person,
                "answer": given.answer.value,
                "delegate": given.delegate,
            },
        )
        return done

    async def tap(self, *, person: str, task_id: str, action: str, channel: str) -> str:
        """A meeting card's RSVP button (`rsvp_attend`, `rsvp_leave`, `rsvp_decline`): 参加 and
        请假 are recorded at once; 不参加 needs a reason, so it answers with the link to the 回执
        page. What to say in chat; a refusal is said in words and changes nothing."""
        parsed = parse_card_task_id(task_id)
        if parsed is None:
            raise NoticeNotFound("notice_not_found.card", task_id=task_id)
        notice_id, card_no = parsed
        async with self.db.session() as s:
            mine = {r.person: r.card_no for r in await store.receipts_of(s, notice_id=notice_id)}
        if mine.get(person) != card_no:  # someone else's card: nothing is recorded for either
            raise NotRecipient("not_recipient.card", notice_id=notice_id)
        answer = TAP_ANSWERS.get(action)
        if answer is None:
            async with self.db.session() as s:
                link = await self._link(s, person, f"/m/n/{notice_id}/rsvp")
            return words.rsvp_page_needed(link)
        return await self.rsvp(person, notice_id, answer, channel=channel)

    async def _add_delegate(
        self, session: AsyncSession, notice: Notice, given: Rsvp, org: Org, channel: str, now: datetime
    ) -> None:
        """The delegate joins the meeting's list (a receipt added by the person who delegated,
        unless they are on it already) and is told, with a link to answer."""
        assert given.delegate is not None and notice.meeting is not None
        in_trail = False  # the notice service writes the trail line with the receipt
        if given.delegate not in notice.recipients and self.add_recipient is not None:
            await self.add_recipient(
                session,
                notice_id=notice.id,
                person=given.delegate,
                added_by=given.person,
                now=now,
                channel=channel,
                org=org,
            )
            in_trail = True
        elif given.delegate not in notice.recipients:
            (added,) = await store.insert_receipts(
                session, notice_id=notice.id, people=[given.delegate], now=now, added_by=given.person
            )
            await self._card(session, notice, added.person, added.card_no, now)  # as every attendee's
        if not in_trail:
            data = {"person": given.delegate}
            await store.add_event(
                session,
                event=NoticeEvent(notice.id, now, NoticeEventKind.DELEGATED, given.person, channel, data),
            )
        link = await self._link(session, given.delegate, f"/m/n/{notice.id}/rsvp")
        text = words.delegate_told(
            by_name=org.display_name(given.person),
            title=notice.title,
            starts_at=notice.meeting.starts_at,
            place=self._shown_place(notice),
            tz=self.tz,
            link=link,
        )
        self._queue(
            session,
            kind="text",
            person=given.delegate,
            payload={"text": text, "notice_id": notice.id},
            now=now,
        )

    # -- meetings: the attendance list ----------------------------------------------------------
    async def attendance(self, viewer: str, notice_id: str) -> AttendanceView:
        """The organiser's (and the author's) list: who attends, declined and why, is on leave,
        delegated to whom, has not answered."""
        org = await self.org()
        async with self.db.session() as s:
            notice = await self._notice(s, notice_id)
            meeting = self._meeting(notice)
            if viewer not in (notice.author, meeting.organiser):
                raise NotAuthor("attendance_hidden", notice_id=notice_id, person=viewer)
            rsvps = await answers.rsvps_of(s, notice_id=notice_id)
        att = meetings.attendance(notice.recipients, rsvps)

        def row(line: meetings.AttendanceLine) -> AttendanceRow:
            return AttendanceRow(
                person=line.person,
                name=org.display_name(line.person),
                department=_department_name(org, line.person),
                answer=words.RSVP_LABEL[line.answer] if line.answer else words.UNANSWERED,
                reason=line.reason or "",
                delegate=org.display_name(line.delegate) if line.delegate else "",
                delegated_by="、".join(org.display_name(p) for p in line.delegated_by),
                at=self._local(line.at),
            )

        return AttendanceView(
            notice_id=notice.id,
            title=notice.title,
            starts=self._local(meeting.starts_at),
            place=meeting.place,
            organiser=org.display_name(meeting.organiser or notice.author),
            total=len(att.lines),
            attending=[row(x) for x in att.attending],
            declined=[row(x) for x in att.declined],
            on_leave=[row(x) for x in att.on_leave],
            delegated=[row(x) for x in att.delegated],
            unanswered=[row(x) for x in att.unanswered],
        )

    async def attendance_csv(self, viewer: str, notice_id: str) -> tuple[str, bytes]:
        """(file name, bytes): the attendance list as CSV with Chinese headers, UTF-8 with a BOM
        so that Excel opens it as such."""
        view = await self.attendance(viewer, notice_id)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_HEADERS)
        for r in view.rows:
            writer.writerow(
                [
                    _cell(v)
                    for v in (r.name, r.department, r.answer, r.reason, r.delegate, r.delegated_by, r.at)
                ]
            )
        safe_title = re.sub(r'[\\/:*?"<>|\r\n\t]+', "_", view.title)[:60] or view.notice_id
        return f"参会名单-{safe_title}.csv", ("\ufeff" + out.getvalue()).encode("utf-8")

    # -- meetings: reminders ----------------------------------------------------------------------
    async def schedule_meeting_reminders(self, session: AsyncSession, notice: Notice, now: datetime) -> int:
        """Write the meeting's reminder timers (in the caller's publish transaction); how many.
        Keyed per notice and reminder, so calling it twice writes nothing new."""
        if notice.kind != NoticeKind.MEETING or notice.meeting is None:
            return 0
        offsets = notice.meeting.remind_before or DEFAULT_MEETING_REMINDERS
        planned = meetings.reminder_times(notice.meeting.starts_at, offsets, self.calendar.current, now=now)
        written = 0
        for offset, at in planned:
            code = meetings.offset_code(offset)
            written += await timers.schedule_once(
                session,
                kind=TimerKind.MEETING_REMIND,
                key=f"meeting_remind:{notice.id}:{code}",
                due_at=at,
                now=now,
                ref=notice.id,
                data={"notice_id": notice.id, "amount": offset.amount, "unit": offset.unit.value},
            )
        return written

    async def fire_reminder(self, timer: Timer) -> FireResult:
        """Remind the attendees who have not declined; once, with the closing of the timer."""
        org = await self.org()
        now = self.now()
        notice_id = timer.ref or str(timer.data.get("notice_id") or "")
        async with self.db.transaction() as s:
            if not await timers.finish(s, timer, now=now):
                return FireResult.LOST
            stored = await store.load_notice(s, notice_id=notice_id)
            notice = stored.notice if stored else None
            if (
                notice is None
                or notice.meeting is None
                or notice.status != NoticeStatus.PUBLISHED
                or now >= notice.meeting.starts_at
            ):
                await timers.set_status(
                    s, timer.id, status=TimerStatus.CANCELLED, error="recalled, gone or started"
                )
                return FireResult.CANCELLED
            rsvps = await answers.rsvps_of(s, notice_id=notice_id)
            people = [p for p in meetings.to_remind(notice.recipients, rsvps) if org.is_active(p)]
            for person in people:
                link = await self._link(s, person, f"/m/n/{notice_id}")
                text = words.reminder(
                    title=notice.title,
                    starts_at=notice.meeting.starts_at,
                    place=self._shown_place(notice),
                    tz=self.tz,
                    link=link,
                )
                self._queue(
                    s, kind="text", person=person, payload={"text": text, "notice_id": notice_id}, now=now
                )
            await store.add_event(
                s,
                event=NoticeEvent(
                    notice_id, now, NoticeEventKind.REMINDED, "system", "system",
                    {"people": people, "amount": timer.data.get("amount"), "unit": timer.data.get("unit")},
                ),
            )  # fmt: skip
        logger.info(
            "meeting reminder sent",
            extra={"notice_id": notice_id, "timer_id": timer.id, "count": len(people)},
        )
        return FireResult.FIRED if people else FireResult.SKIPPED

    # -- polls: closing ------------------------------------------------------------------------
    async def schedule_poll_close(self, session: AsyncSession, notice: Notice, now: datetime) -> bool:
        """Write the poll's `poll_close` timer at its closing time (in the caller's publish
        transaction); False for a poll without one (or written already)."""
        if notice.kind != NoticeKind.POLL or notice.poll is None or notice.poll.closes_at is None:
            return False
        return await timers.schedule_once(
            session,
            kind=TimerKind.POLL_CLOSE,
            key=f"poll_close:{notice.id}",
            due_at=notice.poll.closes_at,
            now=now,
            ref=notice.id,
            data={"notice_id": notice.id},
        )

    async def fire_poll_close(self, timer: Timer) -> FireResult:
        """The poll closes: its trail records `closed` with the final counts and the author is
        told them with a link to the results; once, with the closing of the timer."""
        now = self.now()
        notice_id = timer.ref or str(timer.data.get("notice_id") or "")
        async with self.db.transaction() as s:
            if not await timers.finish(s, timer, now=now):
                return FireResult.LOST
            stored = await store.load_notice(s, notice_id=notice_id)
            notice = stored.notice if stored else None
            if notice is None or notice.poll is None or notice.status != NoticeStatus.PUBLISHED:
                await timers.set_status(s, timer.id, status=TimerStatus.CANCELLED, error="recalled or gone")
                return FireResult.CANCELLED
            if NoticeEventKind.CLOSED in {e.kind for e in await store.events_of(s, notice_id=notice_id)}:
                return FireResult.SKIPPED  # closed already (a timer written again by hand)
            results = polls.tally(notice.poll, await answers.votes_of(s, notice_id=notice_id))
            counts = [
                {"question": q.question_id, "voters": q.voters, "counts": [o.count for o in q.options]}
                for q in results.questions
            ]
            await store.add_event(
                s,
                event=NoticeEvent(
                    notice_id, now, NoticeEventKind.CLOSED, "system", "system",
                    {"voters": results.voters, "invited": len(notice.recipients), "questions": counts},
                ),
            )  # fmt: skip
            link = await self._link(s, notice.author, poll_results_page(notice_id))
            text = words.poll_closed(
                title=notice.title, results=results, invited=len(notice.recipients), link=link
            )
            self._queue(
                s, kind="text", person=notice.author, payload={"text": text, "notice_id": notice_id}, now=now
            )
        logger.info(
            "poll closed", extra={"notice_id": notice_id, "timer_id": timer.id, "voters": results.voters}
        )
        return FireResult.FIRED

    # -- polls ----------------------------------------------------------------------------------
    async def poll_page(
        self, viewer: str, notice_id: str, *, password: str | None = None, channel: str = "web"
    ) -> PollPage:
        await self._gate(viewer, notice_id, password, channel)
        org = await self.org()
        now = self.now()
        async with self.db.session() as s:
            notice = await self._notice(s, notice_id)
            poll = self._poll(notice)
            if viewer not in notice.recipients and viewer != notice.author:
                raise NotRecipient(notice_id=notice_id, person=viewer)
            votes = await answers.votes_of(s, notice_id=notice_id)
        mine = {
            v.question_id: Answer(v.choices, v.text)
            for v in polls.latest_votes(votes).values()
            if v.person == viewer
        }
        voted = bool(mine)
        closed = polls.is_closed(poll, now)
        shown = voted or viewer == notice.author
        return PollPage(
            notice_id=notice.id,
            title=notice.title,
            anonymous=poll.anonymous,
            closes=self._local(poll.closes_at, "不限"),
            closed=closed,
            questions=poll.questions,
            mine=mine,
            voted=voted,
            can_vote=viewer in notice.recipients and not closed and notice.status == NoticeStatus.PUBLISHED,
            results=self._results(notice, poll, votes, org, viewer, now) if shown else None,
        )

    async def vote(
        self,
        person: str,
        notice_id: str,
        ballot: Mapping[str, Answer],
        *,
        channel: str = "web",
        password: str | None = None,
    ) -> ResultsView:
        """Cast or change a ballot (before the poll closes); the results at once."""
        await self._gate(person, notice_id, password, channel)
        org = await self.org()
        now = self.now()
        async with self.db.transaction() as s:
            notice = await self._notice(s, notice_id)
            poll = self._poll(notice)
            self._published(notice)
            if person not in notice.recipients:
                raise NotRecipient(notice_id=notice_id, person=person)
            checked = polls.check_ballot(poll, ballot, now=now)
            # the voter's receipt locked: the same ballot sent twice at once is compared, not doubled
            await store.receipt_row(s, notice_id=notice_id, person=person, for_update=True)
            before = {
                v.question_id: Answer(v.choices, v.text)
                for v in polls.latest_votes(
                    await answers.votes_of(s, notice_id=notice_id, person=person)
                ).values()
            }
            if before != checked:
                await answers.put_ballot(s, notice_id=notice_id, person=person, ballot=checked, at=now)
                data: dict[str, Any] = {"changed": bool(before)}
                if not poll.anonymous:  # an anonymous poll's trail never says who chose what
                    data["ballot"] = {
                        q: {"choices": list(a.choices), "text": a.text} for q, a in checked.items()
                    }
                await store.add_event(
                    s, event=NoticeEvent(notice_id, now, NoticeEventKind.VOTED, person, channel, data)
                )
                receipts = {r.person: r for r in await store.receipts_of(s, notice_id=notice_id)}
                await self._acknowledge(
                    s, notice, receipts.get(person), channel=channel, outcome="已投票", now=now
                )
            votes = await answers.votes_of(s, notice_id=notice_id)
        logger.info(
            "poll vote recorded", extra={"notice_id": notice_id, "user": person, "changed": bool(before)}
        )
        return self._results(notice, poll, votes, org, person, now)

    async def results(
        self, viewer: str, notice_id: str, *, password: str | None = None, channel: str = "web"
    ) -> ResultsView:
        """Those who voted and the author see the results; the author of a named poll also sees
        who chose what."""
        await self._gate(viewer, notice_id, password, channel)
        org = await self.org()
        async with self.db.session() as s:
            notice = await self._notice(s, notice_id)
            poll = self._poll(notice)
            votes = await answers.votes_of(s, notice_id=notice_id)
        if viewer != notice.author and not polls.has_voted(viewer, votes):
            if viewer not in notice.recipients:
                raise NotRecipient(notice_id=notice_id, person=viewer)
            raise ResultsHidden("poll_results_hidden", notice_id=notice_id)
        return self._results(notice, poll, votes, org, viewer, self.now())

    def _results(
        self, notice: Notice, poll: Poll, votes: Sequence[polls.Vote], org: Org, viewer: str, now: datetime
    ) -> ResultsView:
        tallied = polls.tally(poll, votes)
        questions = [
            QuestionResultView(
                text=q.text,
                multiple=q.multiple,
                voters=q.voters,
                options=q.options,
                texts=q.texts,
                svg=poll_bar_chart(
                    q.text, [ChartBar(o.label, o.count, o.percent) for o in q.options], voters=q.voters
                ),
            )
            for q in tallied.questions
        ]
        who = None
        if viewer == notice.author and not poll.anonymous:
            texts = {q.id: q.text for q in poll.questions}
            who = []
            for c in polls.choices_by_person(poll, votes):
                who.append(
                    ChoiceLine(
                        name=org.display_name(c.person),
                        department=_department_name(org, c.person),
                        question=texts.get(c.question_id, ""),
                        choices="、".join(c.labels),
                        text=c.text or "",
                    )
                )
        return ResultsView(
            notice_id=notice.id,
            title=notice.title,
            anonymous=poll.anonymous,
            closed=polls.is_closed(poll, now),
            closes=self._local(poll.closes_at, "不限"),
            voters=tallied.voters,
            invited=len(notice.recipients),
            questions=questions,
            who=who,
            is_author=viewer == notice.author,
        )


def _department_name(org: Org, person: str) -> str:
    user = org.user(person)
    dept = org.department(user.department) if user else None
    return dept.name if dept else ""


def _cell(value: str) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
