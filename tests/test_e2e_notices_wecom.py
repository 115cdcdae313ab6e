"""Notices end to end through WeCom: the real `oabot serve` process against the fake WeCom API.

王芳 (u_wang, head of 行政服务部) publishes a notice to her department through the REST API (her
own department: it goes out directly). Every member gets exactly one template card, with 已收到
and a link to the notice page; 陈静 taps 已收到 (WeCom delivers the tap three times, as it retries)
and her card updates in place, and the author's progress says 1 acknowledged; 刘强 does not answer.
At the next digest slot (the timer row brought forward, as the clock would) only 刘强's digest lists
the notice. SQLite, and PostgreSQL (+ Redis when configured) when OABOT_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import update

from bot.app import open_database
from deadlines.calendar import WorkingCalendar
from storage.timer_models import TimerRow
from tests.e2e_harness import ServerProcess, wait_until
from tests.fake_wecom import FakeWeCom
from tests.test_e2e_wecom import (  # noqa: F401 - pytest fixtures
    AUTH,
    Phone,
    callbacks,
    phone,
    server,
    stores,
    wecom,
)

SH = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar(SH, ((time(9), time(12)), (time(13, 30), time(18))))
ACCOUNT = {"u_wang": "wangfang", "u_chen": "chenjing", "u_liu": "liuqiang"}
TITLE = "关于开展年终消防安全检查的通知"


async def api(proc: ServerProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.request(method, f"{proc.base_url}/api/v1{path}", json=body, headers=AUTH)
    return resp.status_code, resp.json()


def notice_cards(fake: FakeWeCom, account: str, notice_id: str) -> list[dict[str, Any]]:
    return [
        c["template_card"]
        for c in fake.cards_to(account)
        if c["template_card"]["task_id"].startswith(f"oa_nt{notice_id}-")
    ]


def last_working_slot(now: datetime) -> datetime:
    """15:30 of today (or of the last working day, 调休 and holidays counted) in Shanghai, no later
    than now: a digest slot that is due at once, on a working day."""
    day = now.astimezone(SH).date()
    while not CALENDAR.is_working_day(day):
        day -= timedelta(days=1)
    slot = datetime(day.year, day.month, day.day, 15, 30, tzinfo=SH)
    return min(slot, now) if slot.date() == now.astimezone(SH).date() else slot


async def bring_digest_forward(db_url: str) -> None:
    """Make the pending digest slot due now (what the clock would do at 10:00 or 15:30)."""
    db = open_database(db_url)
    try:
        async with db.transaction() as s:
            await s.execute(
                update(TimerRow)
                .where(TimerRow.kind == "digest")  # type: ignore[arg-type]
                .where(TimerRow.status == "pending")  # type: ignore[arg-type]
                .values(due_at=last_working_slot(datetime.now(UTC)))
            )
    finally:
        await db.dispose()


async def test_a_department_notice_one_card_each_taps_update_progress_and_the_digest_chases_the_rest(
    server: ServerProcess,  # noqa: F811
    wecom: FakeWeCom,  # noqa: F811
    phone: Phone,  # noqa: F811
    stores: dict[str, str],  # noqa: F811
) -> None:
    status, created = await api(
        server,
        "POST",
        "/notices",
        {
            "title": TITLE,
            "body": "请各位于周五前完成办公区域的消防安全自查。",
            "audience": {"departments": [{"id": "admin_service", "with_sub": True}]},
            "author": "u_wang",
        },
    )
    assert status == 201, created
    assert created["status"] == "published", created
    nid = created["id"]
    _, progress = await api(server, "GET", f"/notices/{nid}/receipts?person=u_wang")
    members = [r["person"] for r in progress["receipts"]]
    assert {"u_chen", "u_liu"} <= set(members) and len(members) == created["total"]

    # one card per member, each with 已收到 and the notice page
    for person in members:
        cards = await wait_until(lambda p=person: notice_cards(wecom, ACCOUNT[p], nid))
        assert len(cards) == 1, (person, cards)
        card = cards[0]
        assert TITLE in str(card) and card["main_title"]["desc"].startswith("王芳 发布")
        assert any(b.get("key") == "notice_ack" and b.get("text") == "已收到" for b in card["button_list"])
        link = card["card_action"]["url"]
        async with httpx.AsyncClient(timeout=10) as http:
            opened = await http.get(link, follow_redirects=False)
        assert opened.status_code in (302, 303) and opened.headers["Location"].endswith(f"/m/n/{nid}"), link
    assert wecom.cards_to("zhangwei") == [] or not notice_cards(wecom, "zhangwei", nid)

    # 陈静 taps 已收到; WeCom retries the event; her card updates once and the author sees it
    card = notice_cards(wecom, "chenjing", nid)[0]
    code = await phone.tap("chenjing", card, key="notice_ack", times=3)
    update_body = await phone.update_for(code)
    assert "已收到" in str(update_body)

    async def acknowledged() -> int:
        _, p = await api(server, "GET", f"/notices/{nid}/receipts?person=u_wang")
        return int(p["acknowledged"])

    assert await wait_until(lambda: acknowledged()) == 1
    await phone.tap("chenjing", card, key="notice_ack", times=1)  # a later second tap changes nothing
    _, progress = await api(server, "GET", f"/notices/{nid}/receipts?person=u_wang")
    assert progress["acknowledged"] == 1
    assert "u_liu" in [r["person"] for r in progress["pending"]]
    assert "u_chen" not in [r["person"] for r in progress["pending"]]

    # the next digest slot lists the notice to those who have not answered only
    before = {a: len(wecom.texts_to(a)) for a in ACCOUNT.values()}
    await bring_digest_forward(stores["OABOT_DATABASE_URL"])
    liu = await wait_until(
        lambda: [t for t in wecom.texts_to("liuqiang")[before["liuqiang"] :] if TITLE in t], timeout=30
    )
    assert len(liu) == 1
    assert not [t for t in wecom.texts_to("chenjing")[before["chenjing"] :] if TITLE in t]
