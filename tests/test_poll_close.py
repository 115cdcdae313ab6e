"""A poll closes at its closing time: a `poll_close` timer written when it is published records
`closed` in the notice trail once, however many scanners race for it, and tells the author the
final counts with a link to the results; the results page says 已截止 and nobody votes after.
A recalled poll closes quietly. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from datetime import time, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from approvals.clock import ManualClock
from bot.app import create_app
from bot.keys import NOTICE_RESPONSES, NOTICES, SESSIONS
from deadlines.org_calendar import OrgCalendar
from deadlines.timer_kinds import TimerKinds, TimerScanner
from deadlines.timers import TimerKind
from notices.model import Audience, NoticeEventKind, NoticeKind, Poll, Question
from notices.polls import Answer, PollClosed
from services.directory import Directory
from services.links import PersonalLinks
from services.notice_responses import NoticeResponses
from services.notices import NoticeDraft
from storage import notice_store as store
from storage.db import Database
from storage.timer_models import TimerRow
from tests.conftest import settings_for
from tests.test_notice_responses import SH, outbox

LUNCH = Question("q1", "午餐地点", False, ("食堂", "外卖", "自带"), free_text=True)


async def _poll(app: Any, clock: ManualClock, hours: int = 2) -> Any:
    draft = NoticeDraft(
        kind=NoticeKind.POLL,
        title="午餐调查",
        audience=Audience(people=("u_wu", "u_chen", "u_liu")),
        poll=Poll(questions=(LUNCH,), closes_at=clock.now() + timedelta(hours=hours)),
    )
    return await app[NOTICES].create(author="u_sun", draft=draft, channel="web")


async def _scan_with_two(db: Database, clock: ManualClock) -> int:
    """Two replicas' timer scans at once (each its own connection pool and services, the
    app's link secret kept in the database)."""
    replica = Database(db.url, schema=db.schema)
    try:
        scanners = []
        for database in (db, replica):
            kinds = TimerKinds()
            NoticeResponses(
                db=database,
                directory=Directory(database, clock.now),
                links=PersonalLinks(database, secret=None, public_url="http://oabot.test", now=clock.now),
                calendar=OrgCalendar(SH, [(time(9), time(12)), (time(13, 30), time(18))]),
                tz=SH,
                now=clock.now,
                kinds=kinds,
            )
            scanners.append(TimerScanner(db=database, kinds=kinds, now=clock.now))
        return sum(stats.fired for stats in await asyncio.gather(*(s.scan_once() for s in scanners)))
    finally:
        await replica.dispose()


async def _closed_events(db: Database, notice_id: str) -> list[Any]:
    async with db.session() as s:
        return [e for e in await store.events_of(s, notice_id=notice_id) if e.kind == NoticeEventKind.CLOSED]


async def test_a_poll_closes_once_with_two_scanners_and_the_author_gets_the_counts(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    client = await aiohttp_client(app)
    notice = await _poll(app, clock)
    responses = app[NOTICE_RESPONSES]
    await responses.vote("u_wu", notice.id, {"q1": Answer((0,))})
    await responses.vote("u_chen", notice.id, {"q1": Answer((0,), "多些素菜")})
    await responses.vote("u_liu", notice.id, {"q1": Answer((1,))})
    async with org_db.session() as s:
        (timer,) = (await s.execute(select(TimerRow).where(col(TimerRow.ref) == notice.id)
                                    .where(col(TimerRow.kind) == TimerKind.POLL_CLOSE.value))).scalars()  # fmt: skip
    assert timer.due_at == notice.poll.closes_at

    assert await _scan_with_two(org_db, clock) == 0  # not yet
    clock.advance(timedelta(hours=2, seconds=1))
    assert await _scan_with_two(org_db, clock) == 1
    assert await _scan_with_two(org_db, clock) == 0

    (closed,) = await _closed_events(org_db, notice.id)
    assert closed.data["voters"] == 3 and closed.data["questions"][0]["counts"] == [2, 1, 0]
    (told,) = [r for r in await outbox(org_db, notice.id) if r.kind == "text"]
    assert told.recipient == "u_sun"
    text = told.payload["text"]
    assert text.startswith("调查「午餐调查」已截止，共 3 人作答（发送 3 人）。")
    assert "午餐地点：食堂 2 票（66.7%）、外卖 1 票（33.3%）、自带 0 票（0%）；文字意见 1 条" in text
    link = re.search(r"查看结果：(\S+)$", text)
    assert link and link.group(1).startswith("http://oabot.test/")

    # the link signs the author in and opens the results, which say 已截止
    resp = await client.get(link.group(1).removeprefix("http://oabot.test"), allow_redirects=True)
    page = await resp.text()
    assert resp.status == 200 and "已截止" in page and "最终结果" in page and "共 3 人作答" in page
    assert "提交答卷" not in page
    try:
        await responses.vote("u_liu", notice.id, {"q1": Answer((2,))})
    except PollClosed:
        pass
    else:
        raise AssertionError("a vote after the close was taken")
    voter = await app[SESSIONS].start("u_wu", via="test")
    page = await (
        await client.get(f"/m/n/{notice.id}/poll", headers={"Cookie": f"oabot_session={voter.id}"})
    ).text()
    assert "已截止" in page and "提交答卷" not in page and "修改我的答卷" not in page


async def test_a_recalled_poll_closes_quietly(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    await aiohttp_client(app)
    notice = await _poll(app, clock, hours=1)
    await app[NOTICES].recall(author="u_sun", notice_id=notice.id)
    clock.advance(timedelta(hours=1, seconds=1))

    assert await _scan_with_two(org_db, clock) == 0
    assert await _closed_events(org_db, notice.id) == []
    assert not [r for r in await outbox(org_db, notice.id) if r.kind == "text"]
