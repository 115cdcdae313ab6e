"""Meeting RSVPs, polls and meeting reminders through `services.notice_responses`, on SQLite and
PostgreSQL: a refusal stores nothing, 委派 adds the delegate (receipt, trail, message), an answer
acknowledges the receipt, a changed vote counts once, anonymous polls never name anyone, the
attendance CSV opens in Excel, and reminders go out at the right times, once, with two scanners."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import col

from approvals.clock import ManualClock
from deadlines.org_calendar import OrgCalendar
from deadlines.timer_kinds import TimerKinds, TimerScanner
from deadlines.timers import TimerKind
from notices.errors import NotAuthor, NotRecipient
from notices.meetings import RsvpRefused
from notices.model import (
    Audience,
    Confidentiality,
    Meeting,
    Notice,
    NoticeEventKind,
    NoticeKind,
    NoticeStatus,
    Poll,
    Question,
    ReceiptState,
    RsvpAnswer,
)
from notices.polls import Answer, PollAnonymous, PollClosed, PollRefused
from notifications.messages import message_for
from services.directory import Directory
from services.links import PersonalLinks
from services.notice_responses import NoticeResponses, ResultsHidden
from storage import notice_store as store
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.timer_models import TimerRow

SH = ZoneInfo("Asia/Shanghai")
PEOPLE = ("u_zhang", "u_li", "u_wang", "u_chen")


def service(db: Database, clock: ManualClock, kinds: TimerKinds | None = None) -> NoticeResponses:
    calendar = OrgCalendar(SH, [(datetime.min.time().replace(hour=9), datetime.min.time().replace(hour=12)),
                                (datetime.min.time().replace(hour=13, minute=30), datetime.min.time().replace(hour=18))])  # fmt: skip
    return NoticeResponses(
        db=db,
        directory=Directory(db, clock.now),
        links=PersonalLinks(
            db, secret="test-secret-0123456789", public_url="http://oabot.test", now=clock.now
        ),
        calendar=calendar,
        tz=SH,
        now=clock.now,
        kinds=kinds,
    )


async def publish(
    db: Database,
    svc: NoticeResponses,
    now: datetime,
    *,
    meeting: Meeting | None = None,
    poll: Poll | None = None,
    people: Sequence[str] = PEOPLE,
    author: str = "u_sun",
    confidentiality: Confidentiality = Confidentiality.INTERNAL,
) -> Notice:
    notice = Notice(
        id=f"n20261123-{uuid.uuid4().hex[:8]}",
        kind=NoticeKind.MEETING if meeting else NoticeKind.POLL,
        title="周例会" if meeting else "午餐调查",
        body="",
        author=author,
        audience=Audience(people=tuple(people)),
        recipients=tuple(people),
        confidentiality=confidentiality,
        named_only=False,
        has_password=False,
        status=NoticeStatus.PUBLISHED,
        created_at=now,
        published_at=now,
        meeting=meeting,
        poll=poll,
    )
    async with db.transaction() as s:
        await store.insert_notice(s, notice=notice, password_hash=None, channel="web", now=now)
        await store.insert_receipts(s, notice_id=notice.id, people=list(people), now=now)
        await svc.schedule_meeting_reminders(s, notice, now)
    return notice


def weekly(starts: datetime, organiser: str = "u_sun") -> Meeting:
    return Meeting(
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        place="三楼会议室",
        agenda="周计划",
        organiser=organiser,
    )


LUNCH = Poll(
    questions=(
        Question("q1", "午餐地点", False, ("食堂", "外卖", "自带")),
        Question("q2", "建议", True, ("加菜", "延长时间"), free_text=True),
    ),
    closes_at=datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
)


async def outbox(db: Database, notice_id: str | None = None) -> list[OutboxRow]:
    async with db.session() as s:
        rows = list((await s.execute(select(OutboxRow).order_by(col(OutboxRow.id)))).scalars())
    return [r for r in rows if notice_id is None or (r.payload or {}).get("notice_id") == notice_id]


async def events(db: Database, notice_id: str) -> list[NoticeEventKind]:
    async with db.session() as s:
        return [e.kind for e in await store.events_of(s, notice_id=notice_id)]


async def receipts(db: Database, notice_id: str) -> dict[str, tuple[ReceiptState, str | None]]:
    async with db.session() as s:
        return {r.person: (r.state, r.added_by) for r in await store.receipts_of(s, notice_id=notice_id)}


# -- meetings -------------------------------------------------------------------------------------
async def test_decline_without_a_reason_is_refused_and_stores_nothing(
    org_db: Database, clock: ManualClock
) -> None:
    svc = service(org_db, clock)
    notice = await publish(org_db, svc, clock.now(), meeting=weekly(clock.now() + timedelta(days=2)))
    with pytest.raises(RsvpRefused) as info:
        await svc.rsvp("u_li", notice.id, RsvpAnswer.DECLINE, reason=" ")
    assert message_for(info.value) == "选择“不参加”请填写原因"
    assert (await svc.attendance("u_sun", notice.id)).declined == []
    assert NoticeEventKind.RSVP not in await events(org_db, notice.id)
    assert (await receipts(org_db, notice.id))["u_li"] == (ReceiptState.SENT, None)


async def test_delegating_to_someone_not_on_the_staff_is_refused(
    org_db: Database, clock: ManualClock
) -> None:
    svc = service(org_db, clock)
    notice = await publish(org_db, svc, clock.now(), meeting=weekly(clock.now() + timedelta(days=2)))
    with pytest.raises(RsvpRefused) as info:
        await svc.rsvp("u_li", notice.id, RsvpAnswer.DELEGATE, delegate="outsider_01")
    assert "在职人员" in message_for(info.value)
    assert "outsider_01" not in await receipts(org_db, notice.id)
    assert await outbox(org_db, notice.id) == []


async def test_delegating_adds_the_delegate_tells_them_and_acknowledges(
    org_db: Database, clock: ManualClock
) -> None:
    svc = service(org_db, clock)
    notice = await publish(org_db, svc, clock.now(), meeting=weekly(clock.now() + timedelta(days=2)))
    said = await svc.rsvp("u_li", notice.id, RsvpAnswer.DELEGATE, delegate="u_zhao", channel="wecom")
    assert said == "已回执：委派 赵敏 参加，已通知对方"
    state = await receipts(org_db, notice.id)
    assert state["u_zhao"] == (ReceiptState.SENT, "u_li")  # on the list, added by 李娜
    assert state["u_li"][0] == ReceiptState.ACKNOWLEDGED  # the RSVP counts as 已收到
    sent = await outbox(org_db, notice.id)
    told = [r for r in sent if r.recipient == "u_zhao" and r.kind == "text"]
    assert len(told) == 1 and "李娜 委派您参加会议「周例会」" in told[0].payload["text"]
    assert [r.kind for r in sent if r.recipient == "u_zhao"] == [
        "task_card",
        "text",
    ]  # the meeting's card too
    closed = [r for r in sent if r.kind == "card_closed"]
    assert [(r.recipient, r.payload["outcome"]) for r in closed] == [("u_li", "已回执 · 委派他人参加")]
    att = await svc.attendance("u_sun", notice.id)
    assert [(r.name, r.delegate) for r in att.delegated] == [("李娜", "赵敏")]
    assert any(r.name == "赵敏" and r.delegated_by == "李娜" for r in att.unanswered)
    # the same tap again changes nothing; the delegate cannot hand it back
    await svc.rsvp("u_li", notice.id, RsvpAnswer.DELEGATE, delegate="u_zhao")
    assert len(await outbox(org_db, notice.id)) == len(sent)
    with pytest.raises(RsvpRefused) as info:
        await svc.rsvp("u_zhao", notice.id, RsvpAnswer.DELEGATE, delegate="u_li")
    assert info.value.reason == "rsvp_refused.delegate_loop"
    # the delegate may answer for themselves
    await svc.rsvp("u_zhao", notice.id, RsvpAnswer.ATTEND)
    att = await svc.attendance("u_sun", notice.id)
    assert [(r.name, r.delegated_by) for r in att.attending] == [("赵敏", "李娜")]
    kinds = await events(org_db, notice.id)
    assert kinds.count(NoticeEventKind.RSVP) == 2 and kinds.count(NoticeEventKind.DELEGATED) == 1


async def test_attendance_is_for_the_organiser_and_its_csv_opens_in_excel(
    org_db: Database, clock: ManualClock
) -> None:
    svc = service(org_db, clock)
    notice = await publish(
        org_db, svc, clock.now(), meeting=weekly(clock.now() + timedelta(days=2), organiser="u_wu")
    )
    await svc.rsvp("u_li", notice.id, RsvpAnswer.DECLINE, reason="=出差")
    await svc.rsvp("u_wang", notice.id, RsvpAnswer.LEAVE, reason="病假")
    await svc.rsvp("u_zhang", notice.id, RsvpAnswer.ATTEND)
    with pytest.raises(NotAuthor) as info:
        await svc.attendance("u_li", notice.id)
    assert "组织人" in message_for(info.value)
    name, body = await svc.attendance_csv("u_wu", notice.id)
    assert name == "参会名单-周例会.csv"
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["姓名", "部门", "回执", "原因", "委派给", "受谁委派", "回执时间"]
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["张伟"][2] == "参加" and by_name["王芳"][2:4] == ["请假", "病假"]
    assert by_name["李娜"][2:4] == ["不参加", "'=出差"]  # never run as a formula
    assert by_name["陈静"][2] == "未回执"


async def test_no_rsvp_from_someone_not_invited_or_after_the_start(
    org_db: Database, clock: ManualClock
) -> None:
    svc = service(org_db, clock)
    notice = await publish(org_db, svc, clock.now(), meeting=weekly(clock.now() + timedelta(hours=2)))
    with pytest.raises(RsvpRefused):
        await svc.rsvp("u_zheng", notice.id, RsvpAnswer.ATTEND)
    clock.advance(timedelta(hours=2))
    with pytest.raises(RsvpRefused) as info:
        await svc.rsvp("u_li", notice.id, RsvpAnswer.ATTEND)
    assert message_for(info.value) == "会议已经开始，不能再回执"


# -- reminders ------------------------------------------------------------------------------------
async def _scan_with_two(db: Database, clock: ManualClock) -> int:
    replica = Database(db.url, schema=db.schema)
    try:
        fired = 0
        scanners = []
        for database in (db, replica):
            kinds = TimerKinds()
            service(database, clock, kinds)
            scanners.append(TimerScanner(db=database, kinds=kinds, now=clock.now))
        for stats in await asyncio.gather(*(s.scan_once() for s in scanners)):
            fired += stats.fired
        return fired
    finally:
        await replica.dispose()


async def test_reminders_across_a_weekend_fire_once_with_two_scanners(
    org_db: Database, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=SH))  # Friday morning
    svc = service(org_db, clock)
    monday_9 = datetime(2026, 11, 30, 9, 0, tzinfo=SH)
    notice = await publish(org_db, svc, clock.now(), meeting=weekly(monday_9))
    await svc.rsvp("u_li", notice.id, RsvpAnswer.DECLINE, reason="出差")
    await svc.rsvp("u_wang", notice.id, RsvpAnswer.DELEGATE, delegate="u_zhao")
    async with org_db.session() as s:
        rows = list(
            (
                await s.execute(select(TimerRow).where(col(TimerRow.kind) == TimerKind.MEETING_REMIND.value))
            ).scalars()
        )
    due = sorted(r.due_at.astimezone(SH) for r in rows)
    assert due == [datetime(2026, 11, 27, 17, 0, tzinfo=SH), datetime(2026, 11, 30, 8, 45, tzinfo=SH)]
    assert await _scan_with_two(org_db, clock) == 0  # nothing due on Friday morning
    for moment in due:
        clock.set(moment + timedelta(seconds=1))
        assert await _scan_with_two(org_db, clock) == 1
        assert await _scan_with_two(org_db, clock) == 0
    reminders = [r for r in await outbox(org_db, notice.id) if "会议提醒" in str(r.payload.get("text"))]
    # twice each to those who have not declined, gone on leave or delegated; the delegate included
    assert sorted(r.recipient for r in reminders) == sorted(["u_zhang", "u_chen", "u_zhao"] * 2)
    assert "11-30（周一）09:00" in reminders[0].payload["text"]
    assert (await events(org_db, notice.id)).count(NoticeEventKind.REMINDED) == 2


async def test_a_meeting_soon_gets_only_the_reminders_still_ahead(
    org_db: Database, clock: ManualClock
) -> None:
    svc = service(org_db, clock)
    notice = await publish(org_db, svc, clock.now(), meeting=weekly(clock.now() + timedelta(minutes=40)))
    async with org_db.transaction() as s:
        assert await svc.schedule_meeting_reminders(s, notice, clock.now()) == 0  # written once already
        rows = list((await s.execute(select(TimerRow).where(col(TimerRow.ref) == notice.id))).scalars())
    assert [r.key for r in rows] == [f"meeting_remind:{notice.id}:15m"]


# -- polls ----------------------------------------------------------------------------------------
async def test_votes_tally_with_a_changed_vote_counted_once(org_db: Database, clock: ManualClock) -> None:
    svc = service(org_db, clock)
    notice = await publish(org_db, svc, clock.now(), poll=LUNCH)
    await svc.vote("u_zhang", notice.id, {"q1": Answer((0,)), "q2": Answer((0,))})
    await svc.vote("u_li", notice.id, {"q1": Answer((0,)), "q2": Answer((0, 1), "多些素菜")})
    clock.advance(timedelta(minutes=1))
    results = await svc.vote("u_zhang", notice.id, {"q1": Answer((1,)), "q2": Answer((0,))})  # 食堂 -> 外卖
    lunch, ideas = results.questions
    assert results.voters == 2 and results.invited == 4
    assert [(o.label, o.count, o.percent) for o in lunch.options] == [
        ("食堂", 1, 50.0),
        ("外卖", 1, 50.0),
        ("自带", 0, 0.0),
    ]
    assert [o.count for o in ideas.options] == [2, 1] and ideas.texts == ("多些素菜",)
    assert "1 票 50%" in lunch.svg
    assert results.who is None  # a voter sees the counts, not the names
    author = await svc.results("u_sun", notice.id)
    assert author.who is not None
    assert [(w.name, w.question, w.choices) for w in author.who][:2] == [
        ("李娜", "午餐地点", "食堂"),
        ("张伟", "午餐地点", "外卖"),
    ]
    state = await receipts(org_db, notice.id)
    assert state["u_zhang"][0] == ReceiptState.ACKNOWLEDGED and state["u_wang"][0] == ReceiptState.SENT
    assert (await events(org_db, notice.id)).count(NoticeEventKind.VOTED) == 3
    # the same ballot again changes nothing
    await svc.vote("u_li", notice.id, {"q1": Answer((0,)), "q2": Answer((1, 0), "多些素菜")})
    assert (await events(org_db, notice.id)).count(NoticeEventKind.VOTED) == 3


async def test_results_only_after_voting_and_no_vote_after_closing(
    org_db: Database, clock: ManualClock
) -> None:
    svc = service(org_db, clock)
    notice = await publish(org_db, svc, clock.now(), poll=LUNCH)
    with pytest.raises(ResultsHidden):
        await svc.results("u_wang", notice.id)
    with pytest.raises(NotRecipient):
        await svc.results("u_zheng", notice.id)
    with pytest.raises(PollRefused) as info:
        await svc.vote("u_wang", notice.id, {"q1": Answer((0, 1)), "q2": Answer((0,))})
    assert message_for(info.value) == "「午餐地点」是单选题，只能选一项"
    clock.set(LUNCH.closes_at or clock.now())
    with pytest.raises(PollClosed):
        await svc.vote("u_wang", notice.id, {"q1": Answer((0,)), "q2": Answer((0,))})
    async with org_db.session() as s:
        assert NoticeEventKind.VOTED not in [e.kind for e in await store.events_of(s, notice_id=notice.id)]


async def test_anonymous_polls_name_nobody_not_even_to_the_author(
    org_db: Database, clock: ManualClock
) -> None:
    svc = service(org_db, clock)
    anonymous = Poll(questions=LUNCH.questions, anonymous=True)
    notice = await publish(org_db, svc, clock.now(), poll=anonymous)
    await svc.vote("u_li", notice.id, {"q1": Answer((2,)), "q2": Answer((1,), "无")})
    author = await svc.results("u_sun", notice.id)
    assert author.who is None and author.questions[0].options[2].count == 1
    async with org_db.session() as s:
        trail = [e for e in await store.events_of(s, notice_id=notice.id) if e.kind == NoticeEventKind.VOTED]
    assert "ballot" not in trail[0].data
    page = await svc.poll_page("u_sun", notice.id)
    assert page.results is not None and page.results.who is None
    with pytest.raises(PollAnonymous):
        from notices.polls import choices_by_person

        choices_by_person(anonymous, [])


async def test_two_people_delegating_to_each_other_at_once_do_not_both_succeed(
    org_db: Database, clock: ManualClock
) -> None:
    svc = service(org_db, clock)
    notice = await publish(org_db, svc, clock.now(), meeting=weekly(clock.now() + timedelta(days=2)))
    results = await asyncio.gather(
        svc.rsvp("u_li", notice.id, RsvpAnswer.DELEGATE, delegate="u_wang"),
        svc.rsvp("u_wang", notice.id, RsvpAnswer.DELEGATE, delegate="u_li"),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, RsvpRefused)]
    assert len(refused) == 1 and refused[0].reason == "rsvp_refused.delegate_loop"
    assert len((await svc.attendance("u_sun", notice.id)).delegated) == 1


async def test_card_taps_attend_at_once_and_decline_through_the_page(
    org_db: Database, clock: ManualClock
) -> None:
    svc = service(org_db, clock)
    notice = await publish(org_db, svc, clock.now(), meeting=weekly(clock.now() + timedelta(days=2)))
    async with org_db.session() as s:
        cards = {r.person: r.card_no for r in await store.receipts_of(s, notice_id=notice.id)}
    said = await svc.tap(
        person="u_li", task_id=f"nt{notice.id}-{cards['u_li']}", action="rsvp_attend", channel="wecom"
    )
    assert said == "已回执：参加"
    said = await svc.tap(
        person="u_wang", task_id=f"nt{notice.id}-{cards['u_wang']}", action="rsvp_decline", channel="wecom"
    )
    assert said.startswith("不参加需要填写原因") and "/m/l/" in said
    att = await svc.attendance("u_sun", notice.id)
    assert [r.name for r in att.attending] == ["李娜"] and att.declined == []


def test_a_meeting_card_offers_the_rsvp_buttons_and_a_poll_card_opens_the_ballot() -> None:
    from notices.model import NoticeKind
    from notifications.notice_wording import notice_buttons

    meeting = notice_buttons(link="https://x/m/l/t", kind=NoticeKind.MEETING)
    assert [(b["action"], b["label"]) for b in meeting] == [
        ("rsvp_attend", "参加"),
        ("rsvp_leave", "请假"),
        ("rsvp_decline", "不参加"),
        ("open", "查看"),
    ]
    poll = notice_buttons(link="https://x/m/l/t", kind=NoticeKind.POLL)
    assert [(b["action"], b["label"], b.get("url")) for b in poll] == [("open", "去投票", "https://x/m/l/t")]
    notice = notice_buttons(link="https://x/m/l/t")
    assert [b["action"] for b in notice] == ["notice_ack", "open"]


async def test_a_meeting_card_tap_in_chat_records_the_rsvp_once(org_db: Database, clock: ManualClock) -> None:
    from typing import Any, cast

    from handlers.chat import root_router
    from handlers.deps import ChatDeps
    from handlers.events import CardAction, Sender
    from handlers.notice_cards import on_rsvp_tap
    from handlers.router import Router

    svc = service(org_db, clock)
    notice = await publish(org_db, svc, clock.now(), meeting=weekly(clock.now() + timedelta(days=2)))
    async with org_db.session() as s:
        cards = {r.person: r.card_no for r in await store.receipts_of(s, notice_id=notice.id)}
    org = await Directory(org_db, clock.now).org()
    deps = ChatDeps(
        workflow=cast(Any, None),
        tz=SH,
        now=clock.now,
        user=org.users["u_li"],
        todo=cast(Any, None),
        notice_responses=svc,
    )
    tap = CardAction(
        sender=Sender("wecom", "li"),
        event_id="e1",
        task_id=f"nt{notice.id}-{cards['u_li']}",
        version=1,
        action="rsvp_attend",
    )
    router: Router = root_router()
    assert router.resolve(tap) is on_rsvp_tap
    assert await on_rsvp_tap(tap, deps) == "已回执：参加"
    att = await svc.attendance("u_sun", notice.id)
    assert [r.name for r in att.attending] == ["李娜"]
    stranger = ChatDeps(
        workflow=cast(Any, None),
        tz=SH,
        now=clock.now,
        user=org.users["u_wang"],
        todo=cast(Any, None),
        notice_responses=svc,
    )
    # someone else's card: said in words, nothing recorded for either of them
    assert await on_rsvp_tap(tap, stranger) == "这张卡片不是发给您的，您的点击没有产生任何变更"
    assert [r.name for r in (await svc.attendance("u_sun", notice.id)).attending] == ["李娜"]


async def test_the_same_ballot_sent_twice_at_once_is_recorded_once(
    org_db: Database, clock: ManualClock
) -> None:
    """A double tap on 提交 (or a platform retry) is one vote in the trail, not two."""
    svc = service(org_db, clock)
    notice = await publish(org_db, svc, clock.now(), poll=LUNCH)
    ballot = {"q1": Answer((0,)), "q2": Answer((1,))}
    await asyncio.gather(*(svc.vote("u_li", notice.id, ballot) for _ in range(3)))
    assert (await events(org_db, notice.id)).count(NoticeEventKind.VOTED) == 1
    assert (await events(org_db, notice.id)).count(NoticeEventKind.ACKNOWLEDGED) == 1


async def test_a_restricted_meetings_reminders_and_delegate_message_leave_out_its_place(
    org_db: Database, clock: ManualClock
) -> None:
    """Chat messages of a 秘密 meeting carry its title and time only, as its cards do."""
    clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=SH))  # Friday morning
    svc = service(org_db, clock)
    monday_9 = datetime(2026, 11, 30, 9, 0, tzinfo=SH)
    notice = await publish(
        org_db, svc, clock.now(), meeting=weekly(monday_9), confidentiality=Confidentiality.SECRET
    )
    await svc.rsvp("u_wang", notice.id, RsvpAnswer.DELEGATE, delegate="u_zhao")
    clock.set(datetime(2026, 11, 30, 8, 45, 1, tzinfo=SH))
    assert await _scan_with_two(org_db, clock) >= 1
    texts = [str(r.payload.get("text")) for r in await outbox(org_db, notice.id) if r.kind == "text"]
    assert any("委派您参加会议" in t for t in texts) and any("会议提醒" in t for t in texts)
    assert not [t for t in texts if "三楼会议室" in t], texts
