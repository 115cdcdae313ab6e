"""Field staff (issue 17): a revoked, withdrawn or terminated outing cancels its trips (no more
reminders, the cards say 已取消, every traveller is told), and two 补卡 submissions racing for the
last place of the monthly quota get exactly one through. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from approvals.clock import ManualClock
from storage.checkin_models import TripRow
from storage.console_models import ConsoleMessageRow
from storage.db import Database
from storage.timer_models import TimerRow
from tests.conftest import Api
from tests.test_checkins_api import (
    PUDONG_GCJ,
    PUDONG_WGS,
    approved_outing,
    call,
    card_links,
    client,
    count_checkins,
    fix_form,
    outbox,
    page_post,
    rungs_sent,
    share,
)


async def _timer_statuses(db: Database, request_id: str) -> dict[str, str]:
    async with db.session() as s:
        q = select(TimerRow.key, TimerRow.status).where(TimerRow.ref.like(f"{request_id}-%"))  # type: ignore[call-overload,union-attr]
        return dict((await s.execute(q)).all())


async def _trip_statuses(db: Database, request_id: str) -> dict[str, str]:
    async with db.session() as s:
        q = select(TripRow.traveller, TripRow.status).where(TripRow.request_id == request_id)  # type: ignore[call-overload]
        return dict((await s.execute(q)).all())


async def test_revoking_an_approved_outing_cancels_every_trip_and_its_reminders(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    req = await approved_outing(api, companions=["u_zheng"])
    links = card_links((await outbox(org_db, "checkin_card", "u_wu"))[0])
    assert set((await _timer_statuses(org_db, req["id"])).values()) == {"pending"}  # 2 trips x 4 rungs

    await call(
        api, "POST", f"/requests/{req['id']}/actions", {"action": "withdraw", "actor": "u_wu"}, expect=200
    )
    assert await _trip_statuses(org_db, req["id"]) == {"u_wu": "cancelled", "u_zheng": "cancelled"}
    statuses = await _timer_statuses(org_db, req["id"])
    assert len(statuses) == 8 and set(statuses.values()) == {"cancelled"}

    # each traveller is told, naming the other; the note carries no address
    notes = {r.recipient: r.payload for r in await outbox(org_db, "checkin_card_cancelled")}
    assert set(notes) == {"u_wu", "u_zheng"}
    assert "已撤销" in notes["u_wu"]["text"] and "郑浩" in notes["u_wu"]["text"]
    assert "吴昊" in notes["u_zheng"]["text"] and notes["u_zheng"]["outcome"] == "已取消"
    assert all("http" not in n["text"] for n in notes.values())

    # the card's links, a shared location and 打卡 no longer find the trip
    page = await client(api).get(links["到达打卡"])
    assert page.status == 409 and "已取消" in await page.text()
    status, body = await page_post(api, links["到达打卡"], PUDONG_WGS.lat, PUDONG_WGS.lng)
    assert status == 409 and "已取消" in body["message"]
    reply = await share(api, "wuhao", *PUDONG_GCJ)
    assert reply is not None and "外出申请" in reply
    assert await count_checkins(org_db) == 0

    # the whole day passes: not one reminder or escalation
    for _ in range(8):
        clock.advance(timedelta(hours=1))
        assert await rungs_sent(api) == 0
    assert [r for r in await outbox(org_db, "checkin_card") if "还没有" in r.payload["text"]] == []
    assert [r for r in await outbox(org_db, "text") if "【外勤督办】" in r.payload["text"]] == []

    # the console's trip card now reads 已取消, without buttons
    await api.drain()
    async with org_db.session() as s:
        q = select(ConsoleMessageRow).where(ConsoleMessageRow.user_id == "u_wu")  # type: ignore[arg-type]
        rows = list((await s.execute(q)).scalars().all())
    cards = [r for r in rows if r.kind == "checkin_card"]
    assert cards and all(r.closed and r.outcome == "已取消" for r in cards)
    feed = await (await client(api).get("/console/u/u_wu/feed")).text()
    assert "data-checkin-link" not in feed and "已取消" in feed and "无需再打卡" in feed


async def test_withdrawing_again_or_a_rejected_outing_cancels_nothing_more(
    api: Api, org_db: Database
) -> None:
    req = await api.submit("outing", "u_wu", {**_form(), "companions": []})
    await call(
        api, "POST", f"/requests/{req['id']}/actions", {"action": "withdraw", "actor": "u_wu"}, expect=200
    )
    assert await outbox(org_db, "checkin_card_cancelled") == []  # no trip was ever opened
    assert await _trip_statuses(org_db, req["id"]) == {}


def _form() -> dict[str, Any]:
    return {
        "destination": {"site": "site_pudong"},
        "start": "2026-11-23T10:30:00+08:00",
        "end": "2026-11-23T16:00:00+08:00",
        "reason": "现场巡检",
    }


async def test_two_fixes_racing_for_the_last_place_exactly_one_is_accepted(
    api: Api, org_db: Database
) -> None:
    for day in ("03", "10"):
        await api.submit("checkin_fix", "u_wu", fix_form(f"2026-11-{day}T09:00:00+08:00"))
    for attempt in range(3):  # a few rounds: each starts with one place left
        body = {"template": "checkin_fix", "initiator": "u_wu"}
        results = await asyncio.gather(
            call(api, "POST", "/requests", {**body, "form": fix_form("2026-11-17T09:00:00+08:00")}),
            call(api, "POST", "/requests", {**body, "form": fix_form("2026-11-18T09:00:00+08:00")}),
        )
        codes = sorted(status for status, _ in results)
        assert codes == [201, 403], results
        refused = next(b for s, b in results if s == 403)
        assert refused["error"] == "checkin_fix_quota"
        _, mine = await call(api, "GET", "/requests?initiator=u_wu&template=checkin_fix", expect=200)
        assert len([r for r in mine["items"] if r["status"] == "running"]) == 3
        accepted = next(b for s, b in results if s == 201)
        if attempt < 2:  # give the place back for the next round
            await call(
                api,
                "POST",
                f"/requests/{accepted['id']}/actions",
                {"action": "withdraw", "actor": "u_wu"},
                expect=200,
            )
