"""In a real headless Chromium at 390x844: the request page with its action sheet, the new-request
form and its live route preview fit the phone (no sideways scrolling) and show words, not codes.
Screenshots are left in the test's output directory."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from approvals.engine import Action
from approvals.model import ActionKind
from bot.app import create_app
from bot.keys import SESSIONS, WORKFLOW
from tests.browser import CHROMIUM, Browser
from tests.conftest import settings_for
from tests.test_workspace_request import SEAL

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)
CODES = re.compile(r"\b(step_started|task_assigned|running|approved|pending|returned|seal_use|None)\b")
WIDTH = 390


async def _fits_and_reads(browser: Browser) -> None:
    assert await browser.evaluate("document.documentElement.scrollWidth") <= WIDTH
    text = await browser.evaluate("document.body.innerText")
    assert not CODES.search(text), CODES.search(text)


async def test_request_page_and_new_request_on_a_phone(
    org_db: Any, aiohttp_server: Any, clock: Any, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    req = await app[WORKFLOW].submit(
        template_key="seal_use",
        initiator="u_wu",
        form={**SEAL, "reason": "签署与上海某某建设工程有限公司的年度框架合同及其补充协议（第二版）"},
    )
    sun = await app[SESSIONS].start("u_sun", via="test")
    async with Browser() as browser:
        await browser.emulate_phone(WIDTH, 844)
        await browser.send("Network.setCookie", name="oabot_session", value=sun.id, url=base)
        await browser.navigate(f"{base}/m/r/{req.id}")
        assert "直属领导审批" in await browser.evaluate("document.body.innerText")
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "request.png"))
        await browser.evaluate(
            "(function(){var d=document.querySelectorAll('#actions details');d[0].open=true;d[3].open=true;"
            "document.getElementById('actions').scrollIntoView();return true})()"
        )
        await browser.evaluate(
            "(function(){var s=document.querySelector('.ws-pick-search');s.value='赵';"
            "s.dispatchEvent(new Event('input'));return true})()"
        )
        names = await browser.evaluate(
            "Array.prototype.map.call(document.querySelector('select.ws-pick').options,function(o){return o.text})"
        )
        assert names[0] == "请选择人员" and len(names) == 2 and names[1].startswith("赵敏")
        assert await browser.evaluate("document.querySelector('select.ws-pick').value") == "u_zhao"
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "request-actions.png"))

        wu = await app[SESSIONS].start("u_wu", via="test")
        await browser.send("Network.setCookie", name="oabot_session", value=wu.id, url=base)
        await browser.navigate(f"{base}/m/new")
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "new.png"))
        await browser.navigate(f"{base}/m/new/seal_use")
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "new-form.png"))
        for name, value in {
            "reason": "签署框架合同",
            "needed_at": "2026-11-24T10:00",
            "files": "框架合同.pdf",
            "copies": "2",
        }.items():
            await browser.evaluate(
                f"(function(){{var el=document.querySelector('[name={name}]');el.value='{value}';"
                "el.dispatchEvent(new Event('input',{bubbles:true}));return true})()"
            )
        await browser.evaluate(
            "(function(){var el=document.querySelector('[name=seal]');el.value='公章';"
            "el.dispatchEvent(new Event('change',{bubbles:true}));return true})()"
        )
        await browser.wait_for("document.getElementById('ws-preview').innerText.indexOf('总经理审批')>=0")
        await browser.evaluate("document.getElementById('ws-preview').scrollIntoView()")
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "new-preview.png"))
        await browser.evaluate("document.querySelector('button[value=submit]').click()")
        await browser.wait_for("location.pathname.indexOf('/m/r/')===0 && document.readyState==='complete'")
        assert "已提交「用章申请」" in await browser.evaluate("document.body.innerText")
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "submitted.png"))

        task = next(t for s in req.steps for t in s.tasks if t.assignee == "u_sun")
        await app[WORKFLOW].act(
            request_id=req.id,
            action=Action(
                kind=ActionKind.RETURN,
                actor="u_sun",
                task_id=task.id,
                version=task.version,
                comment="请补充合同编号",
            ),
        )
        await browser.navigate(f"{base}/m/r/{req.id}")
        await browser.evaluate("document.getElementById('actions').scrollIntoView()")
        assert "修改后重新提交" in await browser.evaluate("document.body.innerText")
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "resubmit.png"))
