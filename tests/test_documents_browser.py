"""In a real headless Chromium at 390x844: a registered 发文's request page shows its number 文号
first and reads as words; the drafter's page of an unopened one offers 收回文件. Screenshots are
left in the test's output directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from approvals.engine import Action
from approvals.model import ActionKind
from bot.app import create_app
from bot.keys import SESSIONS, WORKFLOW
from tests.browser import CHROMIUM, Browser
from tests.conftest import settings_for
from tests.test_builtin_flows import doc_issue
from tests.test_workspace_request_browser import WIDTH, _fits_and_reads

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)


async def test_numbered_document_page_and_recall_on_a_phone(
    org_db: Any, aiohttp_server: Any, clock: Any, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    wf = app[WORKFLOW]
    view = await wf.submit(template_key="doc_issue", initiator="u_wu", form=doc_issue("下行"))
    fresh = await wf.submit(template_key="doc_issue", initiator="u_wu", form=doc_issue("平行"))
    for person in ("u_sun", "u_zhao", "u_zhang", "u_zhao"):
        task = next(t for s in view.steps for t in s.tasks if t.status == "pending")
        view = await wf.act(
            request_id=view.id,
            action=Action(ActionKind.APPROVE, person, task.id, task.version, comment="拟同意"),
        )
    wu = await app[SESSIONS].start("u_wu", via="test")
    async with Browser() as browser:
        await browser.emulate_phone(WIDTH, 844)
        await browser.send("Network.setCookie", name="oabot_session", value=wu.id, url=base)
        await browser.navigate(f"{base}/m/r/{view.id}")
        text = await browser.evaluate("document.body.innerText")
        assert "文号\n办发〔2026〕1号" in text and "登记文号：办发〔2026〕1号" in text
        assert "收回文件" not in text  # opened by everyone who handled it
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "numbered.png"))
        await browser.navigate(f"{base}/m/r/{fresh.id}")
        await browser.evaluate(
            "(function(){var d=document.querySelectorAll('#actions details');d[d.length-1].open=true;"
            "document.getElementById('actions').scrollIntoView();return true})()"
        )
        assert "收回文件" in await browser.evaluate("document.body.innerText")
        await _fits_and_reads(browser)
        await browser.screenshot(str(tmp_path / "recall.png"))
