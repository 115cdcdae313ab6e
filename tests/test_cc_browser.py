"""In a real headless Chromium at 390x844: a CC'd person's request page (a note, no actions), an
approver's 知会他人 picker, and an archived request, each fitting the phone and in words, not
codes. Screenshots are left in the test's output directory (and in OABOT_SHOTS when set)."""

from __future__ import annotations

import os
import re
import shutil
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
CODES = re.compile(r"\b(running|approved|pending|notify_others|archive|cc_sent|seal_use|None)\b")
WIDTH = 390


async def _shot(browser: Browser, path: Path) -> None:
    assert await browser.evaluate("document.documentElement.scrollWidth") <= WIDTH
    text = await browser.evaluate("document.body.innerText")
    assert not CODES.search(text), CODES.search(text)
    await browser.screenshot(str(path))
    if shots := os.environ.get("OABOT_SHOTS"):
        shutil.copy(path, Path(shots) / path.name)


async def _decide(app: Any, rid: str, user: str) -> None:
    view = await app[WORKFLOW].get(rid)
    task = next(t for s in view.steps for t in s.tasks if t.assignee == user and t.status.value == "pending")
    await app[WORKFLOW].act(
        request_id=rid,
        action=Action(kind=ActionKind.APPROVE, actor=user, task_id=task.id, version=task.version),
    )


async def test_cc_page_notify_others_and_archived_page_on_a_phone(
    org_db: Any, aiohttp_server: Any, clock: Any, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    req = await app[WORKFLOW].submit(
        template_key="seal_use", initiator="u_wu", form={**SEAL, "cc_people": ["u_zheng", "u_zhou"]}
    )
    async with Browser() as browser:
        await browser.emulate_phone(WIDTH, 844)
        zheng = await app[SESSIONS].start("u_zheng", via="test")
        await browser.send("Network.setCookie", name="oabot_session", value=zheng.id, url=base)
        await browser.navigate(f"{base}/m/r/{req.id}")
        text = await browser.evaluate("document.body.innerText")
        assert (
            "您是本申请的抄送人" in text and "抄送通知人" in text and "同意" not in text.split("审批流程")[0]
        )
        await _shot(browser, tmp_path / "cc-request.png")
        await browser.navigate(f"{base}/m/cc")
        assert "签署框架合同" in await browser.evaluate("document.body.innerText")
        await _shot(browser, tmp_path / "cc-list.png")

        sun = await app[SESSIONS].start("u_sun", via="test")
        await browser.send("Network.setCookie", name="oabot_session", value=sun.id, url=base)
        await browser.navigate(f"{base}/m/r/{req.id}")
        opened = await browser.evaluate(
            "(function(){var s=document.querySelectorAll('#actions summary');for(var i=0;i<s.length;i++){"
            "if(s[i].textContent==='知会他人'){s[i].parentNode.open=true;s[i].scrollIntoView();return true}}"
            "return false})()"
        )
        assert opened
        await _shot(browser, tmp_path / "notify-others.png")

        for user in ("u_sun", "u_wang", "u_li", "u_zhang", "u_chen"):
            await _decide(app, req.id, user)
        await app[WORKFLOW].act(
            request_id=req.id, action=Action(kind=ActionKind.ARCHIVE, actor="u_sun", comment="已办结")
        )
        await browser.navigate(f"{base}/m/r/{req.id}")
        text = await browser.evaluate("document.body.innerText")
        assert "归档，只能查看" in text and "处理记录" in text and "归档" in text.split("处理记录")[1]
        await _shot(browser, tmp_path / "archived.png")
