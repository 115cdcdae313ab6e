"""Field check-ins end to end in the app (SQLite and PostgreSQL): trips from approvals, check-ins
from chat locations, the signed page and the API, the missing-check-in ladder, 补卡 and its quota,
trust flags on the managers' view, the daily summary."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import delete, func, select

from approvals.clock import ManualClock
from bot.app import create_app
from bot.keys import CHAT, CHECKINS, DISPATCHER, TIMERS
from bot.settings import CheckinSettings, ConfigError, load_settings
from bot.web.openapi import document
from checkins.geo import LatLng, gcj02_to_wgs84
from checkins.links import LinkClaims, sign_link
from deadlines.timer_kinds import TimerScanner
from deadlines.timers import TimerKind
from handlers.events import LocationShared, Sender
from services.checkins import CheckinService
from storage.approval_models import OutboxRow
from storage.checkin_models import CheckinRow, TripRow
from storage.console_models import ConsoleMessageRow
from storage.db import Database
from storage.timer_models import TimerRow
from tests.conftest import Api, settings_for

PUDONG_GCJ = (31.2215, 121.5440)  # the demo org's 浦东项目现场, radius 500 m, GCJ-02
PUDONG_WGS = gcj02_to_wgs84(LatLng(*PUDONG_GCJ))
HQ_GCJ = (31.2304, 121.4737)  # 集团总部, ~6.8 km from 浦东项目现场

OUTING = {
    "destination": {"site": "site_pudong"},
    "start": "2026-11-23T10:30:00+08:00",
    "end": "2026-11-23T16:00:00+08:00",
    "reason": "现场巡检",
}


# -- helpers ----------------------------------------------------------------------------------------
async def call(
    api: Api, method: str, path: str, body: object = None, expect: int | None = None
) -> tuple[int, Any]:
    """`Api.call` with the JSON body typed loosely, for reading."""
    return await api.call(method, path, body, expect=expect)


def client(api: Api) -> Any:
    return api.client


def app(api: Api) -> Any:
    return api.app


async def approved_outing(
    api: Api, initiator: str = "u_wu", manager: str = "u_sun", **form: Any
) -> dict[str, Any]:
    req = await api.submit("outing", initiator, {**OUTING, **form})
    await api.decide(manager)
    return req


async def outbox(db: Database, kind: str | None = None, recipient: str | None = None) -> list[OutboxRow]:
    q = select(OutboxRow).order_by(OutboxRow.id)  # type: ignore[arg-type]
    if kind:
        q = q.where(OutboxRow.kind == kind)  # type: ignore[arg-type]
    if recipient:
        q = q.where(OutboxRow.recipient == recipient)  # type: ignore[arg-type]
    async with db.session() as s:
        return list((await s.execute(q)).scalars().all())


async def count_checkins(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(CheckinRow))).scalar_one())


def card_links(row: OutboxRow) -> dict[str, str]:
    """{'到达打卡': path, '离开打卡': path} of a trip card."""
    return {b["label"]: urlsplit(b["url"]).path for b in row.payload["card"]["buttons"]}


async def share(
    api: Api, account: str, lat: float, lng: float, *, accuracy: float | None = 20, system: str = "gcj02"
) -> str | None:
    event = LocationShared(
        Sender("wecom", account),
        f"msg:{uuid.uuid4().hex}",
        lat=lat,
        lng=lng,
        accuracy_m=accuracy,
        coord_system=system,
    )
    reply: str | None = await app(api)[CHAT].handle(event)
    return reply


async def page_post(
    api: Api, path: str, lat: float, lng: float, *, accuracy: float = 15, **extra: Any
) -> tuple[int, dict[str, Any]]:
    body = {
        "lat": lat,
        "lng": lng,
        "accuracy_m": accuracy,
        "coord_system": "wgs84",
        "nonce": uuid.uuid4().hex,
        **extra,
    }
    resp = await client(api).post(path, json=body)
    return resp.status, await resp.json()


def service(api: Api) -> CheckinService:
    service: CheckinService = app(api)[CHECKINS]
    return service


def scanner(api: Api) -> TimerScanner:
    """The app's one timer scan (background jobs are off: tests drive it by hand)."""
    scan: TimerScanner = app(api)[TIMERS]
    return scan


async def fired(scan: TimerScanner, kind: TimerKind) -> int:
    """Scan once; how many timers of `kind` fired."""
    return (await scan.scan_once()).fired_by_kind[kind.value]


async def rungs_sent(api: Api) -> int:
    return await fired(scanner(api), TimerKind.CHECKIN_MISSING)


def check_schema(name: str, instance: object) -> None:
    doc = document()
    validator = Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    )
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, errors[:5]


# -- trips and cards --------------------------------------------------------------------------------
async def test_approved_outing_opens_a_trip_and_sends_the_traveller_a_card(
    api: Api, org_db: Database
) -> None:
    req = await api.submit("outing", "u_wu", OUTING)
    assert await outbox(org_db, "checkin_card") == []  # nothing before approval
    await api.decide("u_sun")
    async with org_db.session() as s:
        trips = (await s.execute(select(TripRow))).scalars().all()
    assert [(t.id, t.traveller, t.dest_site, t.dest_radius_m) for t in trips] == [
        (f"{req['id']}-0", "u_wu", "site_pudong", 500)
    ]
    (card,) = await outbox(org_db, "checkin_card", "u_wu")
    assert set(card_links(card)) == {"到达打卡", "离开打卡"}
    assert all(p.startswith("/checkin/") for p in card_links(card).values())
    # the buttons carry the addresses; the text has none (it would overflow a phone screen)
    assert "浦东项目现场" in card.payload["text"] and "http" not in card.payload["text"]
    # the console shows it as a card with link buttons
    await api.drain()
    html = await (await client(api).get("/console/u/u_wu")).text()
    assert "data-checkin-link" in html and "到达打卡" in html and "?as=u_wu" in html


async def test_a_rejected_outing_opens_no_trip(api: Api, org_db: Database) -> None:
    await api.submit("outing", "u_wu", OUTING)
    await api.decide("u_sun", action="reject")
    assert await outbox(org_db, "checkin_card") == []


# -- chat locations ------------------------------------------------------------------------------------
async def test_arrival_and_departure_through_location_messages(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    await approved_outing(api)
    clock.advance(timedelta(minutes=35))
    reply = await share(api, "wuhao", PUDONG_GCJ[0] + 0.001, PUDONG_GCJ[1])
    assert reply is not None and reply.startswith("已记录到达打卡") and "在范围内" in reply
    # a second share a few minutes later repeats the arrival rather than leaving at once
    clock.advance(timedelta(minutes=3))
    assert (await share(api, "wuhao", *PUDONG_GCJ) or "").startswith("已记录到达打卡")
    clock.advance(timedelta(hours=5))
    reply = await share(api, "wuhao", *HQ_GCJ)
    assert (
        reply is not None
        and reply.startswith("已记录离开打卡")
        and "不在目的地范围内" in reply
        and "已告知您的直属领导" in reply
    )
    told = [r.payload["text"] for r in await outbox(org_db, "text", "u_sun")]
    assert any("吴昊" in t and "离开打卡不在目的地范围内" in t and "/checkins/team/" in t for t in told)
    _, day = await call(api, "GET", "/checkins?user=u_wu&date=2026-11-23", expect=200)
    assert [(c["kind"], c["verdict"], c["source"]) for c in day["items"]] == [
        ("arrival", "on_site", "platform"),
        ("arrival", "on_site", "platform"),
        ("departure", "off_site", "platform"),
    ]
    check_schema("CheckinDay", day)


async def test_a_retried_location_delivery_records_once(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    await approved_outing(api)
    event = LocationShared(
        Sender("wecom", "wuhao"), "msg:42", lat=PUDONG_GCJ[0], lng=PUDONG_GCJ[1], accuracy_m=10
    )
    await app(api)[CHAT].process(event)
    await app(api)[CHAT].process(event)
    assert await count_checkins(org_db) == 1


async def test_vehicle_trip_without_coordinates_is_recorded_and_not_flagged(
    api: Api, org_db: Database
) -> None:
    await api.submit(
        "vehicle_dispatch",
        "u_wu",
        {
            "destination": "浦东机场",
            "depart_at": "2026-11-23T09:30:00+08:00",
            "return_at": "2026-11-23T18:00:00+08:00",
            "self_drive": False,
            "passengers": 2,
            "reason": "接客户",
        },
    )
    await api.decide("u_wang")
    reply = await share(api, "wuhao", 31.1443, 121.8083)
    assert reply is not None and "已记录到达打卡" in reply and "没有坐标" in reply
    _, day = await call(api, "GET", "/checkins?user=u_wu", expect=200)
    (c,) = day["items"]
    assert c["verdict"] == "no_destination" and c["distance_m"] is None and c["target_name"] == "浦东机场"
    assert await outbox(org_db, "text", "u_sun") == []


async def test_without_a_trip_only_field_staff_check_in_freely(api: Api, org_db: Database) -> None:
    reply = await share(api, "wuhao", *PUDONG_GCJ)  # 吴昊 is not field staff (郑浩 is)
    assert reply is not None and reply.startswith("已收到您的位置") and "外出申请" in reply
    assert await count_checkins(org_db) == 0


async def test_free_field_work_records_the_nearest_site(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app = create_app(settings_for(org_db, checkins=CheckinSettings(free_roles=("*",))), clock=clock)
    api = Api(await aiohttp_client(app), app)
    reply = await share(api, "zhenghao", PUDONG_GCJ[0] + 0.002, PUDONG_GCJ[1])
    assert reply is not None and "外勤签到" in reply and "浦东项目现场" in reply and "在范围内" in reply
    _, day = await call(api, "GET", "/checkins?dept=engineering", expect=200)
    (c,) = day["items"]
    assert (c["kind"], c["target_site"], c["trip_id"]) == ("free", "site_pudong", None)
    assert 200 < c["distance_m"] < 250


async def test_the_checkin_command_sends_fresh_links(api: Api, org_db: Database) -> None:
    from handlers.events import TextMessage

    chat = app(api)[CHAT]
    assert "没有已批准" in (await chat.handle(TextMessage(Sender("wecom", "wuhao"), "t1", "打卡")) or "")
    await approved_outing(api)
    assert await chat.handle(TextMessage(Sender("wecom", "wuhao"), "t2", "打卡")) is None
    assert len(await outbox(org_db, "checkin_card", "u_wu")) == 2


# -- the signed check-in page ---------------------------------------------------------------------------
async def test_check_in_page_on_site_then_off_site(api: Api, org_db: Database, clock: ManualClock) -> None:
    await approved_outing(api)
    links = card_links((await outbox(org_db, "checkin_card", "u_wu"))[0])
    page = await client(api).get(links["到达打卡"])
    html = await page.text()
    assert (
        page.status == 200
        and "到达打卡" in html
        and "navigator.geolocation" in html
        and "浦东项目现场" in html
    )
    status, body = await page_post(api, links["到达打卡"], PUDONG_WGS.lat, PUDONG_WGS.lng)
    assert status == 201 and body["verdict"] == "on_site" and body["kind"] == "arrival"
    clock.advance(timedelta(hours=6))
    status, body = await page_post(api, links["离开打卡"], 31.30, 121.60, accuracy=30)
    assert status == 201 and body["verdict"] == "off_site" and "公里" in body["message"]
    _, day = await call(api, "GET", "/checkins?user=u_wu", expect=200)
    assert [(c["kind"], c["source"], c["channel"]) for c in day["items"]] == [
        ("arrival", "browser", "page"),
        ("departure", "browser", "page"),
    ]
    assert any("离开打卡不在目的地范围内" in r.payload["text"] for r in await outbox(org_db, "text", "u_sun"))


async def test_expired_link_is_refused_and_records_nothing(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    await approved_outing(api)
    links = card_links((await outbox(org_db, "checkin_card", "u_wu"))[0])
    clock.advance(timedelta(hours=8, minutes=1))  # trip ends 16:00, links work until 18:00
    page = await client(api).get(links["到达打卡"])
    assert page.status == 410 and "过期" in await page.text()
    status, body = await page_post(api, links["到达打卡"], PUDONG_WGS.lat, PUDONG_WGS.lng)
    assert status == 410 and body["error"] == "link_expired" and "没有记录任何内容" in body["message"]
    assert await count_checkins(org_db) == 0


async def test_someone_elses_or_an_altered_link_is_refused(api: Api, org_db: Database) -> None:
    req = await approved_outing(api)
    links = card_links((await outbox(org_db, "checkin_card", "u_wu"))[0])
    async with org_db.transaction() as s:
        secret = await service(api).secret(s)
    # a genuine signature, but for someone who is not the trip's traveller
    forged = sign_link(
        secret,
        LinkClaims(
            user="u_zheng",
            trip=f"{req['id']}-0",
            kind="arrival",
            expires_at=datetime(2026, 11, 24, tzinfo=UTC),
        ),
    )
    status, body = await page_post(api, f"/checkin/{forged}", PUDONG_WGS.lat, PUDONG_WGS.lng)
    assert status == 403 and body["error"] == "not_your_trip"
    # u_wu's link opened by someone else in the console
    status, body = await page_post(api, links["到达打卡"] + "?as=u_zheng", PUDONG_WGS.lat, PUDONG_WGS.lng)
    assert status == 403 and "别人的" in body["message"]
    page = await client(api).get(links["到达打卡"] + "?as=u_zheng")
    assert page.status == 403
    # altered: the departure link's signature on the arrival link's payload
    altered = links["到达打卡"].split(".")[0] + "." + links["离开打卡"].split(".")[1]
    status, body = await page_post(api, altered, PUDONG_WGS.lat, PUDONG_WGS.lng)
    assert status == 403 and body["error"] == "link_invalid" and "链接无效" in body["message"]
    assert await count_checkins(org_db) == 0


async def test_the_page_refuses_bad_positions_and_records_nothing(api: Api, org_db: Database) -> None:
    await approved_outing(api)
    path = card_links((await outbox(org_db, "checkin_card", "u_wu"))[0])["到达打卡"]
    for lat, lng, accuracy, word in ((91.0, 121.5, 10.0, "纬度"), (31.2, 121.5, -5.0, "精度")):
        status, body = await page_post(api, path, lat, lng, accuracy=accuracy)
        assert status == 422 and word in body["message"]
    resp = await client(api).post(
        path, data=b'{"lat": NaN, "lng": 121.5}', headers={"Content-Type": "application/json"}
    )
    assert resp.status == 422 and "纬度" in (await resp.json())["message"]
    status, body = await page_post(api, path, 31.2, 121.5, device_at="yesterday")
    assert status == 422
    assert await count_checkins(org_db) == 0


# -- the REST API ------------------------------------------------------------------------------------------
async def test_api_check_in_with_idempotency_and_its_schema(api: Api, org_db: Database) -> None:
    req = await approved_outing(api)
    body = {
        "user": "u_wu",
        "lat": PUDONG_WGS.lat,
        "lng": PUDONG_WGS.lng,
        "accuracy_m": 12,
        "request_id": req["id"],
        "idempotency_key": "k1",
    }
    _, first = await call(api, "POST", "/checkins", body, expect=201)
    check_schema("Checkin", first)
    assert (
        first["source"] == "api"
        and first["verdict"] == "on_site"
        and first["trust"]["flags"] == ["api_source"]
    )
    _, again = await call(api, "POST", "/checkins", body, expect=200)
    assert again["id"] == first["id"] and again["created"] is False
    _, departure = await call(
        api,
        "POST",
        "/checkins",
        {
            **body,
            "kind": "departure",
            "idempotency_key": "k2",
            "trip_id": first["trip_id"],
            "request_id": None,
        },
        expect=201,
    )
    assert departure["kind"] == "departure"
    assert await count_checkins(org_db) == 2


async def test_api_bad_input_gets_a_clear_message_and_records_nothing(api: Api, org_db: Database) -> None:
    running = await api.submit("outing", "u_wu", OUTING)  # not approved yet
    approved = await approved_outing(api, initiator="u_zheng", manager="u_zhou")
    ok = {"user": "u_wu", "lat": 31.2, "lng": 121.5}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**ok, "lat": 91}, 422, "纬度"),
        ({**ok, "lng": -181}, 422, "经度"),
        ({**ok, "accuracy_m": -3}, 422, "精度"),
        ({**ok, "coord_system": "bd09"}, 422, "坐标系"),
        ({**ok, "request_id": running["id"]}, 409, "尚未审批通过"),
        ({**ok, "request_id": approved["id"]}, 403, "不是申请"),
        ({**ok, "trip_id": f"{approved['id']}-0"}, 403, "属于其他人"),
        ({**ok, "trip_id": "nope"}, 404, "不存在"),
        ({**ok, "user": "nobody"}, 422, "不是本单位在职人员"),
        ({"user": "u_wu"}, 422, "lat"),
        ({**ok, "surprise": 1}, 422, "surprise"),
        ({**ok}, 403, "外出申请"),  # no trip today and not field staff
    ]
    for body, status, word in cases:
        got, err = await call(api, "POST", "/checkins", body)
        assert got == status and word in json.dumps(err, ensure_ascii=False), (body, got, err)
    resp = await client(api).post(
        "/api/v1/checkins",
        data=b'{"user": "u_wu", "lat": NaN, "lng": 121.5}',
        headers={**api.headers, "Content-Type": "application/json"},
    )
    assert resp.status == 422 and "纬度" in (await resp.json())["message"]
    assert await count_checkins(org_db) == 0


async def test_list_filters_by_date_department_and_user(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    await approved_outing(api)
    await share(api, "wuhao", *PUDONG_GCJ)
    _, today = await call(api, "GET", "/checkins?dept=marketing", expect=200)
    assert [c["user"] for c in today["items"]] == ["u_wu"]
    _, other = await call(api, "GET", "/checkins?dept=engineering", expect=200)
    assert other["items"] == []
    _, yesterday = await call(api, "GET", "/checkins?date=2026-11-22", expect=200)
    assert yesterday["items"] == [] and yesterday["date"] == "2026-11-22"
    status, err = await call(api, "GET", "/checkins?date=23/11&dept=nowhere&who=x")
    assert status == 422 and set(err["details"]) == {"date", "dept", "who"}


# -- the ladder ---------------------------------------------------------------------------------------------
async def test_each_missing_checkin_rung_fires_once(api: Api, org_db: Database, clock: ManualClock) -> None:
    await approved_outing(api, start="2026-11-23T10:30:00+08:00", end="2026-11-23T12:00:00+08:00")
    svc = service(api)
    at = lambda hh, mm: clock.set(datetime(2026, 11, 23, hh, mm, tzinfo=UTC) - timedelta(hours=8))  # noqa: E731

    async def sent() -> list[tuple[str, str, str]]:
        rows = await outbox(org_db)
        return [
            (r.kind, r.recipient, r.payload.get("text", "").split("\n")[0][:6])
            for r in rows
            if r.kind in ("checkin_card", "text") and "【外勤" in r.payload.get("text", "")
        ]

    before = len(await sent())
    at(10, 59)
    assert await rungs_sent(api) == 0
    at(11, 0)
    assert await rungs_sent(api) == 1
    assert await rungs_sent(api) == 0  # the same minute again: nothing new
    at(11, 30)
    assert await rungs_sent(api) == 1
    new = (await sent())[before:]
    assert [(k, r) for k, r, _ in new] == [("checkin_card", "u_wu"), ("text", "u_sun")]
    assert "还没有到达打卡" in (await outbox(org_db, "checkin_card", "u_wu"))[-1].payload["text"]
    assert any("仍未到达打卡" in r.payload["text"] for r in await outbox(org_db, "text", "u_sun"))
    at(11, 40)
    await share(api, "wuhao", *PUDONG_GCJ)
    at(12, 29)
    assert await rungs_sent(api) == 0
    at(12, 30)
    assert await rungs_sent(api) == 1
    assert "还没有离开打卡" in (await outbox(org_db, "checkin_card", "u_wu"))[-1].payload["text"]
    at(13, 0)
    # several replicas scanning the same minute: exactly one sends the rung
    replicas = [scanner(api), TimerScanner(db=svc.db, kinds=scanner(api).kinds, now=svc.now)]
    counts = await asyncio.gather(*(fired(r, TimerKind.CHECKIN_MISSING) for r in replicas))
    assert sorted(counts) == [0, 1]
    escalations = [r for r in await outbox(org_db, "text", "u_sun") if "仍未离开打卡" in r.payload["text"]]
    assert len(escalations) == 1
    at(14, 0)
    assert await rungs_sent(api) == 0
    async with org_db.session() as s:
        q = select(TimerRow.status).where(TimerRow.kind == TimerKind.CHECKIN_MISSING.value)  # type: ignore[call-overload]
        statuses = sorted((await s.execute(q)).scalars().all())
    # four rungs: the arrival's two sent; the departure's two sent as well (no departure check-in)
    assert statuses == ["done"] * 4


async def test_a_check_in_on_time_silences_the_ladder(api: Api, org_db: Database, clock: ManualClock) -> None:
    await approved_outing(api)
    clock.advance(timedelta(minutes=40))
    await share(api, "wuhao", *PUDONG_GCJ)
    clock.advance(timedelta(hours=2))
    assert await rungs_sent(api) == 0
    async with org_db.session() as s:
        q = select(TimerRow.key, TimerRow.status).where(TimerRow.kind == TimerKind.CHECKIN_MISSING.value)  # type: ignore[call-overload]
        rows = dict((await s.execute(q)).all())
    assert {status for key, status in rows.items() if ":arrival:" in key} == {"cancelled"}


# -- 补卡 -------------------------------------------------------------------------------------------------
def fix_form(missed_at: str, kind: str = "到达") -> dict[str, Any]:
    return {"kind": kind, "missed_at": missed_at, "location": {"site": "site_pudong"}, "reason": "手机没电"}


async def test_fix_within_quota_is_recorded_as_made_up_when_approved(api: Api, org_db: Database) -> None:
    trip_req = await approved_outing(api)
    fix = await api.submit("checkin_fix", "u_wu", fix_form("2026-11-23T10:35:00+08:00"))
    assert await count_checkins(org_db) == 0
    await api.decide("u_sun")
    _, day = await call(api, "GET", "/checkins?user=u_wu", expect=200)
    (c,) = day["items"]
    assert c["made_up"] and c["fix_request_id"] == fix["id"] and c["source"] == "fix"
    assert c["trip_id"] == f"{trip_req['id']}-0" and c["kind"] == "arrival" and c["verdict"] == "on_site"
    assert c["trust"]["flags"] == ["made_up"]
    assert any("补卡已批准" in r.payload["text"] for r in await outbox(org_db, "text", "u_wu"))
    # the made-up arrival counts: no arrival rung any more
    assert [r for r in await outbox(org_db, "checkin_card") if "还没有到达" in r.payload["text"]] == []


async def test_fix_over_the_monthly_quota_is_refused_at_submission(api: Api, org_db: Database) -> None:
    for day in ("03", "10", "17"):
        await api.submit("checkin_fix", "u_wu", fix_form(f"2026-11-{day}T09:00:00+08:00"))
    status, err = await call(
        api,
        "POST",
        "/requests",
        {"template": "checkin_fix", "initiator": "u_wu", "form": fix_form("2026-11-20T09:00:00+08:00")},
    )
    assert status == 403 and err["error"] == "checkin_fix_quota" and "上限" in err["message"]
    _, mine = await call(api, "GET", "/requests?initiator=u_wu&template=checkin_fix", expect=200)
    assert len(mine["items"]) == 3
    # another month, another person: fine
    await api.submit("checkin_fix", "u_wu", fix_form("2026-12-01T09:00:00+08:00"))
    await api.submit("checkin_fix", "u_zheng", fix_form("2026-11-20T09:00:00+08:00"))
    # a withdrawn one gives its place back
    first = mine["items"][-1]
    await call(
        api, "POST", f"/requests/{first['id']}/actions", {"action": "withdraw", "actor": "u_wu"}, expect=200
    )
    await api.submit("checkin_fix", "u_wu", fix_form("2026-11-20T09:00:00+08:00"))


async def test_fix_over_quota_in_the_console_shows_the_message(api: Api, org_db: Database) -> None:
    for day in ("03", "10", "17"):
        await api.submit("checkin_fix", "u_wu", fix_form(f"2026-11-{day}T09:00:00+08:00"))
    resp = await client(api).post(
        "/console/u/u_wu/new/checkin_fix",
        data={"kind": "到达", "missed_at": "2026-11-20T09:00", "location": "site_pudong", "reason": "忘记了"},
    )
    assert "上限" in await resp.text()


# -- trust on the managers' view, the daily summary ------------------------------------------------------
async def test_trust_flags_and_map_links_show_on_the_managers_page(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    await approved_outing(api)
    links = card_links((await outbox(org_db, "checkin_card", "u_wu"))[0])
    await page_post(
        api,
        links["到达打卡"],
        PUDONG_WGS.lat,
        PUDONG_WGS.lng,
        accuracy=2500,
        device_at=(clock.now() - timedelta(hours=1)).isoformat(),
    )
    clock.advance(timedelta(minutes=20))
    await share(api, "wuhao", 39.9087, 116.3975)  # Beijing twenty minutes later
    _, day = await call(api, "GET", "/checkins?user=u_wu", expect=200)
    flags = [c["trust"]["flags"] for c in day["items"]]
    assert flags == [["coarse_fix", "clock_skew"], ["impossible_travel"]]
    async with org_db.transaction() as s:
        secret = await service(api).secret(s)
    token = sign_link(
        secret, LinkClaims(user="u_sun", trip="*", kind="team", expires_at=clock.now() + timedelta(hours=1))
    )
    html = await (await client(api).get(f"/checkins/team/{token}?date=2026-11-23")).text()
    for flag in ("coarse_fix", "clock_skew", "impossible_travel"):
        assert f'data-flag="{flag}"' in html
    assert "uri.amap.com/marker" in html and "吴昊" in html and 'data-verdict="off_site"' in html
    console = await (await client(api).get("/console/u/u_sun/checkins")).text()
    assert 'data-flag="impossible_travel"' in console
    # someone else's team page shows nobody of u_sun's team
    other = await (await client(api).get("/console/u/u_zhou/checkins")).text()
    assert "吴昊" not in other
    # an arrival link is not a team link
    arrival_token = links["到达打卡"].rsplit("/", 1)[1]
    assert (await client(api).get(f"/checkins/team/{arrival_token}")).status == 403


async def test_daily_summary_tells_each_manager_once(api: Api, org_db: Database, clock: ManualClock) -> None:
    await approved_outing(api)
    clock.advance(timedelta(minutes=40))
    await share(api, "wuhao", *HQ_GCJ)  # arrival off site; no departure ever
    clock.set(datetime(2026, 11, 23, 10, 30, tzinfo=UTC))  # 18:30 in Shanghai
    other = TimerScanner(db=org_db, kinds=scanner(api).kinds, now=clock.now)  # another replica
    counts = await asyncio.gather(*(fired(r, TimerKind.CHECKIN_SUMMARY) for r in (scanner(api), other)))
    assert sorted(counts) == [0, 1]
    assert await fired(scanner(api), TimerKind.CHECKIN_SUMMARY) == 0
    (summary,) = [r for r in await outbox(org_db, "text", "u_sun") if "外勤日报" in r.payload["text"]]
    text = summary.payload["text"]
    assert "吴昊：到达打卡不在范围内" in text and "吴昊：未离开打卡" in text and "/checkins/team/" in text
    await api.drain()
    async with org_db.session() as s:
        q = select(ConsoleMessageRow).where(ConsoleMessageRow.user_id == "u_sun")  # type: ignore[arg-type]
        shown = (await s.execute(q)).scalars().all()
    assert any("外勤日报" in m.text for m in shown)


# -- settings --------------------------------------------------------------------------------------------
def test_checkin_settings_are_read_and_checked() -> None:
    s = load_settings(
        {
            "OABOT_LINK_SECRET": "s" * 20,
            "OABOT_CHECKIN_GRACE_MIN": "15",
            "OABOT_CHECKIN_FIX_QUOTA": "5",
            "OABOT_CHECKIN_FREE_ROLES": "field_staff, sales",
            "OABOT_CHECKIN_SUMMARY_AT": "",
        },
        dotenv_path=None,
    )
    assert s.checkins == CheckinSettings(
        link_secret="s" * 20, grace_min=15, fix_quota=5, free_roles=("field_staff", "sales"), summary_at=None
    )
    with pytest.raises(ConfigError) as info:
        load_settings(
            {
                "OABOT_LINK_SECRET": "short",
                "OABOT_CHECKIN_GRACE_MIN": "0",
                "OABOT_CHECKIN_SUMMARY_AT": "25:00",
            },
            dotenv_path=None,
        )
    text = " ".join(info.value.problems)
    assert (
        "OABOT_LINK_SECRET" in text
        and "OABOT_CHECKIN_GRACE_MIN" in text
        and "OABOT_CHECKIN_SUMMARY_AT" in text
    )
    assert "short" not in text  # the secret is never echoed


async def test_a_configured_link_secret_signs_the_links(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app = create_app(settings_for(org_db, checkins=CheckinSettings(link_secret="k" * 32)), clock=clock)
    api = Api(await aiohttp_client(app), app)
    await approved_outing(api)
    path = card_links((await outbox(org_db, "checkin_card", "u_wu"))[0])["到达打卡"]
    token = path.rsplit("/", 1)[1]
    from checkins.links import read_link

    assert read_link(b"k" * 32, token, now=clock.now()).user == "u_wu"
    await app[DISPATCHER].drain()


async def test_a_trip_without_ladder_timers_gets_them_at_the_next_start_and_a_late_rung_fires_once(
    api: Api, org_db: Database, clock: ManualClock, aiohttp_client: Any
) -> None:
    await approved_outing(api, start="2026-11-23T10:30:00+08:00", end="2026-11-23T12:00:00+08:00")
    async with org_db.transaction() as s:  # a trip opened before the ladder was kept in timers
        await s.execute(delete(TimerRow).where(TimerRow.kind == TimerKind.CHECKIN_MISSING.value))  # type: ignore[arg-type]
    clock.set(datetime(2026, 11, 23, 3, 10, tzinfo=UTC))  # 11:10: the service comes back after the 11:00 rung
    restarted = create_app(settings_for(org_db), clock=clock)
    await aiohttp_client(restarted)
    scan = restarted[TIMERS]

    assert await fired(scan, TimerKind.CHECKIN_MISSING) == 1
    assert await fired(scan, TimerKind.CHECKIN_MISSING) == 0
    reminders = [
        r for r in await outbox(org_db, "checkin_card", "u_wu") if "还没有到达打卡" in r.payload["text"]
    ]
    assert len(reminders) == 1
