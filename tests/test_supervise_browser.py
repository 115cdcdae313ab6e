"""In a real headless Chromium at 390x844: a manager's 督办 card in the console (催办, 转交, 代为处理,
查看), the 转交 person picker it opens (search narrows the team) and the team's overdue list fit the
phone and show words, not codes. Screenshots are left in the test's output directory."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.keys import DISPATCHER, SESSIONS, TIMERS, WORKFLOW
from tests.browser import CHROMIUM, Browser
from tests.conftest import settings_for
from tests.test_workspace_request import LEAVE

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)
CODES = re.compile(r"\b(supervise_urge|take_over|reassign|escalate|pending|leave|None)\b")
WIDTH = 390


async def _fits_and_reads(browser: Browser) -> str:
    assert await browser.evaluate("document.documentElement.scrollWidth") <= WIDTH
    text = str(await browser.evaluate("document.body.innerText"))
    assert not CODES.search(text), CODES.search(text)
    return text


async def test_supervise_card_and_person_picker_on_a_phone(
    org_db: Any, aiohttp_server: Any, clock: Any, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db, console=True), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    req = await app[WORKFLOW].submit(template_key="leave", initiator="u_wu", form=LEAVE)
    task = req.steps[0].tasks[0]
    clock.advance(timedelta(days=1))  # 孙丽's task is a day late: the ladder's rungs fire
    await app[TIMERS].scan_once()
    await app[DISPATCHER].drain()

    async with Browser() as browser:
        await browser.emulate_phone(WIDTH, 844)
        await browser.navigate(f"{base}/console/u/u_li")
        await browser.wait_for("!!document.querySelector('.supervise .card')")
        await browser.evaluate("document.querySelector('.supervise .card').scrollIntoView();true")
        labels = await browser.evaluate(
            "Array.prototype.map.call(document.querySelectorAll('.supervise .buttons [data-action]'),"
            "function(b){return b.textContent})"
        )
        assert labels == ["催办", "转交", "代为处理", "查看"]  # leave allows 代为处理 (manager_may_act)
        text = await _fits_and_reads(browser)
        assert "督办·请假申请" in text and "【督办】孙丽 的待办已超时" in text
        await browser.screenshot(str(tmp_path / "supervise-card.png"))

        li = await app[SESSIONS].start("u_li", via="test")
        await browser.send("Network.setCookie", name="oabot_session", value=li.id, url=base)
        await browser.navigate(f"{base}/m/s/{task.id}/{task.version}")
        text = await _fits_and_reads(browser)
        assert "当前处理人" in text and "转交给团队中的其他人" in text and "代为处理" in text
        await browser.evaluate(
            "(function(){var s=document.querySelector('.sv-search');s.value='行政';"
            "s.dispatchEvent(new Event('input'));return true})()"
        )
        shown = await browser.evaluate(
            "Array.prototype.filter.call(document.querySelectorAll('.sv-people li'),"
            "function(li){return li.style.display!=='none'}).map(function(li){return li.querySelector('b').textContent})"
        )
        assert shown and "赵敏" in shown and "周杰" not in shown  # 行政服务部 / 行政人事部 only
        await browser.evaluate(
            "document.querySelector('.sv-search').value='';"
            "document.querySelector('.sv-search').dispatchEvent(new Event('input'));true"
        )
        await browser.evaluate("document.querySelector('input[value=u_zhao]').click();true")
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "supervise-picker.png"))

        await browser.navigate(f"{base}/m/s/")
        text = await _fits_and_reads(browser)
        assert "您的团队有 1 条待办已超时" in text
        await browser.screenshot(str(tmp_path / "supervise-list.png"))

        # Confirming the transfer lands on the request page, whose trail says what happened.
        await browser.navigate(f"{base}/m/s/{task.id}/{task.version}")
        await browser.evaluate(
            "document.querySelector('input[value=u_zhao]').click();"
            "document.querySelector('#reassign button[type=submit]').click();true"
        )
        await browser.wait_for(f"location.pathname === '/m/r/{req.id}'")
        text = await _fits_and_reads(browser)
        assert "已转交给赵敏" in text and "督办转交：赵敏" in text
        await browser.screenshot(str(tmp_path / "supervise-done.png"))
