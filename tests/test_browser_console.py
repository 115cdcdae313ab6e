"""In a real headless Chromium: 吴昊 files a seal request in the console and every approver
taps their card, down to the seal keeper; then the request is approved and 吴昊 was told."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.browser import CHROMIUM, Browser
from tests.e2e_harness import ServerProcess, base_env

# Skipped on a developer machine without Chromium; in CI (CI=true) a missing browser fails instead.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)

APPROVERS = ["u_sun", "u_wang", "u_li", "u_zhang", "u_chen"]


async def fill(browser: Browser, values: dict[str, str]) -> None:
    for name, value in values.items():
        await browser.evaluate(
            f"(function(){{var el=document.querySelector('[name={name}]'); el.value={json.dumps(value)};"
            f"el.dispatchEvent(new Event('change'));return true}})()"
        )


async def test_seal_use_tapped_through_in_chromium(tmp_path: Path) -> None:
    env = base_env(f"sqlite+aiosqlite:///{tmp_path}/browser.db", OABOT_CONSOLE="1")
    async with ServerProcess(env, tmp_path, args=("--demo",)) as server, Browser() as browser:
        base = server.base_url
        await browser.emulate_phone()
        await browser.navigate(f"{base}/console")
        await browser.screenshot(str(tmp_path / "home.png"))
        await browser.navigate(f"{base}/console/u/u_wu/new/seal_use")
        await fill(
            browser,
            {
                "seal": "公章",
                "reason": "签署年度框架合同",
                "needed_at": "2026-11-24T10:00",
                "files": "框架合同.pdf",
                "copies": "2",
                "take_out": "false",
            },
        )
        await browser.screenshot(str(tmp_path / "form.png"))
        await browser.evaluate("document.querySelector('form.request button').click()")
        await browser.wait_for(f"location.href === {json.dumps(base + '/console/u/u_wu')}")
        for uid in APPROVERS:
            # task cards only: the demo's notices (a 会议通知 with 参加, …) are in these chats too
            await browser.navigate(f"{base}/console/u/{uid}")
            # the card arrives through the outbox; the page polls its feed
            await browser.wait_for(
                "!!document.querySelector('.msg:not([data-kind]) > .card[data-closed=\"0\"] button.primary')"
            )
            label = await browser.evaluate(
                "document.querySelector('.msg:not([data-kind]) > .card[data-closed=\"0\"] button.primary').textContent"
            )
            assert label == ("已交付" if uid == "u_chen" else "同意")
            if uid == "u_sun":
                await browser.screenshot(str(tmp_path / "card.png"))
            await browser.evaluate(
                "document.querySelector('.msg:not([data-kind]) > .card[data-closed=\"0\"] button.primary').click()"
            )
            await browser.wait_for(
                "!!document.querySelector('.msg:not([data-kind]) > .card[data-closed=\"1\"] .outcome')",
                timeout=20,
            )
            outcome = await browser.evaluate(
                "document.querySelector('.msg:not([data-kind]) > .card[data-closed=\"1\"] .outcome').textContent"
            )
            assert outcome.startswith("已交付" if uid == "u_chen" else "已同意")
        await browser.navigate(f"{base}/console/u/u_wu")
        told = await browser.wait_for(
            "Array.from(document.querySelectorAll('.msg.out .bubble')).map(b => b.textContent).find(t => t.includes('已通过'))"
        )
        assert "用章申请" in told
        await browser.screenshot(str(tmp_path / "wu.png"))
        headers = {"Authorization": "Bearer e2e-token-0123456789"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as client:
            items = (await client.get("/api/v1/requests", params={"initiator": "u_wu"})).json()["items"]
        assert [r["status"] for r in items] == ["approved"]
        await browser.navigate(f"{base}/console/requests/{items[0]['id']}?as=u_wu")
        assert "已通过" in await browser.evaluate("document.body.textContent")
        await browser.screenshot(str(tmp_path / "request.png"))
