"""In a real headless Chromium at 390x844: a poll voted by three people shows its SVG chart with
the right counts, and a meeting 回执 委派 adds the delegate to the organiser's attendance list.
Both notices are published through `services.notices` (so its publish hook schedules the meeting's
reminders). Screenshots are left in the test's output directory."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.app import create_app
from bot.keys import DB, NOTICE_RESPONSES, NOTICES, SESSIONS
from notices.model import Audience, Meeting, NoticeKind, Poll, Question
from notices.polls import Answer
from services.notices import NoticeDraft
from storage.timer_models import TimerRow
from tests.browser import CHROMIUM, Browser
from tests.conftest import settings_for

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)
CODES = re.compile(r"\b(attend|decline|delegate|leave|meeting|poll|working_hours|None|u_[a-z]+)\b")
WIDTH = 390
PEOPLE = ("u_zhang", "u_li", "u_wang", "u_chen")


async def _fits_and_reads(browser: Browser) -> str:
    assert await browser.evaluate("document.documentElement.scrollWidth") <= WIDTH
    text = str(await browser.evaluate("document.body.innerText"))
    assert not CODES.search(text), CODES.search(text)
    return text


async def _as(browser: Browser, app: Any, base: str, person: str) -> None:
    session = await app[SESSIONS].start(person, via="test")
    await browser.send("Network.setCookie", name="oabot_session", value=session.id, url=base)


async def test_a_poll_voted_by_three_people_shows_the_chart(
    org_db: Any, aiohttp_server: Any, clock: Any, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    poll = Poll(
        questions=(
            Question("q1", "年会地点<b>投票</b>", False, ("度假村", "市区酒店", "公司食堂")),
            Question("q2", "希望的活动", True, ("抽奖", "节目表演"), free_text=True),
        ),
        closes_at=clock.now() + timedelta(days=3),
    )
    draft = NoticeDraft(
        kind=NoticeKind.POLL, title="年会安排调查", audience=Audience(people=PEOPLE), poll=poll
    )
    notice = await app[NOTICES].create(author="u_sun", draft=draft)
    svc = app[NOTICE_RESPONSES]
    await svc.vote("u_zhang", notice.id, {"q1": Answer((0,)), "q2": Answer((0,))})
    await svc.vote("u_li", notice.id, {"q1": Answer((1,)), "q2": Answer((0, 1))})
    async with Browser() as browser:
        await browser.emulate_phone(WIDTH, 844)
        await _as(browser, app, base, "u_wang")
        await browser.navigate(f"{base}/m/n/{notice.id}/poll")
        text = await _fits_and_reads(browser)
        assert "提交答卷" in text and "调查结果" not in text  # no results before voting
        await browser.screenshot(str(tmp_path / "poll-ballot.png"))
        await browser.evaluate(
            "(function(){document.querySelector('input[name=q-q1][value=\"0\"]').click();"
            "document.querySelector('input[name=q-q2][value=\"1\"]').click();"
            "document.querySelector('textarea[name=t-q2]').value='希望有<script>乐队</script>';"
            "document.querySelector('#np-ballot button[type=submit]').click();return true})()"
        )
        await browser.wait_for("document.getElementById('np-results') !== null")
        text = await _fits_and_reads(browser)
        assert "已提交，结果如下" in text and "共 3 人作答" in text
        counts = await browser.evaluate(
            "Array.prototype.map.call(document.querySelectorAll('#np-results svg .poll-count'),"
            "function(t){return t.textContent})"
        )
        assert counts == ["2 票 66.7%", "1 票 33.3%", "0 票 0%", "2 票 66.7%", "2 票 66.7%"]
        assert await browser.evaluate("document.querySelectorAll('#np-results svg').length") == 2
        assert await browser.evaluate("document.querySelectorAll('#np-results script').length") == 0
        assert "希望有<script>乐队</script>" in text  # shown as text, never run
        assert "谁选了什么" not in text  # a voter sees counts, not names
        await browser.screenshot(str(tmp_path / "poll-results.png"))

        await _as(browser, app, base, "u_sun")  # the author of a named poll sees who chose what
        await browser.navigate(f"{base}/m/n/{notice.id}/poll")
        text = await _fits_and_reads(browser)
        assert "谁选了什么" in text and "王芳" in text and "共 3 人作答" in text
        await browser.evaluate("document.getElementById('np-who').scrollIntoView()")
        await browser.screenshot(str(tmp_path / "poll-author.png"))

        clock.advance(timedelta(days=3, seconds=1))  # past the closing time: the final results
        await _as(browser, app, base, "u_wang")
        await browser.navigate(f"{base}/m/n/{notice.id}/poll")
        text = await _fits_and_reads(browser)
        assert "已截止" in text and "最终结果" in text and "修改我的答卷" not in text
        await browser.screenshot(str(tmp_path / "poll-closed.png"))


async def test_a_meeting_rsvp_delegation_adds_the_delegate(
    org_db: Any, aiohttp_server: Any, clock: Any, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    starts = clock.now() + timedelta(days=2)
    meeting = Meeting(starts_at=starts, ends_at=starts + timedelta(hours=1), place="三楼第一会议室",
                      agenda="一、上周工作回顾\n二、本周安排", organiser="u_sun")  # fmt: skip
    draft = NoticeDraft(
        kind=NoticeKind.MEETING, title="部门周例会", audience=Audience(people=PEOPLE), meeting=meeting
    )
    notice = await app[NOTICES].create(author="u_sun", draft=draft)
    async with app[DB].session() as s:
        keys = (
            (await s.execute(select(col(TimerRow.key)).where(col(TimerRow.ref) == notice.id))).scalars().all()
        )
    assert sorted(k for k in keys if k and k.startswith("meeting_remind")) == [
        f"meeting_remind:{notice.id}:15m",
        f"meeting_remind:{notice.id}:1wh",
    ]  # scheduled at publish through the publish hook
    async with Browser() as browser:
        await browser.emulate_phone(WIDTH, 844)
        await _as(browser, app, base, "u_li")
        await browser.navigate(f"{base}/m/n/{notice.id}/rsvp")
        text = await _fits_and_reads(browser)
        assert "三楼第一会议室" in text and "未回执" in text
        await browser.screenshot(str(tmp_path / "rsvp.png"))
        # 不参加 without a reason: refused in words, nothing recorded
        await browser.evaluate(
            "(function(){document.querySelector('input[name=answer][value=decline]').click();"
            "document.querySelector('#np-rsvp button[type=submit]').click();return true})()"
        )
        await browser.wait_for("document.querySelector('.np-error') !== null")
        assert "请填写原因" in await _fits_and_reads(browser)
        await browser.evaluate(
            "(function(){document.querySelector('input[name=answer][value=delegate]').click();"
            "var s=document.querySelector('.ws-pick-search');s.value='赵';s.dispatchEvent(new Event('input'));"
            "return true})()"
        )
        assert await browser.evaluate("document.getElementById('np-delegate').value") == "u_zhao"
        await browser.evaluate("document.getElementById('np-delegate').scrollIntoView()")
        await browser.screenshot(str(tmp_path / "rsvp-delegate.png"))
        await browser.evaluate("document.querySelector('#np-rsvp button[type=submit]').click()")
        await browser.wait_for("document.body.innerText.indexOf('已通知对方') >= 0")
        text = await _fits_and_reads(browser)
        assert "委派 赵敏 参加" in text and "委派他人参加：赵敏" in text
        await browser.screenshot(str(tmp_path / "rsvp-done.png"))

        await _as(browser, app, base, "u_sun")
        await browser.navigate(f"{base}/m/n/{notice.id}/attendance")
        text = await _fits_and_reads(browser)
        delegated = await browser.evaluate("document.getElementById('np-delegated').innerText")
        assert "李娜" in delegated and "委派 赵敏 参加" in delegated
        waiting = await browser.evaluate("document.getElementById('np-unanswered').innerText")
        assert "赵敏" in waiting and "受 李娜 委派" in waiting  # the delegate is on the list
        assert "未回执（4）" in text  # 张伟, 王芳, 陈静 and the delegate 赵敏
        await browser.screenshot(str(tmp_path / "attendance.png"))

        await _as(browser, app, base, "u_wang")  # not the organiser: refused in words
        await browser.navigate(f"{base}/m/n/{notice.id}/attendance")
        assert "只有会议组织人" in await _fits_and_reads(browser)
