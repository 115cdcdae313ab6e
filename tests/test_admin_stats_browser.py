"""In a real headless Chromium: the office's statistics page with its SVG charts (desktop 1280
wide and a phone at 390x844), the org chart and the templates. The charts are drawn (bars and a
line have size), Chinese labels are laid out, the phone layout does not scroll sideways outside
the tables; screenshots are saved in the test's output directory."""

from __future__ import annotations

import json
import os
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from approvals.clock import ManualClock
from bot.app import create_app
from bot.keys import SESSIONS
from storage.db import Database
from tests.browser import CHROMIUM, Browser
from tests.conftest import Api, settings_for
from tests.test_stats import known_day, local

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)

CHART_SIZES = """JSON.stringify([...document.querySelectorAll('svg.chart')].map(s => {
  const r = s.getBoundingClientRect(); return [r.width, r.height, s.querySelectorAll('rect,polyline').length];
}))"""


async def test_statistics_org_and_templates_in_a_browser(
    org_db: Database, aiohttp_client: Any, clock: ManualClock, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    client = await aiohttp_client(app)
    api = Api(client, app)
    base = str(client.make_url("")).rstrip("/")
    await known_day(api, clock)
    clock.set(local(9, 9).astimezone(UTC))
    stats_url = f"{base}/admin/stats?from=2026-11-01&to=2026-11-07"

    async with Browser() as browser:
        session = await app[SESSIONS].start("u_zhao", via="test")
        await browser.send("Network.setCookie", name="oabot_session", value=session.id, url=base)
        await browser.send(
            "Emulation.setDeviceMetricsOverride", width=1280, height=2000, deviceScaleFactor=1, mobile=False
        )
        await browser.navigate(stats_url)
        text = str(await browser.evaluate("document.body.innerText"))
        assert "审批统计" in text and "各部门" in text and "孙丽" in text and "每周趋势" in text
        sizes = json.loads(await browser.evaluate(CHART_SIZES))
        assert len(sizes) >= 4
        assert all(w > 300 and h > 20 and marks > 0 for w, h, marks in sizes), sizes
        # Chinese labels inside the SVG are laid out with a real width (a font was found).
        label_width = await browser.evaluate(
            "[...document.querySelectorAll('svg.chart text')].find(t => t.textContent === '市场部').getBBox().width"
        )
        assert 20 < float(label_width) < 80
        await browser.screenshot(str(tmp_path / "admin_stats_desktop.png"))

        await browser.navigate(f"{base}/admin/org")
        assert "示例集团" in str(await browser.evaluate("document.body.innerText"))
        await browser.screenshot(str(tmp_path / "admin_org_desktop.png"))
        await browser.navigate(f"{base}/admin/templates")
        routes = await browser.evaluate("document.querySelectorAll('svg.chart rect').length")
        assert int(routes) >= 20
        await browser.screenshot(str(tmp_path / "admin_templates_desktop.png"))

        await browser.emulate_phone()
        for name, url in (
            ("stats", stats_url),
            ("org", f"{base}/admin/org"),
            ("templates", f"{base}/admin/templates"),
            ("calendar", f"{base}/admin/calendar?year=2026"),
        ):
            await browser.navigate(url)
            width = await browser.evaluate("document.body.scrollWidth")
            assert int(width) <= 390, f"{name} scrolls sideways: {width}px"
            await browser.screenshot(str(tmp_path / f"admin_{name}_phone.png"))
    print(f"screenshots in {tmp_path}")
