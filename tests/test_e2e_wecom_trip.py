"""A field trip end to end through the fake WeCom (real `oabot serve`, SQLite and PostgreSQL):

吴昊 (u_wu) files an outing with 郑浩 (u_zheng) as companion; 孙丽 approves it by tapping her
WeCom card. Both travellers get a WeCom template card whose jump buttons are 到达打卡 and 离开打卡
(no address in the text). 吴昊's 到达打卡 opens the check-in page in headless Chromium inside
"WeCom": he signs in through WeCom's OAuth (the fake), and a stubbed `wx` object (injected before
the page's scripts; no JS-SDK is loaded from the network) answers wx.getLocation with a fixed
position and accuracy. The page's wx.config is signed with the jsapi_ticket the fake handed out.
The browser's own geolocation stands 4 km away, so an on-site arrival proves the position came
from `wx`. Then 吴昊 revokes the outing: his card's buttons turn 已取消, both travellers are told,
and the companion's arrival reminder, due half a minute later, never comes.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from bot.app import open_database
from checkins.geo import LatLng, gcj02_to_wgs84
from storage.checkin_models import TripRow
from storage.timer_models import TimerRow
from tests.browser import CHROMIUM, Browser
from tests.e2e_harness import ServerProcess, base_env, wait_until
from tests.fake_wecom import FakeWeCom
from tests.test_e2e_wecom import (  # noqa: F401 - pytest fixtures
    AES_KEY,
    AGENT_ID,
    AUTH,
    CORP_ID,
    SECRET,
    TOKEN,
    Phone,
    callbacks,
    phone,
    stores,
    wecom,
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)

SITE = gcj02_to_wgs84(LatLng(31.2215, 121.5440))  # 浦东项目现场, as a device reports it (WGS-84)
BUND = (31.2397, 121.4998)  # ~4 km away: where the browser's own geolocation says we are
GRACE_MIN = 1
LEAD_S = 30  # the outing started this long ago: the arrival reminder is due LEAD_S after approval


@pytest.fixture
async def server(stores: dict[str, str], wecom: FakeWeCom, tmp_path: Path) -> AsyncIterator[ServerProcess]:  # noqa: F811
    env = base_env(
        stores["OABOT_DATABASE_URL"],
        **stores,
        OABOT_WECOM_CORP_ID=CORP_ID,
        OABOT_WECOM_AGENT_ID=str(AGENT_ID),
        OABOT_WECOM_SECRET=SECRET,
        OABOT_WECOM_TOKEN=TOKEN,
        OABOT_WECOM_AES_KEY=AES_KEY,
        OABOT_WECOM_API_BASE=wecom.base_url,
        OABOT_WECOM_OAUTH_BASE=wecom.base_url,
        OABOT_WECOM_JSSDK_URL="",  # the test injects `wx` itself
        OABOT_CHECKIN_GRACE_MIN=str(GRACE_MIN),
    )
    async with ServerProcess(env, tmp_path) as proc:
        yield proc


def wx_stub(lat: float, lng: float, accuracy: float) -> str:
    """A `wx` like WeCom's JS-SDK: config/ready/error, and getLocation answering `type` wgs84."""
    return (
        "window.__wx={configs:[],located:[]};"
        "window.wx={config:function(c){__wx.configs.push(c)},"
        "ready:function(f){setTimeout(f,0)},error:function(f){},"
        "getLocation:function(o){__wx.located.push(o.type);"
        f"setTimeout(function(){{o.success({{latitude:{lat},longitude:{lng},accuracy:{accuracy},speed:0}})}},10)}}}};"
    )


def trip_cards(fake: FakeWeCom, account: str) -> list[dict[str, Any]]:
    return [
        c["template_card"]
        for c in fake.cards_to(account)
        if c["template_card"]["task_id"].startswith("trip_")
    ]


async def db_rows(env: dict[str, str], request_id: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(traveller -> trip status, [(timer key, status)]) of the outing's trips."""
    db = open_database(env["OABOT_DATABASE_URL"])
    try:
        async with db.session() as s:
            trips = dict(
                (
                    await s.execute(
                        select(TripRow.traveller, TripRow.status).where(TripRow.request_id == request_id)
                    )
                ).all()  # type: ignore[call-overload]
            )
            q = select(TimerRow.key, TimerRow.status).where(TimerRow.ref.like(f"{request_id}-%"))  # type: ignore[call-overload,union-attr]
            timers = sorted((await s.execute(q)).all())
    finally:
        await db.dispose()
    return trips, [(k, v) for k, v in timers]


async def test_trip_card_opens_the_page_wx_location_checks_in_and_revoking_cancels_the_trip(
    server: ServerProcess,
    wecom: FakeWeCom,  # noqa: F811
    phone: Phone,  # noqa: F811
    stores: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    wecom.signed_in_account = "wuhao"
    now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0)
    form = {
        "destination": {"site": "site_pudong"},
        "start": (now - timedelta(seconds=LEAD_S)).isoformat(),
        "end": (now + timedelta(hours=3)).isoformat(),
        "reason": "现场巡检",
        "companions": ["u_zheng"],
    }
    async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=10) as api:
        created = await api.post(
            "/api/v1/requests", json={"template": "outing", "initiator": "u_wu", "form": form}
        )
        assert created.status_code == 201, created.text
        request_id = created.json()["id"]
        approval = await phone.card("sunli", request_id)
        await phone.tap("sunli", approval)
        approved_at = time.monotonic()

        # the trip cards: native template cards, jump buttons, no address in any text
        (card,) = await wait_until(lambda: trip_cards(wecom, "wuhao"))
        await wait_until(lambda: trip_cards(wecom, "zhenghao"))
        assert card["card_type"] == "button_interaction"
        buttons = {b["text"]: b for b in card["button_list"]}
        assert set(buttons) == {"到达打卡", "离开打卡"} and {b["type"] for b in buttons.values()} == {1}
        shown = [card["main_title"]["title"], card["main_title"]["desc"], card["sub_title_text"]]
        shown += [f"{h['keyname']}{h['value']}" for h in card["horizontal_content_list"]]
        assert "浦东项目现场" in "".join(shown) and not any("http" in t for t in shown)
        arrival = buttons["到达打卡"]["url"]
        assert arrival.startswith(f"{server.base_url}/checkin/")

        async with Browser() as browser:
            await browser.emulate_phone()
            await browser.send(
                "Browser.grantPermissions", permissions=["geolocation"], origin=server.base_url
            )
            await browser.send(
                "Emulation.setGeolocationOverride", latitude=BUND[0], longitude=BUND[1], accuracy=20
            )
            await browser.send(
                "Page.addScriptToEvaluateOnNewDocument", source=wx_stub(SITE.lat, SITE.lng, 35)
            )
            await browser.navigate(arrival)  # → WeCom sign-in (the fake's OAuth) → back to the page
            await browser.wait_for("!!document.getElementById('go')")
            await browser.screenshot(str(tmp_path / "checkin_page_in_wecom.png"))
            config = await browser.evaluate("__wx.configs[0]")
            page_url = await browser.evaluate("location.href.split('#')[0]")
            assert page_url == arrival
            (ticket,) = wecom.jsapi_tickets
            plain = f"jsapi_ticket={ticket}&noncestr={config['nonceStr']}&timestamp={config['timestamp']}&url={page_url}"
            assert config["appId"] == CORP_ID and config["jsApiList"] == ["getLocation"]
            assert config["signature"] == hashlib.sha1(plain.encode()).hexdigest()
            await browser.evaluate("document.getElementById('go').click()")
            state = await browser.wait_for(
                "(function(){var s=document.getElementById('result').getAttribute('data-state');"
                "return (s==='done'||s==='error')?s:''})()"
            )
            message = await browser.evaluate("document.getElementById('result').textContent")
            assert state == "done", message
            assert await browser.evaluate("__wx.located") == ["wgs84"]
            assert "已记录到达打卡" in message and "在范围内" in message
            await browser.screenshot(str(tmp_path / "checkin_done_in_wecom.png"))
            # the used arrival link says so instead of offering the button again
            await browser.navigate(arrival)
            await browser.wait_for("document.body && document.body.textContent.indexOf('没有再记录') >= 0")
            assert await browser.evaluate("document.getElementById('go')") is None
            # the departure page: the cached ticket signs it, WeCom is not asked again
            await browser.navigate(buttons["离开打卡"]["url"])
            await browser.wait_for("__wx.configs.length > 0")
            assert len(wecom.jsapi_tickets) == 1

        # someone else signed in to WeCom cannot use 吴昊's link; nobody signed in cannot post to it
        wecom.signed_in_account = "zhenghao"
        async with Browser() as browser:
            await browser.emulate_phone()
            await browser.navigate(buttons["离开打卡"]["url"])
            await browser.wait_for("document.body && document.body.textContent.indexOf('不能用它打卡') >= 0")
            refusal = await browser.evaluate("document.body.textContent")
            assert (
                "郑浩" in refusal
                and "吴昊" in refusal
                and not await browser.evaluate("!!document.getElementById('go')")
            )
            await browser.screenshot(str(tmp_path / "checkin_page_someone_else.png"))
        async with httpx.AsyncClient(timeout=10) as anonymous:
            posted = await anonymous.post(
                buttons["离开打卡"]["url"], json={"lat": SITE.lat, "lng": SITE.lng, "accuracy_m": 10}
            )
        assert posted.status_code == 403 and "请先登录" in posted.json()["message"]

        day = (await api.get("/api/v1/checkins", params={"user": "u_wu"})).json()
        (c,) = day["items"]
        assert (c["kind"], c["verdict"], c["channel"], c["accuracy_m"]) == (
            "arrival",
            "on_site",
            "wecom_jssdk",
            35.0,
        )
        assert c["distance_m"] < 5 and c["trust"]["score"] == 100

        # 吴昊 revokes the approved outing
        revoked = await api.post(
            f"/api/v1/requests/{request_id}/actions", json={"action": "withdraw", "actor": "u_wu"}
        )
        assert revoked.status_code == 200, revoked.text
        assert time.monotonic() - approved_at < LEAD_S - 3, "too slow to show the reminder stays away"

    update = await wait_until(
        lambda: [u for u in wecom.updates if u["userids"] == ["wuhao"] and u.get("button")]
    )
    assert update[0]["button"] == {"replace_name": "已取消"}
    for account, other in (("wuhao", "郑浩"), ("zhenghao", "吴昊")):
        note = await phone.text_to(account, "【外勤行程已取消】")
        assert other in note and "http" not in note
    trips, timers = await db_rows(stores, request_id)
    assert trips == {"u_wu": "cancelled", "u_zheng": "cancelled"}
    assert len(timers) == 8 and {s for _, s in timers} == {"cancelled"}

    # the companion's arrival reminder was due LEAD_S after approval: it never comes
    await wait_until(lambda: time.monotonic() - approved_at > LEAD_S + 4 or None, timeout=LEAD_S + 10)
    assert len(trip_cards(wecom, "zhenghao")) == 1 and len(trip_cards(wecom, "wuhao")) == 1
    assert not [t for t in wecom.texts_to("sunli") + wecom.texts_to("zhoujie") if "【外勤督办】" in t]
