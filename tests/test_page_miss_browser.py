"""In a real headless Chromium at 390x844: a mistyped page address (a card's link cut short, an
old bookmark) shows a Chinese page with a way back to the workspace, not the API's JSON.
Screenshots are left in the test's output directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from tests.browser import CHROMIUM, Browser
from tests.conftest import settings_for

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)
WIDTH = 390


async def test_a_mistyped_address_shows_a_chinese_page_with_a_way_back(
    org_db: Any, aiohttp_server: Any, clock: Any, tmp_path: Path
) -> None:
    server = await aiohttp_server(create_app(settings_for(org_db, console=True), clock=clock))
    base = str(server.make_url("")).rstrip("/")
    async with Browser() as browser:
        await browser.emulate_phone(WIDTH, 844)
        for name, path in (("workspace", "/m/r"), ("notice", "/m/n/x/y/z"), ("console", "/console/nope")):
            await browser.navigate(f"{base}{path}")
            await browser.wait_for("!!document.querySelector('.req-refused')")
            text = str(await browser.evaluate("document.body.innerText"))
            assert "这个页面不存在" in text and "回到工作台" in text, text
            assert "not_found" not in text and "{" not in text, text
            assert await browser.evaluate("document.documentElement.scrollWidth") <= WIDTH
            await browser.screenshot(str(tmp_path / f"miss-{name}.png"))
        await browser.evaluate("document.querySelector('.req-refused a').click();true")
        await browser.wait_for("location.pathname !== '/console/nope'")
        assert str(await browser.evaluate("location.pathname")).startswith("/m")
