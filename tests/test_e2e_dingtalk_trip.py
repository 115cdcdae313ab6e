"""A field trip through the fake DingTalk (real `oabot serve`, SQLite and PostgreSQL): the approved
outing reaches the traveller as a robot action card with two link buttons, 到达打卡 and 离开打卡
(no address in its text), the links open the check-in page, and revoking the outing tells the
traveller in a text (robot messages cannot be edited) while the card's links refuse the trip."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.e2e_harness import wait_until
from tests.fake_dingtalk import FakeDingTalk
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
