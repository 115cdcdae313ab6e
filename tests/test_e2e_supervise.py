"""督办 end to end: the real `oabot serve` process against the fake WeCom and the fake DingTalk.

An overdue task's manager gets a 督办 card with 催办 / 转交 / 查看; tapping 转交 opens the person
picker through the manager's own link, picking someone moves the task (trail entry 督办转交) and
the new assignee gets a card. A task whose holder has nobody above escalates to the office role
(赵敏, hr_manager) instead of being skipped, on the trail.

"Overdue" without waiting hours: the test moves the task's rung timer to now in the server's
database, and the server's own timer scan fires it. The requests are 紧急, so the rungs ignore
quiet hours whatever time the test runs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import update
from sqlmodel import col

from bot.app import open_database
from storage.timer_models import TimerRow
from tests import test_e2e_dingtalk as dingtalk_e2e
from tests import test_e2e_wecom as wecom_e2e
from tests.e2e_harness import ServerProcess, wait_until
from tests.fake_dingtalk import FakeDingTalk
from tests.fake_wecom import FakeWeCom
from tests.test_e2e_dingtalk import Oabot, card_of
from tests.test_e2e_wecom import AUTH, SEAL, Phone, fetch

# The platforms' e2e fixtures (the server process with its fake platform, the databases).
stores, wecom, server, callbacks, phone = (
    wecom_e2e.stores,
    wecom_e2e.wecom,
    wecom_e2e.server,
    wecom_e2e.callbacks,
    wecom_e2e.phone,
)
database_url, fake, redis_env, oabot = (
    dingtalk_e2e.database_url,
    dingtalk_e2e.fake,
    dingtalk_e2e.redis_env,
    dingtalk_e2e.oabot,
)


async def fire_now(db_url: str, task_id: str, kind: str) -> None:
    """Make one rung of a task due now; the server's scan (every second) fires it."""
    db = open_database(db_url)
    try:
        async with db.transaction() as s:
            result = await s.execute(
                update(TimerRow)
                .where(col(TimerRow.task_id) == task_id)
                .where(col(TimerRow.kind) == kind)
                .where(col(TimerRow.status) == "pending")
                .values(due_at=datetime.now(UTC))
            )
            assert result.rowcount == 1, f"no pending {kind} timer for {task_id}"  # type: ignore[attr-defined]
    finally:
        await db.dispose()


async def submit_urgent(base_url: str, initiator: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            f"{base_url}/api/v1/requests",
            json={"template": "seal_use", "initiator": initiator, "form": SEAL, "urgency": "urgent"},
            headers=AUTH,
        )
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def reassign_through_picker(url: str, target: str) -> httpx.Response:
    """The manager's in-app browser: open the 转交 button's link, pick `target`, confirm."""
    async with httpx.AsyncClient(timeout=10, follow_redirects=True) as http:
        page = await http.get(url)
        assert page.status_code == 200 and "转交给团队中的其他人" in page.text, page.text[:500]
        assert f'value="{target}"' in page.text
        found = re.search(r'name=csrf value="([^"]+)"', page.text)
        assert found is not None
        return await http.post(
            str(page.url), data={"csrf": found.group(1), "do": "transfer", "target": target}
        )


def holders(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(t["assignee"], t["status"]) for s in view["steps"] for t in s["tasks"]]


# == WeCom =========================================================================================
async def test_wecom_manager_taps_reassign_on_the_supervise_card_and_the_task_moves(
    server: ServerProcess, phone: Phone, wecom: FakeWeCom, stores: dict[str, str]
) -> None:
    req = await submit_urgent(server.base_url, "u_wu")
    task = req["steps"][0]["tasks"][0]
    await phone.card("sunli", req["id"])  # 孙丽's own card

    await fire_now(stores["OABOT_DATABASE_URL"], task["id"], "due")
    card = await phone.card("lina", req["id"])  # 李娜, 孙丽's manager: the 督办 card
    assert card["card_type"] == "button_interaction"
    assert card["main_title"]["title"].startswith("督办·用章申请")
    assert "【督办】孙丽 的待办" in card["sub_title_text"]
    assert {"keyname": "当前处理人", "value": "孙丽"} in card["horizontal_content_list"]
    buttons = {b["text"]: b for b in card["button_list"]}
    assert list(buttons) == ["催办", "转交", "查看"]
    assert (buttons["催办"]["type"], buttons["催办"]["key"]) == (0, "supervise_urge")
    assert buttons["转交"]["type"] == 1 and buttons["转交"]["url"].startswith(f"{server.base_url}/m/l/")

    # 催办 is a tap: 孙丽 is urged once; a second tap within 30 minutes is refused in words.
    await phone.tap("lina", card, "supervise_urge", times=2)
    await phone.text_to("sunli", "【催办】")
    await phone.text_to("lina", "已催办孙丽")
    await phone.tap("lina", card, "supervise_urge", times=1)
    await phone.text_to("lina", "每条待办 30 分钟内只能催办一次")

    done = await reassign_through_picker(buttons["转交"]["url"], "u_zhao")
    assert done.status_code == 200 and "已转交给赵敏" in done.text

    new_card = await phone.card("zhaomin", req["id"])  # the new assignee's card
    assert new_card["button_list"][0]["key"] == "approve"
    view = await fetch(server, req["id"])
    assert holders(view)[:2] == [("u_sun", "transferred"), ("u_zhao", "pending")]
    moved = [e for e in view["trail"] if e["kind"] == "transferred"]
    assert [(e["actor"], e["before"], e["after"], e["data"]["as_manager"]) for e in moved] == [
        ("u_li", "u_sun", "u_zhao", True)
    ]

    # The old 督办 card is stale now: a tap is answered and changes nothing.
    await phone.tap("lina", card, "supervise_urge", times=1)
    await phone.text_to("lina", "这条待办已有变化")
    assert holders(await fetch(server, req["id"])) == holders(view)


async def test_wecom_escalation_at_the_top_of_the_chain_reaches_the_office(
    server: ServerProcess, phone: Phone, wecom: FakeWeCom, stores: dict[str, str]
) -> None:
    req = await submit_urgent(server.base_url, "u_sun")  # 孙丽's leader is 李娜; above her only 张伟
    task = req["steps"][0]["tasks"][0]
    assert task["assignee"] == "u_li"

    await fire_now(stores["OABOT_DATABASE_URL"], task["id"], "escalate")  # two levels up: nobody
    card = await phone.card("zhaomin", req["id"])  # 赵敏 holds the office role (hr_manager)
    assert card["main_title"]["title"].startswith("督办（无上级）")
    assert "张伟 之上已无上级" in card["sub_title_text"]

    async def escalated() -> list[dict[str, Any]]:
        view = await fetch(server, req["id"])
        return [e for e in view["trail"] if e["kind"] == "escalated"]

    [entry] = await wait_until(escalated)
    assert (entry["after"], entry["data"]["to_office"]) == ("u_zhao", True)
    # The office acts like a manager: 催办 from the card urges 李娜.
    await phone.tap("zhaomin", card, "supervise_urge", times=1)
    await phone.text_to("lina", "【催办】")


# == DingTalk ======================================================================================
async def test_dingtalk_manager_taps_reassign_on_the_supervise_card_and_the_task_moves(
    oabot: Oabot, fake: FakeDingTalk, database_url: str
) -> None:
    req = await submit_urgent(oabot.server.base_url, "u_wu")
    task = req["steps"][0]["tasks"][0]
    await card_of(fake, "010008")  # 孙丽's own card

    await fire_now(database_url, task["id"], "due")
    card = await card_of(fake, "010002")  # 李娜's 督办 card
    assert card.out_track_id != (await card_of(fake, "010008")).out_track_id
    assert card.params["title"].startswith("督办·用章申请") and "【督办】孙丽" in card.params["waiting"]
    assert card.params["show_supervise_urge"] == "true" and card.params["supervise_urge_label"] == "催办"
    assert card.params["show_reassign"] == "true" and card.params["reassign_label"] == "转交"
    assert card.params["show_take_over"] == "false" and card.params["show_approve"] == "false"
    assert card.params["more_label"] == "查看"

    await oabot.tap(card.out_track_id, "010002", "supervise_urge")
    await wait_until(lambda: any(t.startswith("【催办】") for t in fake.texts_for("010008")))

    done = await reassign_through_picker(card.params["reassign_url"], "u_zhao")
    assert done.status_code == 200 and "已转交给赵敏" in done.text
    new_card = await card_of(fake, "010006")  # 赵敏's own card
    assert new_card.params["show_approve"] == "true"
    view = await oabot.request(req["id"])
    assert holders(view)[:2] == [("u_sun", "transferred"), ("u_zhao", "pending")]
    assert [(e["actor"], e["after"]) for e in view["trail"] if e["kind"] == "transferred"] == [
        ("u_li", "u_zhao")
    ]
