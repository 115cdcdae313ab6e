"""What people see of a hand-over 离职交接: the request page's trail says who took the task over,
in Chinese, and the new assignee can act on it from the page; the leader who left cannot."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from approvals.clock import ManualClock
from bot.app import create_app
from bot.keys import SESSIONS, WORKFLOW
from storage.db import Database
from storage.org_repo import import_org, load_org
from tests.browser import CHROMIUM, Browser
from tests.conftest import settings_for

SEAL = {
    "seal": "公章",
    "reason": "签署框架合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["框架合同.pdf"],
    "copies": 1,
    "take_out": False,
}


async def test_the_request_page_shows_the_hand_over_and_the_successor_can_act(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    client = await aiohttp_client(app)
    workflow = app[WORKFLOW]
    req = await workflow.submit(template_key="seal_use", initiator="u_wu", form=SEAL)
    assert req.steps[0].tasks[0].assignee == "u_sun"
    leaver = await app[SESSIONS].start("u_sun", via="test")

    async with org_db.transaction() as s:  # what a sync does when 孙丽 leaves: one transaction
        org = await load_org(s)
        gone = dataclasses.replace(org.users["u_sun"], active=False)
        await import_org(s, dataclasses.replace(org, users={**org.users, "u_sun": gone}), now=clock.now())
        moved = await workflow.hand_over_in(s, leaver="u_sun", successor="u_li", org=await load_org(s))
    assert moved == 1
    await workflow.org(fresh=True)

    successor = await app[SESSIONS].start("u_li", via="test")
    resp = await client.get(f"/m/r/{req.id}", headers={"Cookie": f"oabot_session={successor.id}"})
    page = await resp.text()
    assert resp.status == 200
    assert "离职交接：李娜" in page and "handed_over" not in page
    assert 'name="action" value="approve"' in page or "同意" in page
    resp = await client.get(
        f"/m/r/{req.id}", headers={"Cookie": f"oabot_session={leaver.id}"}, allow_redirects=False
    )
    assert resp.status in (302, 303, 401, 403)  # the person who left is signed out


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium is not installed")
async def test_the_hand_over_on_a_phone(
    org_db: Database, aiohttp_server: Any, clock: ManualClock, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    req = await app[WORKFLOW].submit(template_key="seal_use", initiator="u_wu", form=SEAL)
    async with org_db.transaction() as s:
        org = await load_org(s)
        gone = dataclasses.replace(org.users["u_sun"], active=False)
        await import_org(s, dataclasses.replace(org, users={**org.users, "u_sun": gone}), now=clock.now())
        await app[WORKFLOW].hand_over_in(s, leaver="u_sun", successor="u_li", org=await load_org(s))
    await app[WORKFLOW].org(fresh=True)
    li = await app[SESSIONS].start("u_li", via="test")
    async with Browser() as browser:
        await browser.emulate_phone(390, 844)
        await browser.send("Network.setCookie", name="oabot_session", value=li.id, url=base)
        await browser.navigate(f"{base}/m/r/{req.id}")
        text = await browser.evaluate("document.body.innerText")
        assert "离职交接：李娜" in text and "handed_over" not in text
        assert await browser.evaluate("document.documentElement.scrollWidth") <= 390
        await browser.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        await browser.screenshot(str(tmp_path / "handover.png"))
    assert (tmp_path / "handover.png").stat().st_size > 0
    print(tmp_path / "handover.png")
