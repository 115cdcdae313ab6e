"""In a real headless Chromium at 390x844: each workspace list of the demo people, and 孙丽's
batch approval of three tasks where one was already handled (2 已同意 + 1 已处理). Every page fits
the phone's width; screenshots of each are saved in the test's output directory."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from approvals.clock import ManualClock
from bot.app import create_app
from bot.keys import SESSIONS
from storage.db import Database
from tests.browser import CHROMIUM, Browser
from tests.conftest import Api, settings_for

# Skipped on a developer machine without Chromium; in CI (CI=true) a missing browser fails instead.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)

LEAVE = {
    "leave_type": "事假",
    "period": {"start": "2026-11-24", "end": "2026-11-25"},
    "days": 2,
    "reason": "家中有事，需回老家处理一份很长很长的手续说明：https://example.invalid/a/very/long/path/that/should/wrap/nicely",
}


def expense(amount: float, category: str, reason: str) -> dict[str, Any]:
    return {"category": category, "amount": amount, "reason": reason, "invoice_count": 2}


async def sign_in_as(browser: Browser, api: Api, base: str, user_id: str) -> None:
    session = await api.app[SESSIONS].start(user_id, via="test")  # type: ignore[index]
    await browser.send("Network.setCookie", name="oabot_session", value=session.id, url=base)


async def shoot(browser: Browser, url: str, path: Path) -> str:
    """Open `url`, check it fits 390 px, save a screenshot; the page's text."""
    await browser.navigate(url)
    width = await browser.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{url} scrolls sideways: {width}px"
    await browser.screenshot(str(path))
    return str(await browser.evaluate("document.body.innerText"))


async def test_lists_and_batch_approval_on_a_phone(
    org_db: Database, aiohttp_client: Any, clock: ManualClock, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    client = await aiohttp_client(app)
    api = Api(client, app)
    base = str(client.make_url("")).rstrip("/")

    async def submit(template: str, initiator: str, form: dict[str, Any], urgency: str = "normal") -> Any:
        clock.advance(timedelta(minutes=7))
        return await api.submit(template, initiator, form, urgency=urgency)

    leave = await submit("leave", "u_wu", LEAVE)
    [task] = await api.pending("u_sun")
    await api.call(
        "POST",
        f"/requests/{leave['id']}/actions",
        {"action": "approve", "actor": "u_sun", "task_id": task["task_id"], "version": task["version"]},
        expect=200,
    )
    await submit("expense", "u_wu", expense(860, "差旅费", "上海出差往返高铁"))
    second = await submit("expense", "u_wu", expense(2400, "招待费", "客户晚宴"), "important")
    await submit("expense", "u_wu", expense(95.5, "交通费", "打车去客户现场"), "urgent")
    clock.advance(timedelta(hours=30))  # some are overdue by now

    async with Browser() as browser:
        await browser.emulate_phone()
        await sign_in_as(browser, api, base, "u_sun")
        todo = await shoot(browser, f"{base}/m/", tmp_path / "todo.png")
        assert "待我处理" in todo and "批量同意" in todo and "招待费报销 2400.0 元" in todo
        assert "running" not in todo and "important" not in todo  # words, not codes
        done = await shoot(browser, f"{base}/m/done", tmp_path / "done.png")
        assert "事假 2 天" in done and "已通过" in done
        found = await shoot(browser, f"{base}/m/todo?q=%E5%AE%A2%E6%88%B7", tmp_path / "search.png")
        assert "招待费报销" in found and "差旅费报销" not in found  # 客户 is in two of the reasons
        await browser.navigate(f"{base}/m/todo")

        # one of the three is handled on a card meanwhile
        pending = {t["request_id"]: t for t in await api.pending("u_sun")}
        t = pending[second["id"]]
        await api.call(
            "POST",
            f"/requests/{second['id']}/actions",
            {"action": "approve", "actor": "u_sun", "task_id": t["task_id"], "version": t["version"]},
            expect=200,
        )
        await browser.evaluate(
            "(function(){var boxes=document.querySelectorAll('input[name=t]');"
            "for(var i=0;i<boxes.length;i++){boxes[i].checked=true}"
            f"document.querySelector('textarea[name=opinion]').value={json.dumps('同意，按标准报销')};"
            "return boxes.length})()"
        )
        await browser.evaluate("document.querySelector('button[data-batch]').click()")
        await browser.wait_for("location.pathname === '/m/batch' && document.readyState === 'complete'")
        assert await browser.evaluate("document.documentElement.scrollWidth") <= 390
        await browser.screenshot(str(tmp_path / "batch.png"))
        outcomes = await browser.evaluate(
            "Array.prototype.map.call(document.querySelectorAll('[data-outcome]'),"
            "function(e){return e.getAttribute('data-outcome')}).sort().join(',')"
        )
        assert outcomes == "already_handled,approved,approved"
        summary = await browser.evaluate("document.querySelector('.bt-sum').innerText")
        assert "2 条已同意" in summary and "1 条已处理" in summary

        await sign_in_as(browser, api, base, "u_wu")
        mine = await shoot(browser, f"{base}/m/mine", tmp_path / "mine.png")
        assert mine.count("费用报销") == 3 and "请假申请" in mine
        await sign_in_as(browser, api, base, "u_zhao")
        cc = await shoot(browser, f"{base}/m/cc", tmp_path / "cc.png")
        assert "事假 2 天" in cc and "抄送于" in cc
        await sign_in_as(browser, api, base, "u_qian")
        await shoot(browser, f"{base}/m/todo", tmp_path / "finance_todo.png")
