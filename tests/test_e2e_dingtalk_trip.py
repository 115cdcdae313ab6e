"""A field trip through the fake DingTalk (real `oabot serve`, SQLite and PostgreSQL): the approved
outing reaches the traveller as a robot action card with two link buttons, 到达打卡 and 离开打卡
(no address in its text), the links open the check-in page, and revoking the outing tells the
traveller in a text (robot messages cannot be edited) while the card's links refuse the trip.
Inside DingTalk (sign-in configured, the fake's JSAPI script standing in for dingtalk.open.js) the
page signs `dd.config` with the jsapi_ticket and takes the position from
`dd.device.geolocation.get` (GCJ-02, with its accuracy), not from the browser, which is 4 km off."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests import fake_dingtalk
from tests.browser import CHROMIUM, Browser
from tests.e2e_harness import ServerProcess, base_env, wait_until
from tests.fake_dingtalk import FakeDingTalk, dingtalk_env
from tests.test_e2e_dingtalk import (  # noqa: F401 - pytest fixtures
    API_TOKEN,
    INITIATOR_STAFF,
    Oabot,
    database_url,
    fake,
    oabot,
    redis_env,
)

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
AGENT_ID = "4000001"
PUDONG_GCJ = (31.2215, 121.5440)  # the demo org's 浦东项目现场, GCJ-02


async def test_trip_card_is_an_action_card_with_link_buttons_and_revoking_says_so(
    oabot: Oabot,  # noqa: F811
    fake: FakeDingTalk,  # noqa: F811
) -> None:
    now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0)
    form = {
        "destination": {"site": "site_pudong"},
        "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(hours=3)).isoformat(),
        "reason": "现场巡检",
    }
    req = await oabot.submit("outing", "u_wu", form)
    (task,) = await oabot.pending("u_sun")
    decided = await oabot.http.post(
        f"/api/v1/requests/{req['id']}/actions",
        json={"action": "approve", "actor": "u_sun", "task_id": task["task_id"], "version": task["version"]},
        headers=AUTH,
    )
    assert decided.status_code == 200, decided.text

    cards = await wait_until(lambda: [p for s, p in fake.action_cards if s == INITIATOR_STAFF])
    (card,) = cards
    assert (card["buttonTitle1"], card["buttonTitle2"]) == ("到达打卡", "离开打卡")
    assert card["title"] == "外勤打卡" and "浦东项目现场" in card["text"] and "http" not in card["text"]
    base = str(oabot.server.base_url)
    assert card["buttonUrl1"].startswith(f"{base}/checkin/") and card["buttonUrl2"].startswith(
        f"{base}/checkin/"
    )
    page = await oabot.http.get(card["buttonUrl1"].removeprefix(base))
    assert page.status_code == 200 and "到达打卡" in page.text

    revoked = await oabot.http.post(
        f"/api/v1/requests/{req['id']}/actions", json={"action": "withdraw", "actor": "u_wu"}, headers=AUTH
    )
    assert revoked.status_code == 200, revoked.text
    note = await wait_until(
        lambda: [t for t in fake.texts_for(INITIATOR_STAFF) if t.startswith("【外勤行程已取消】")]
    )
    assert "无需再打卡" in note[0] and "http" not in note[0]
    page = await oabot.http.get(card["buttonUrl1"].removeprefix(base))
    assert page.status_code == 409 and "该行程已取消" in page.text
    assert len([p for s, p in fake.action_cards if s == INITIATOR_STAFF]) == 1


@pytest.fixture
async def signed_in_oabot(
    database_url: str,  # noqa: F811
    fake: FakeDingTalk,  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[Oabot]:
    """oabot with DingTalk web sign-in (corpId, the fake's JSAPI script) and an agentId, so the
    check-in page signs `dd.config`."""
    env = base_env(
        database_url,
        **dingtalk_env(fake, "http"),
        OABOT_DINGTALK_CORP_ID=fake_dingtalk.CORP_ID,
        OABOT_DINGTALK_JSAPI_URL=f"{fake.base_url}{fake_dingtalk.JSAPI}",
        OABOT_DINGTALK_AGENT_ID=AGENT_ID,
    )
    async with ServerProcess(env, cwd=tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as http:
            yield Oabot(server, http)


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)
async def test_inside_dingtalk_the_page_takes_the_position_from_dd_geolocation(
    signed_in_oabot: Oabot,
    fake: FakeDingTalk,  # noqa: F811
    tmp_path: Path,
) -> None:
    oabot = signed_in_oabot  # noqa: F811 - this test's own server
    now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0)
    form = {
        "destination": {"site": "site_pudong"},
        "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(hours=3)).isoformat(),
        "reason": "现场巡检",
    }
    req = await oabot.submit("outing", "u_wu", form)
    (task,) = await oabot.pending("u_sun")
    decided = await oabot.http.post(
        f"/api/v1/requests/{req['id']}/actions",
        json={"action": "approve", "actor": "u_sun", "task_id": task["task_id"], "version": task["version"]},
        headers=AUTH,
    )
    assert decided.status_code == 200, decided.text
    (card,) = await wait_until(lambda: [p for s, p in fake.action_cards if s == INITIATOR_STAFF])

    fake.signed_in_staff = INITIATOR_STAFF
    fake.location = (PUDONG_GCJ[0], PUDONG_GCJ[1], 30.0)  # DingTalk reports GCJ-02 (coordinate: 1)
    async with Browser() as browser:
        await browser.emulate_phone()
        origin = str(oabot.server.base_url)
        await browser.send("Browser.grantPermissions", permissions=["geolocation"], origin=origin)
        await browser.send(
            "Emulation.setGeolocationOverride", latitude=31.2397, longitude=121.4998, accuracy=20
        )
        await browser.navigate(card["buttonUrl1"])  # → DingTalk 免登 (the fake JSAPI) → back to the page
        await browser.wait_for("!!document.getElementById('go') && !!window.__dd")
        config = await browser.evaluate("__dd.configs[0]")
        page_url = await browser.evaluate("location.href.split('#')[0]")
        (ticket,) = fake.jsapi_tickets
        plain = f"jsapi_ticket={ticket}&noncestr={config['nonceStr']}&timestamp={config['timeStamp']}&url={page_url}"
        assert config["signature"] == hashlib.sha1(plain.encode()).hexdigest()
        assert (config["corpId"], config["agentId"]) == (fake_dingtalk.CORP_ID, AGENT_ID)
        await browser.evaluate("document.getElementById('go').click()")
        await browser.wait_for("document.getElementById('result').getAttribute('data-state') === 'done'")
        assert (
            await browser.evaluate("document.getElementById('result').getAttribute('data-via')") == "dingtalk"
        )
        await browser.screenshot(str(tmp_path / "checkin_done_in_dingtalk.png"))

    day = (await oabot.http.get("/api/v1/checkins", params={"user": "u_wu"}, headers=AUTH)).json()
    (c,) = day["items"]
    assert (c["verdict"], c["channel"], c["coord_system"], c["accuracy_m"]) == (
        "on_site",
        "dingtalk_jsapi",
        "gcj02",
        30.0,
    )
