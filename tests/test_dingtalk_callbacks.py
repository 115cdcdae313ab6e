"""HTTP-mode callback routes in-process (aiohttp test client, controllable clock): what is
verified, what is stored in the inbox, and what DingTalk gets back. Callbacks are sealed with
dingtalk-sdk and signed with the published robot formula, not with oabot's code."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from approvals.clock import ManualClock
from bot.app import create_app
from bot.keys import INBOX, METRICS
from bot.settings import DingTalkSettings
from handlers.events import CardAction, TextMessage, event_from_dict
from storage.db import Database
from storage.platform_models import InboxRow
from tests.conftest import settings_for
from tests.fake_dingtalk import (
    AES_KEY,
    APP_KEY,
    APP_SECRET,
    EVENT_TOKEN,
    SignedCallback,
    card_tap,
    event_crypto,
    robot_headers,
    robot_message,
    sealed_callback,
)


def dingtalk_settings(mode: str = "http") -> DingTalkSettings:
    return DingTalkSettings(
        app_key=APP_KEY,
        app_secret=APP_SECRET,
        token=EVENT_TOKEN,
        aes_key=AES_KEY,
        mode=mode,
        api_base="http://127.0.0.1:9",
        oapi_base="http://127.0.0.1:9",
    )


@pytest.fixture
async def client(org_db: Database, aiohttp_client: Any, clock: ManualClock) -> Any:
    return await aiohttp_client(create_app(settings_for(org_db, dingtalk=dingtalk_settings()), clock=clock))


def now_ms(clock: ManualClock, delta: timedelta = timedelta(0)) -> int:
    return int((clock.now() + delta).timestamp() * 1000)


async def post(client: Any, path: str, cb: SignedCallback) -> Any:
    return await client.post(f"{path}?{cb.query}", data=cb.body, headers={"Content-Type": "application/json"})


async def inbox_events(db: Database) -> list[Any]:
    async with db.session() as s:
        rows = (await s.execute(select(InboxRow).order_by(InboxRow.id))).scalars().all()  # type: ignore[arg-type]
    return [event_from_dict(dict(r.payload)) for r in rows if r.status != "refused"]


async def assert_success(resp: Any) -> None:
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (
        event_crypto().decrypt_message(body, body["msg_signature"], body["timeStamp"], body["nonce"])
        == "success"
    )


async def test_check_url_is_answered_with_the_encrypted_success(client: Any, clock: ManualClock) -> None:
    cb = sealed_callback({"EventType": "check_url"}, timestamp_ms=now_ms(clock), nonce="n-1")
    resp = await post(client, "/callbacks/dingtalk", cb)
    await assert_success(resp)
    body = await resp.json()
    assert (body["timeStamp"], body["nonce"]) == (cb.timestamp, "n-1")


async def test_a_card_tap_is_stored_once_however_often_it_is_delivered(
    client: Any, clock: ManualClock, org_db: Database
) -> None:
    cb = sealed_callback(
        card_tap("oabot_20261123-abcd1234-1_v1", "010008", "approve"), timestamp_ms=now_ms(clock)
    )
    for _ in range(3):
        await assert_success(await post(client, "/callbacks/dingtalk/card", cb))
    second_tap = sealed_callback(
        card_tap("oabot_20261123-abcd1234-1_v1", "010008", "approve"), timestamp_ms=now_ms(clock)
    )
    await assert_success(await post(client, "/callbacks/dingtalk/card", second_tap))

    events = await inbox_events(org_db)
    assert len(events) == 2 and all(isinstance(e, CardAction) for e in events)
    assert (
        events[0].sender.account == "010008"
        and events[0].task_id == "20261123-abcd1234-1"
        and events[0].version == 1
    )


@pytest.mark.parametrize(
    ("skew", "status"),
    [(timedelta(minutes=59), 200), (timedelta(minutes=61), 403), (-timedelta(minutes=61), 403)],
)
async def test_timestamps_more_than_an_hour_away_are_refused(
    client: Any, clock: ManualClock, org_db: Database, skew: timedelta, status: int
) -> None:
    cb = sealed_callback(card_tap("oabot_r-1_v1", "010008", "approve"), timestamp_ms=now_ms(clock, -skew))
    resp = await post(client, "/callbacks/dingtalk/card", cb)
    assert resp.status == status
    assert len(await inbox_events(org_db)) == (1 if status == 200 else 0)
    headers = robot_headers(now_ms(clock, -skew))
    robot = await client.post(
        "/callbacks/dingtalk/robot", data=json.dumps(robot_message("010008", "待办")), headers=headers
    )
    assert robot.status == status


async def test_an_authentic_callback_about_someone_elses_card_is_acknowledged_and_ignored(
    client: Any, clock: ManualClock, org_db: Database
) -> None:
    data = {"outTrackId": "another-system-42", "userId": "010008", "content": "{}"}
    await assert_success(
        await post(client, "/callbacks/dingtalk/card", sealed_callback(data, timestamp_ms=now_ms(clock)))
    )
    assert await inbox_events(org_db) == []


async def test_robot_text_is_stored_once_and_other_messages_are_skipped(
    client: Any, clock: ManualClock, org_db: Database
) -> None:
    message = robot_message("010008", "帮助")
    for n in range(2):  # one message delivered twice (each delivery signs anew)
        resp = await client.post(
            "/callbacks/dingtalk/robot", data=json.dumps(message), headers=robot_headers(now_ms(clock) - n)
        )
        assert resp.status == 200
    picture = {**robot_message("010008", ""), "msgtype": "picture", "content": {"downloadCode": "x"}}
    resp = await client.post(
        "/callbacks/dingtalk/robot", data=json.dumps(picture), headers=robot_headers(now_ms(clock) - 5)
    )
    assert resp.status == 200
    [event] = await inbox_events(org_db)
    assert isinstance(event, TextMessage) and event.text == "帮助"


async def test_forged_callbacks_get_403_and_unreadable_ones_400(
    client: Any, clock: ManualClock, org_db: Database
) -> None:
    tap = card_tap("oabot_r-1_v1", "010008", "approve")
    forged = await post(
        client,
        "/callbacks/dingtalk/card",
        sealed_callback(tap, timestamp_ms=now_ms(clock), signature="f" * 40),
    )
    foreign = await post(
        client,
        "/callbacks/dingtalk/card",
        sealed_callback(tap, timestamp_ms=now_ms(clock), crypto=event_crypto(owner="x")),
    )
    unreadable = await client.post(
        "/callbacks/dingtalk/card?signature=a&timestamp=1&nonce=n", data=b"\xff\xfe"
    )
    no_encrypt = await client.post("/callbacks/dingtalk", json={"hello": "world"})
    assert [r.status for r in (forged, foreign, unreadable, no_encrypt)] == [403, 403, 400, 400]
    assert await inbox_events(org_db) == []


async def test_stream_mode_has_no_http_callback_routes(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    client = await aiohttp_client(
        create_app(settings_for(org_db, dingtalk=dingtalk_settings("stream")), clock=clock)
    )
    resp = await post(
        client, "/callbacks/dingtalk/card", sealed_callback(card_tap("oabot_r-1_v1", "010008", "approve"))
    )
    assert resp.status == 404


async def post_robot(client: Any, message: dict[str, Any], headers: dict[str, str]) -> Any:
    return await client.post("/callbacks/dingtalk/robot", data=json.dumps(message), headers=headers)


async def refused_rows(db: Database) -> list[InboxRow]:
    async with db.session() as s:
        rows = await s.execute(select(InboxRow).where(InboxRow.status == "refused"))  # type: ignore[arg-type]
        return list(rows.scalars().all())


def refusals(client: Any, reason: str) -> float:
    value = client.app[METRICS].registry.get_sample_value(
        "oabot_callback_refusals_total", {"platform": "dingtalk", "reason": reason}
    )
    return float(value or 0)


async def test_a_robot_header_pair_is_accepted_once_whatever_body_comes_with_it(
    client: Any, clock: ManualClock, org_db: Database
) -> None:
    headers = robot_headers(now_ms(clock))
    first = await post_robot(client, robot_message("010008", "待办"), headers)
    # The captured pair with another body and another sender (the GM, 010001): refused.
    replay = await post_robot(client, robot_message("010001", "代理 u_wu 明天"), headers)
    again = await post_robot(client, robot_message("010008", "待办"), headers)

    assert [first.status, replay.status, again.status] == [200, 403, 403]
    assert (await replay.json())["error"] == "replayed"
    [event] = await inbox_events(org_db)
    assert isinstance(event, TextMessage) and event.sender.account == "010008"
    assert refusals(client, "replayed") == 2


@pytest.mark.parametrize(
    ("skew", "status"),
    [(timedelta(minutes=59), 200), (-timedelta(minutes=4), 200), (-timedelta(minutes=6), 403)],
)
async def test_a_robot_sign_is_good_for_the_documented_hour_and_not_from_the_future(
    client: Any, clock: ManualClock, org_db: Database, skew: timedelta, status: int
) -> None:
    resp = await post_robot(client, robot_message("010008", "待办"), robot_headers(now_ms(clock, -skew)))

    assert resp.status == status
    assert len(await inbox_events(org_db)) == (1 if status == 200 else 0)


async def test_a_robot_message_from_someone_outside_the_directory_is_acked_and_refused(
    client: Any, clock: ManualClock, org_db: Database
) -> None:
    resp = await post_robot(client, robot_message("099999", "待办"), robot_headers(now_ms(clock)))

    assert resp.status == 200 and await resp.json() == {}
    assert await inbox_events(org_db) == []
    [row] = await refused_rows(org_db)
    assert row.payload["reason"] == "unknown_sender" and row.payload["summary"]["senderStaffId"] == "099999"
    assert refusals(client, "unknown_sender") == 1


async def test_a_one_to_one_conversation_speaks_only_for_its_own_member(
    client: Any, clock: ManualClock, org_db: Database
) -> None:
    mine = robot_message("010008", "待办")
    await post_robot(client, mine, robot_headers(now_ms(clock)))
    # The GM (010001) named as sender in 010008's conversation, or with 010008's senderId.
    in_my_chat = {**robot_message("010001", "代理 u_sun 明天"), "conversationId": mine["conversationId"]}
    gm_first = robot_message("010001", "帮助")
    await post_robot(client, gm_first, robot_headers(now_ms(clock, -timedelta(seconds=1))))
    other_id = {**robot_message("010001", "代理 u_sun 明天"), "senderId": mine["senderId"]}
    answers = [
        await post_robot(client, m, robot_headers(now_ms(clock, -timedelta(seconds=n + 2))))
        for n, m in enumerate((in_my_chat, other_id))
    ]

    assert [r.status for r in answers] == [200, 200]
    assert [(e.sender.account, e.text) for e in await inbox_events(org_db)] == [
        ("010008", "待办"),
        ("010001", "帮助"),
    ]
    assert [r.payload["reason"] for r in await refused_rows(org_db)] == ["sender_mismatch"] * 2


@pytest.mark.parametrize(
    "message",
    [
        {**robot_message("010008", "待办"), "msgId": "msg\u0000nul"},
        robot_message("010008", "待\u0000办"),
        {**robot_message("010008", "x"), "msgtype": "richText", "content": {"richText": 5}},
    ],
)
async def test_a_signed_robot_message_no_database_can_hold_is_acked_and_recorded_not_a_dead_row(
    client: Any, clock: ManualClock, org_db: Database, message: dict[str, Any]
) -> None:
    resp = await post_robot(client, message, robot_headers(now_ms(clock)))

    assert resp.status == 200
    assert await client.app[INBOX].drain() == 0
    async with org_db.session() as s:
        statuses = (await s.execute(select(InboxRow.status))).scalars().all()  # type: ignore[call-overload]
    assert "dead" not in statuses and "pending" not in statuses


async def test_a_signed_event_that_is_not_json_is_acked_and_recorded(
    client: Any, clock: ManualClock, org_db: Database
) -> None:
    crypto = event_crypto()
    ts, nonce = str(now_ms(clock)), "n-9"
    sealed = crypto.encrypt_message("not json {", nonce=nonce, timestamp=ts)
    query = f"signature={sealed['msg_signature']}&timestamp={ts}&nonce={nonce}"

    resp = await client.post(
        f"/callbacks/dingtalk/card?{query}", data=json.dumps({"encrypt": sealed["encrypt"]})
    )

    await assert_success(resp)
    [row] = await refused_rows(org_db)
    assert row.payload["reason"] == "malformed_message"
