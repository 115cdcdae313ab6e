"""In a real headless Chromium at 390x844: my notices, a notice with its 已收到 button, the password
prompt, compose with its audience pickers, and the author's progress page fit the phone (no
sideways scrolling) and read as Chinese words, not codes. Tapping 已收到 and 一键催办 works in the
page. Screenshots are left in the test's output directory."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.keys import DISPATCHER, NOTICES, SESSIONS
from notices.model import Audience, Confidentiality, DeptPick, Meeting, NoticeKind, Poll, Question
from services.notices import NoticeDraft
from tests.browser import CHROMIUM, Browser
from tests.conftest import settings_for

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)
CODES = re.compile(
    r"\b(notice|announcement|meeting|poll|published|pending_approval|acknowledged|defaulted|opened|"
    r"internal|secret|public|None|True|False|u_[a-z]+|marketing|gm_office)\b"
)
WIDTH = 390


async def _fits_and_reads(browser: Browser) -> str:
    assert await browser.evaluate("document.documentElement.scrollWidth") <= WIDTH
    text = str(await browser.evaluate("document.body.innerText"))
    assert not CODES.search(text), CODES.search(text)
    return text


async def test_notice_pages_on_a_phone(org_db: Any, aiohttp_server: Any, clock: Any, tmp_path: Path) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    notices = app[NOTICES]
    long_title = "关于开展2026年度办公区域消防安全自查及年终集中检查工作的通知（第二次补充）"
    notice = await notices.create(
        author="u_sun",
        draft=NoticeDraft(
            kind=NoticeKind.NOTICE,
            title=long_title,
            audience=Audience(departments=(DeptPick("marketing", True),), people=("u_chen", "u_liu")),
            body="各位同事：\n请于本周五下班前完成本部门办公区域的消防安全自查，"
            "并将自查表交至行政服务部。\n谢谢配合。",
        ),
        channel="web",
    )
    clock.advance(timedelta(minutes=3))
    await notices.create(
        author="u_sun",
        draft=NoticeDraft(
            kind=NoticeKind.NOTICE,
            title="季度客户回访安排",
            audience=Audience(people=("u_wu",)),
            body="请按附表完成回访。",
        ),
        channel="web",
    )
    secret = await notices.create(
        author="u_sun",
        draft=NoticeDraft(
            kind=NoticeKind.NOTICE,
            title="薪酬调整方案（仅限指定人员）",
            audience=Audience(people=("u_wu",)),
            body="明年起调整绩效系数。",
            confidentiality=Confidentiality.SECRET,
            password="s3cret-pass",
        ),
        channel="web",
    )
    wu = await app[SESSIONS].start("u_wu", via="test")
    sun = await app[SESSIONS].start("u_sun", via="test")

    async with Browser() as browser:
        await browser.emulate_phone(WIDTH, 844)
        await browser.send("Network.setCookie", name="oabot_session", value=wu.id, url=base)

        await browser.navigate(f"{base}/m/")
        text = await _fits_and_reads(browser)
        assert "通知" in text
        await browser.screenshot(str(tmp_path / "lists-with-notices.png"))

        await browser.navigate(f"{base}/m/n/")
        text = await _fits_and_reads(browser)
        assert "季度客户回访安排" in text and "未读" in text
        await browser.screenshot(str(tmp_path / "my-notices.png"))

        await browser.navigate(f"{base}/m/n/{notice.id}")
        text = await _fits_and_reads(browser)
        assert "消防安全自查" in text and "已收到" in text
        await browser.screenshot(str(tmp_path / "notice.png"))
        await browser.evaluate("document.querySelector('button[data-do=ack]').click()")
        await browser.wait_for("document.body.innerText.indexOf('您已确认收到')>=0")
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "notice-acknowledged.png"))

        await browser.navigate(f"{base}/m/n/{secret.id}")
        text = await _fits_and_reads(browser)
        assert "访问密码" in text and "绩效系数" not in text
        await browser.screenshot(str(tmp_path / "password.png"))
        await browser.evaluate(
            "(function(){document.querySelector('input[name=password]').value='s3cret-pass';"
            "document.querySelector('.nt-lock form').submit();return true})()"
        )
        await browser.wait_for("document.body.innerText.indexOf('绩效系数')>=0")
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "unlocked.png"))

        await browser.send("Network.setCookie", name="oabot_session", value=sun.id, url=base)
        await browser.navigate(f"{base}/m/n/new")
        text = await _fits_and_reads(browser)
        assert "发给谁" in text and "密级" in text
        await browser.screenshot(str(tmp_path / "compose.png"))
        await browser.evaluate(
            "(function(){var d=document.querySelectorAll('#nt-new details');for(var i=0;i<d.length;i++){d[i].open=true}"
            "var k=document.querySelector('input[name=kind][value=meeting]');k.checked=true;"
            "k.dispatchEvent(new Event('change',{bubbles:true}));return true})()"
        )
        await _fits_and_reads(browser)
        assert await browser.evaluate("document.querySelector('[data-kind-only=meeting]').style.display===''")
        assert await browser.evaluate(
            "document.querySelector('[data-kind-only=poll]').style.display==='none'"
        )
        await browser.evaluate("document.querySelector('#nt-new fieldset').scrollIntoView()")
        await browser.screenshot(str(tmp_path / "compose-audience.png"))
        await browser.evaluate("document.querySelector('[data-kind-only=meeting]').scrollIntoView()")
        await browser.screenshot(str(tmp_path / "compose-meeting.png"))

        await browser.navigate(f"{base}/m/n/{notice.id}/receipts")
        text = await _fits_and_reads(browser)
        assert "1 / 3" in text and "吴昊" in text and "陈静" in text
        await browser.screenshot(str(tmp_path / "receipts.png"))
        await browser.evaluate("document.querySelector('button[data-do=urge]').click()")
        await browser.wait_for("document.body.innerText.indexOf('已催办')>=0")
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "receipts-urged.png"))

        await browser.navigate(f"{base}/m/n/?box=sent")
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "sent.png"))


async def test_a_notice_card_in_the_console_on_a_phone(
    org_db: Any, aiohttp_server: Any, clock: Any, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db, console=True), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    await app[NOTICES].create(
        author="u_sun",
        draft=NoticeDraft(
            kind=NoticeKind.NOTICE,
            title="关于年底安全检查的通知",
            audience=Audience(people=("u_wu",)),
            body="请各位于本周五前完成办公区域的安全自查，并将自查表交至行政服务部。",
        ),
        channel="web",
    )
    await app[DISPATCHER].drain()
    async with Browser() as browser:
        await browser.emulate_phone(WIDTH, 844)
        await browser.navigate(f"{base}/console/u/u_wu")
        await browser.wait_for("!!document.querySelector('[data-kind=notice_card]')")
        text = await browser.evaluate("document.querySelector('[data-kind=notice_card]').innerText")
        assert "关于年底安全检查的通知" in text and "已收到" in text and not CODES.search(text)
        await browser.screenshot(str(tmp_path / "console-card.png"))
        await browser.evaluate(
            "(function(){window.beforeTap=1;document.querySelector('button[data-action=notice_ack]').click();"
            "return true})()"
        )
        await browser.wait_for(
            "!window.beforeTap && document.readyState === 'complete'"
        )  # the page after the tap
        await app[DISPATCHER].drain()
        await browser.navigate(f"{base}/console/u/u_wu")
        await browser.wait_for("!!document.querySelector('[data-kind=notice_card] .outcome')")
        assert "已收到" in await browser.evaluate(
            "document.querySelector('[data-kind=notice_card] .outcome').innerText"
        )
        await browser.screenshot(str(tmp_path / "console-card-acknowledged.png"))


async def test_a_meeting_and_a_poll_lead_to_their_rsvp_and_poll_pages(
    org_db: Any, aiohttp_server: Any, clock: Any, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    starts = clock.now() + timedelta(days=2)
    meeting = await app[NOTICES].create(
        author="u_sun",
        draft=NoticeDraft(
            kind=NoticeKind.MEETING,
            title="年终工作总结会",
            audience=Audience(people=("u_wu", "u_chen")),
            body="请各部门准备年度工作汇报。",
            meeting=Meeting(
                starts_at=starts,
                ends_at=starts + timedelta(hours=2),
                place="三楼第一会议室",
                agenda="一、年度工作回顾\n二、明年计划",
                organiser="u_sun",
            ),
        ),
        channel="web",
    )
    poll = await app[NOTICES].create(
        author="u_sun",
        draft=NoticeDraft(
            kind=NoticeKind.POLL,
            title="年会时间调查",
            audience=Audience(people=("u_wu", "u_chen")),
            poll=Poll(questions=(Question(id="q1", text="年会安排在哪天？", options=("周五", "周六")),)),
        ),
        channel="web",
    )
    wu = await app[SESSIONS].start("u_wu", via="test")
    async with Browser() as browser:
        await browser.emulate_phone(WIDTH, 844)
        await browser.send("Network.setCookie", name="oabot_session", value=wu.id, url=base)
        await browser.navigate(f"{base}/m/n/{meeting.id}")
        text = await _fits_and_reads(browser)
        assert "三楼第一会议室" in text and "会议回执" in text
        await browser.screenshot(str(tmp_path / "meeting.png"))
        await browser.evaluate(f"document.querySelector('a[href=\"/m/n/{meeting.id}/rsvp\"]').click()")
        await browser.wait_for(
            f"location.pathname === '/m/n/{meeting.id}/rsvp' && document.readyState === 'complete'"
        )
        assert "参加" in await browser.evaluate("document.body.innerText")

        await browser.navigate(f"{base}/m/n/{poll.id}")
        text = await _fits_and_reads(browser)
        assert "参与调查" in text
        await browser.screenshot(str(tmp_path / "poll.png"))
        await browser.evaluate(f"document.querySelector('a[href=\"/m/n/{poll.id}/poll\"]').click()")
        await browser.wait_for(
            f"location.pathname === '/m/n/{poll.id}/poll' && document.readyState === 'complete'"
        )
        assert "年会安排在哪天" in await browser.evaluate("document.body.innerText")
