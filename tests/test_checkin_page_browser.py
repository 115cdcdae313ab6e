"""In a real headless Chromium with a fixed geolocation: 吴昊's approved outing sends him a trip
card; its 到达打卡 link opens the check-in page, which asks the browser for its position and
records an on-site arrival; standing elsewhere, the 离开打卡 link records an off-site departure
and his manager is told."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from checkins.geo import LatLng, gcj02_to_wgs84
from tests.browser import CHROMIUM, Browser
from tests.e2e_harness import ServerProcess, base_env, wait_until

# Skipped on a developer machine without Chromium; in CI (CI=true) a missing browser fails instead.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)

HEADERS = {"Authorization": "Bearer e2e-token-0123456789"}
# The demo org's 浦东项目现场 is given in GCJ-02; a browser reports WGS-84.
SITE = gcj02_to_wgs84(LatLng(31.2215, 121.5440))


async def check_in(browser: Browser, url: str, at: tuple[float, float, float]) -> tuple[str, str]:
    """Open a check-in link standing at `at`, tap the button; (verdict, message) shown."""
    await browser.send("Emulation.setGeolocationOverride", latitude=at[0], longitude=at[1], accuracy=at[2])
    await browser.navigate(url)
    await browser.wait_for("!!document.getElementById('go')")
    await browser.evaluate("document.getElementById('go').click()")
    state = await browser.wait_for(
        "(function(){var r=document.getElementById('result');var s=r.getAttribute('data-state');"
        "return (s==='done'||s==='error')?s:''})()"
    )
    message = await browser.evaluate("document.getElementById('result').textContent")
    assert state == "done", message
    return await browser.evaluate("document.getElementById('result').getAttribute('data-verdict')"), message


async def test_check_in_page_with_a_fixed_geolocation(tmp_path: Path) -> None:
    env = base_env(f"sqlite+aiosqlite:///{tmp_path}/checkin.db", OABOT_CONSOLE="1")
    async with (
        ServerProcess(env, tmp_path, args=("--demo",)) as server,
        httpx.AsyncClient(base_url=server.base_url, headers=HEADERS) as api,
    ):
        now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0)
        form = {
            "destination": {"site": "site_pudong"},
            "start": (now - timedelta(minutes=10)).isoformat(),
            "end": (now + timedelta(hours=3)).isoformat(),
            "reason": "现场巡检",
        }
        created = await api.post(
            "/api/v1/requests", json={"template": "outing", "initiator": "u_wu", "form": form}
        )
        assert created.status_code == 201, created.text
        task = (await api.get("/api/v1/tasks", params={"assignee": "u_sun"})).json()["items"][0]
        decided = await api.post(
            f"/api/v1/requests/{task['request_id']}/actions",
            json={
                "action": "approve",
                "actor": "u_sun",
                "task_id": task["task_id"],
                "version": task["version"],
            },
        )
        assert decided.status_code == 200, decided.text

        async def card_links() -> dict[str, str]:
            html = (await api.get("/console/u/u_wu/feed")).text
            found = re.findall(r'data-checkin-link href="([^"]+)">([^<]+)</a>', html)
            return {label: href.replace("&amp;", "&") for href, label in found}

        links = await wait_until(card_links)
        assert set(links) == {"到达打卡", "离开打卡"}
        async with Browser() as browser:
            await browser.send(
                "Browser.grantPermissions", permissions=["geolocation"], origin=server.base_url
            )
            await browser.emulate_phone()
            await browser.navigate(f"{server.base_url}/console/u/u_wu")
            await browser.wait_for("!!document.querySelector('[data-checkin-link]')")
            await browser.screenshot(str(tmp_path / "trip_card.png"))
            verdict, message = await check_in(browser, links["到达打卡"], (SITE.lat, SITE.lng, 25.0))
            assert verdict == "on_site" and "已记录到达打卡" in message and "在范围内" in message
            await browser.screenshot(str(tmp_path / "arrival.png"))
            verdict, message = await check_in(
                browser, links["离开打卡"], (31.2397, 121.4998, 30.0)
            )  # the Bund, ~4 km away
            assert verdict == "off_site" and "不在目的地范围内" in message
            await browser.screenshot(str(tmp_path / "departure.png"))
            await browser.navigate(f"{server.base_url}/console/u/u_sun/checkins")
            await browser.wait_for("!!document.querySelector('.person .checkin')")
            await browser.screenshot(str(tmp_path / "team.png"))
            # a phone-sized page: one card per person, nothing wider than the screen, a way back
            layout = await browser.evaluate(
                "({width: document.documentElement.scrollWidth, people: document.querySelectorAll('.person').length,"
                " table: document.querySelectorAll('table').length,"
                " back: document.querySelector('[data-back]').getAttribute('href'),"
                " state: document.querySelector('.person .state').textContent})"
            )
            assert layout == {
                "width": 390,
                "people": 1,
                "table": 0,
                "back": "/console/u/u_sun",
                "state": "有不在范围内的打卡",
            }

            # the manager's 外勤提醒 carries a long link: it wraps inside the bubble, no sideways scrolling
            await wait_until(lambda: _console_texts(api, "u_sun", "不在目的地范围内"))
            await browser.navigate(f"{server.base_url}/console/u/u_sun")
            await browser.wait_for("document.body.innerText.indexOf('不在目的地范围内') >= 0")
            await browser.screenshot(str(tmp_path / "manager_told.png"))
            widths = await browser.evaluate(
                "[document.documentElement.scrollWidth].concat(Array.from("
                "document.querySelectorAll('.bubble')).map(function(b){return b.scrollWidth - b.clientWidth}))"
            )
            assert widths[0] == 390 and max(widths[1:]) <= 0, widths

            # 团队签到 only for people who manage someone
            for uid, shown in (("u_sun", True), ("u_wu", False)):
                await browser.navigate(f"{server.base_url}/console/u/{uid}")
                await browser.wait_for("document.readyState === 'complete'")
                has = await browser.evaluate("!!document.querySelector('a[href$=\"/checkins\"]')")
                assert has is shown, uid

            # the demo's field worker has an approved trip already: check in from its card
            await browser.navigate(f"{server.base_url}/console/u/u_zheng")
            await browser.wait_for("!!document.querySelector('[data-checkin-link]')")
            await browser.screenshot(str(tmp_path / "demo_field_staff_trip_card.png"))
            demo_arrival = await browser.evaluate(
                "document.querySelector('[data-checkin-link]').getAttribute('href')"
            )
            verdict, message = await check_in(browser, demo_arrival, (SITE.lat, SITE.lng, 20.0))
            assert verdict == "on_site" and "已记录到达打卡" in message

            # The arrival link again: it says when the arrival was recorded and offers no button.
            await browser.navigate(links["到达打卡"])
            used = await browser.evaluate("document.body.innerText")
            assert "到达打卡已于" in used and "这次没有再记录" in used
            assert await browser.evaluate("document.getElementById('go') === null")
            await browser.screenshot(str(tmp_path / "arrival_used.png"))

        # 吴昊 revokes the outing: the console's trip card reads 已取消, without buttons
        revoked = await api.post(
            f"/api/v1/requests/{task['request_id']}/actions", json={"action": "withdraw", "actor": "u_wu"}
        )
        assert revoked.status_code == 200, revoked.text
        await wait_until(lambda: _console_texts(api, "u_wu", "【外勤行程已取消】"))
        async with Browser() as browser:
            await browser.emulate_phone()
            await browser.navigate(f"{server.base_url}/console/u/u_wu")
            await browser.wait_for("!!document.querySelector('[data-kind=checkin_card] .outcome')")
            assert await browser.evaluate("document.querySelectorAll('[data-checkin-link]').length") == 0
            await browser.screenshot(str(tmp_path / "trip_card_cancelled.png"))

        day = (await api.get("/api/v1/checkins", params={"user": "u_wu"})).json()
        assert [(c["kind"], c["verdict"], c["source"]) for c in day["items"]] == [
            ("arrival", "on_site", "browser"),
            ("departure", "off_site", "browser"),
        ]
        assert day["items"][0]["accuracy_m"] == 25.0 and day["items"][0]["distance_m"] < 5
        told = await wait_until(
            lambda: _console_texts(api, "u_sun", "不在目的地范围内"),
        )
        assert "吴昊" in told


async def _console_texts(api: httpx.AsyncClient, uid: str, needle: str) -> str:
    html = (await api.get(f"/console/u/{uid}/feed")).text
    bubbles = re.findall(r"<div class=bubble[^>]*>(.*?)</div>", html, re.S)
    return next((b for b in bubbles if needle in b), "")


def test_page_script_is_plain_es5() -> None:
    """The in-app browsers of WeCom and DingTalk: no arrow functions, let/const or fetch needed."""
    from bot.web.templating import static_text

    script = static_text("checkin.js")
    assert "=>" not in script and "let " not in script and "const " not in script and "fetch(" not in script
    assert "</script" not in script  # inlined into the page as is
