"""In a real headless Chromium: the office signs in by trading its admin token for a desk session,
filters the requests, opens one and gives its stuck task to someone else with a reason (desktop
1280x900), then the list at 390x844 fits the phone. Pages show words, not codes. Screenshots are
left in the test's output directory."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.keys import API_TOKENS, WORKFLOW
from tests.browser import CHROMIUM, Browser
from tests.conftest import settings_for
from tests.test_workspace_lists import LEAVE, expense

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)
CODES = re.compile(r"\b(running|approved|pending|transferred|leave|expense|None)\b")


async def _reads(browser: Browser) -> str:
    text = str(await browser.evaluate("document.body.innerText"))
    assert not CODES.search(text), CODES.search(text)
    return text


async def _click(browser: Browser, selector: str) -> None:
    await browser.evaluate(f"document.querySelector({selector!r}).click()")


async def test_the_office_filters_opens_and_reassigns_a_stuck_task(
    org_db: Any, aiohttp_server: Any, clock: Any, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    wf = app[WORKFLOW]
    await wf.submit(template_key="expense", initiator="u_wu", form=expense(100))
    clock.advance(timedelta(minutes=1))
    leave = await wf.submit(template_key="leave", initiator="u_wu", form=LEAVE)
    clock.advance(timedelta(days=3))  # the leave is stuck past its deadline
    [task] = [t for s in leave.steps for t in s.tasks if t.status.value == "pending"]
    target = "u_li" if task.assignee != "u_li" else "u_sun"
    target_name = (await wf.org()).display_name(target)
    _, secret = await app[API_TOKENS].create(name="office", scopes=["read", "act", "admin"], user="u_zhao")

    async with Browser() as browser:
        await browser.send(
            "Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False
        )
        await browser.navigate(f"{base}/m/")  # same origin, so the desk session cookie is kept
        await browser.evaluate(
            f"fetch('/admin/session',{{method:'POST',headers:{{Authorization:'Bearer {secret}'}},"
            "credentials:'same-origin',redirect:'manual'}).then(function(r){return r.type})",
        )
        await browser.navigate(f"{base}/admin/requests")
        text = await _reads(browser)
        assert "共 2 条" in text and "申请" in text
        await browser.evaluate("document.querySelector('select[name=template]').value='leave'")
        await browser.evaluate("document.querySelector('input[name=overdue]').checked=true")
        await _click(browser, ".filters button")
        await browser.wait_for(
            "location.search.indexOf('template=leave')>=0 && document.readyState==='complete'"
        )
        text = await _reads(browser)
        assert "共 1 条" in text
        await browser.screenshot(str(tmp_path / "desk-requests.png"))

        await _click(browser, "table.list tbody a")
        await browser.wait_for(
            "location.pathname.indexOf('/admin/requests/')===0 && document.readyState==='complete'"
        )
        text = await _reads(browser)
        assert "管理操作" in text and "处理记录" in text
        await browser.screenshot(str(tmp_path / "desk-request.png"))
        await browser.evaluate(f"document.querySelector('form.act select[name=target]').value='{target}'")
        await browser.evaluate(
            "document.querySelector('form.act input[name=reason]').value='审批人出差，改由他人处理'"
        )
        await _click(browser, "form.act button[value=reassign]")
        await browser.wait_for("document.querySelector('.flash')!==null")
        text = await _reads(browser)
        assert (
            f"已转交给 {target_name}" in text and "管理员转交" in text and "审批人出差，改由他人处理" in text
        )
        await browser.evaluate("document.querySelector('.trail').scrollIntoView()")
        await browser.screenshot(str(tmp_path / "desk-reassigned.png"))

        await browser.navigate(f"{base}/admin/overdue")
        assert "按处理人" in await _reads(browser)
        await browser.screenshot(str(tmp_path / "desk-overdue.png"))

        await browser.emulate_phone(390, 844)
        await browser.navigate(f"{base}/admin/requests")
        await _reads(browser)
        assert await browser.evaluate("document.documentElement.scrollWidth") <= 390
        await browser.screenshot(str(tmp_path / "desk-requests-phone.png"))

    held = await wf.pending_tasks(target)
    assert [t.request_id for t in held] == [leave.id]
