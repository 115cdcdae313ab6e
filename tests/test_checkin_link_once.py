"""A check-in link records one arrival and one departure per trip (SQLite and PostgreSQL): a
further use, a fresh link for the same trip, or two submissions racing each other all end with
one stored check-in and a Chinese message saying when it was recorded."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import select

from approvals.clock import ManualClock
from storage.checkin_models import CheckinRow
from storage.db import Database
from tests.conftest import Api
from tests.test_checkins_api import (
    PUDONG_WGS,
    approved_outing,
    card_links,
    client,
    outbox,
    page_post,
    service,
)


async def kinds_recorded(db: Database) -> list[str]:
    async with db.session() as s:
        return list((await s.execute(select(CheckinRow.kind).order_by(CheckinRow.id))).scalars().all())  # type: ignore[call-overload]


async def test_a_used_arrival_link_says_when_it_was_recorded_and_records_nothing(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    await approved_outing(api)
    links = card_links((await outbox(org_db, "checkin_card", "u_wu"))[0])
    assert (await page_post(api, links["到达打卡"], PUDONG_WGS.lat, PUDONG_WGS.lng))[0] == 201

    clock.advance(timedelta(minutes=20))
    status, body = await page_post(api, links["到达打卡"], 31.30, 121.60)
    page = await client(api).get(links["到达打卡"])

    assert status == 409 and body["error"] == "already_checked_in"
    assert body["message"] == "本行程的到达打卡已于 11-23 10:00 记录，这次没有再记录。"
    assert page.status == 409 and "已于 11-23 10:00 记录" in await page.text()
    assert await kinds_recorded(org_db) == ["arrival"]
    # The departure link of the same trip still works, once.
    clock.advance(timedelta(hours=6))
    assert (await page_post(api, links["离开打卡"], PUDONG_WGS.lat, PUDONG_WGS.lng))[0] == 201
    status, body = await page_post(api, links["离开打卡"], PUDONG_WGS.lat, PUDONG_WGS.lng)
    assert status == 409 and "离开打卡已于 11-23 16:20 记录" in body["message"]
    assert await kinds_recorded(org_db) == ["arrival", "departure"]


async def test_a_fresh_link_for_the_same_trip_does_not_record_a_second_arrival(
    api: Api, org_db: Database
) -> None:
    await approved_outing(api)
    links = card_links((await outbox(org_db, "checkin_card", "u_wu"))[0])
    await page_post(api, links["到达打卡"], PUDONG_WGS.lat, PUDONG_WGS.lng)
    [trip_row] = await _trips(org_db)
    svc = service(api)
    async with org_db.transaction() as s:
        secret = await svc.secret(s)
    fresh = svc.link(
        secret, user="u_wu", trip=trip_row, kind="arrival", expires_at=svc.now() + timedelta(hours=8)
    )

    status, _ = await page_post(api, urlsplit(fresh).path, PUDONG_WGS.lat, PUDONG_WGS.lng)

    assert status == 409
    assert await kinds_recorded(org_db) == ["arrival"]


async def test_two_submissions_racing_each_other_store_one_arrival(api: Api, org_db: Database) -> None:
    await approved_outing(api)
    links = card_links((await outbox(org_db, "checkin_card", "u_wu"))[0])

    answers = await asyncio.gather(
        *(page_post(api, links["到达打卡"], PUDONG_WGS.lat, PUDONG_WGS.lng) for _ in range(4))
    )

    assert sorted(status for status, _ in answers) == [201, 409, 409, 409]
    assert await kinds_recorded(org_db) == ["arrival"]


async def _trips(db: Database) -> list[str]:
    async with db.session() as s:
        return list((await s.execute(select(CheckinRow.trip_id))).scalars().all())  # type: ignore[call-overload]
