"""DingTalk delivery: outbox messages become card instances, in-place updates and robot texts,
exactly once per outbox id (on SQLite and PostgreSQL; the DingTalk API is mocked with respx)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import respx

from approvals.clock import ManualClock
from bot.platforms.dingtalk.client import DINGTALK_RETRY, DingTalkClient
from bot.platforms.dingtalk.delivery import DingTalkDelivery
from bot.settings import DingTalkSettings
from notifications.delivery import DeliveryError, OutgoingMessage
from org.model import User
from storage.db import Database
from storage.kv_memory import MemoryStore

API = "https://api.dingtalk.test"
SETTINGS = DingTalkSettings(
    app_key="dingkey", app_secret="secret", api_base=API, mode="stream", card_template_id="tpl.schema"
)
SUN = User(id="u_sun", name="孙丽", department="marketing", accounts={"dingtalk": "010008"})
CARD = {
    "title": "用章申请",
    "subtitle": "签署合作协议",
    "fields": [{"label": "印章", "value": "公章"}],
    "buttons": [
        {"action": "approve", "label": "同意", "style": "primary"},
        {"action": "reject", "label": "驳回", "style": "danger"},
    ],
}


def card_message(outbox_id: int, version: int = 1) -> OutgoingMessage:
    return OutgoingMessage(
        outbox_id,
        "task_card",
        "u_sun",
        "r-1",
        "r-1-1",
        {"task_id": "r-1-1", "version": version, "request_id": "r-1", "card": CARD},
    )


def closed_message(outbox_id: int) -> OutgoingMessage:
    return OutgoingMessage(
        outbox_id,
        "card_closed",
        "u_sun",
        "r-1",
        "r-1-1",
        {"task_id": "r-1-1", "outcome": "已同意 · 孙丽 · 11-23 10:05"},
    )


def text_message(outbox_id: int, text: str = "您的「用章申请」已通过", **extra: str) -> OutgoingMessage:
    return OutgoingMessage(outbox_id, "result", "u_sun", "r-1", None, {"text": text, **extra})


async def no_sleep(_: float) -> None:
    pass


@pytest.fixture
async def delivery(db: Database, clock: ManualClock) -> AsyncIterator[DingTalkDelivery]:
    kv = MemoryStore()
    async with httpx.AsyncClient() as http:
        client = DingTalkClient(http, kv, SETTINGS, retry=replace(DINGTALK_RETRY, sleep=no_sleep))
        yield DingTalkDelivery(client, db, kv, SETTINGS, clock.now)
    await kv.close()


@pytest.fixture
def dingtalk() -> Any:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{API}/v1.0/oauth2/accessToken").mock(
            return_value=httpx.Response(200, json={"accessToken": "tok", "expireIn": 7200})
        )
        mock.post(f"{API}/v1.0/card/instances/createAndDeliver", name="create").mock(
            return_value=httpx.Response(
                200, json={"success": True, "result": {"deliverResults": [{"success": True}]}}
            )
        )
        mock.put(f"{API}/v1.0/card/instances", name="update").mock(
            return_value=httpx.Response(200, json={"success": True})
        )
        mock.post(f"{API}/v1.0/robot/oToMessages/batchSend", name="send").mock(
            return_value=httpx.Response(
                200, json={"processQueryKey": "q", "invalidStaffIdList": [], "flowControlledStaffIdList": []}
            )
        )
        yield mock


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(c.request.content) for c in route.calls]


async def test_a_task_card_handed_over_twice_is_delivered_once(
    delivery: DingTalkDelivery, dingtalk: Any
) -> None:
    await delivery.deliver(card_message(1), SUN)
    await delivery.deliver(card_message(1), SUN)

    [body] = bodies(dingtalk["create"])
    assert body["outTrackId"] == "oabot_r-1-1_v1" and body["cardTemplateId"] == "tpl.schema"
    assert body["openSpaceId"] == "dtv1.card//IM_ROBOT.010008" and body["callbackType"] == "STREAM"
    assert all(isinstance(v, str) for v in body["cardData"]["cardParamMap"].values())


async def test_a_failed_send_is_retried_later_with_the_same_out_track_id(
    delivery: DingTalkDelivery, dingtalk: Any
) -> None:
    dingtalk["create"].side_effect = [httpx.Response(502)] * 4 + [
        httpx.Response(200, json={"success": True, "result": {"deliverResults": [{"success": True}]}})
    ]
    with pytest.raises(DeliveryError) as failed:
        await delivery.deliver(card_message(1), SUN)
    assert failed.value.retryable

    await delivery.deliver(card_message(1), SUN)
    await delivery.deliver(card_message(1), SUN)

    assert {b["outTrackId"] for b in bodies(dingtalk["create"])} == {"oabot_r-1-1_v1"}
    assert dingtalk["create"].call_count == 5


async def test_closing_updates_the_same_card_in_place(delivery: DingTalkDelivery, dingtalk: Any) -> None:
    await delivery.deliver(card_message(1), SUN)
    await delivery.deliver(closed_message(2), SUN)

    [body] = bodies(dingtalk["update"])
    assert body["outTrackId"] == "oabot_r-1-1_v1"
    params = body["cardData"]["cardParamMap"]
    assert (
        params["status"] == "closed"
        and params["outcome"].startswith("已同意")
        and params["show_approve"] == "false"
    )


async def test_closing_a_card_that_never_went_to_dingtalk_does_nothing(
    delivery: DingTalkDelivery, dingtalk: Any
) -> None:
    await delivery.deliver(closed_message(2), SUN)
    assert dingtalk["update"].call_count == 0


async def test_a_card_still_being_delivered_is_closed_later(
    delivery: DingTalkDelivery, dingtalk: Any
) -> None:
    dingtalk["create"].side_effect = [httpx.Response(500)] * 4
    with pytest.raises(DeliveryError):
        await delivery.deliver(card_message(1), SUN)
    with pytest.raises(DeliveryError) as later:
        await delivery.deliver(closed_message(2), SUN)
    assert later.value.retryable and dingtalk["update"].call_count == 0


async def test_a_new_version_of_the_task_is_a_new_card(delivery: DingTalkDelivery, dingtalk: Any) -> None:
    await delivery.deliver(card_message(1, version=1), SUN)
    await delivery.deliver(closed_message(2), SUN)
    await delivery.deliver(card_message(3, version=2), SUN)
    await delivery.deliver(closed_message(4), SUN)

    assert [b["outTrackId"] for b in bodies(dingtalk["create"])] == ["oabot_r-1-1_v1", "oabot_r-1-1_v2"]
    assert [b["outTrackId"] for b in bodies(dingtalk["update"])] == ["oabot_r-1-1_v1", "oabot_r-1-1_v2"]


async def test_a_text_goes_out_once_per_outbox_id_as_a_robot_message(
    delivery: DingTalkDelivery, dingtalk: Any
) -> None:
    await delivery.deliver(text_message(7), SUN)
    await delivery.deliver(text_message(7), SUN)
    await delivery.deliver(text_message(8, "第二条"), SUN)

    sent = bodies(dingtalk["send"])
    assert [json.loads(b["msgParam"])["content"] for b in sent] == ["您的「用章申请」已通过", "第二条"]
    assert (
        sent[0]["userIds"] == ["010008"]
        and sent[0]["msgKey"] == "sampleText"
        and sent[0]["robotCode"] == "dingkey"
    )


async def test_an_invalid_staff_id_is_not_retried(delivery: DingTalkDelivery, dingtalk: Any) -> None:
    dingtalk["send"].return_value = httpx.Response(
        200, json={"processQueryKey": "q", "invalidStaffIdList": ["010008"]}
    )
    with pytest.raises(DeliveryError) as failed:
        await delivery.deliver(text_message(9), SUN)
    assert not failed.value.retryable


async def test_someone_outside_the_directory_gets_at_most_one_reply_per_ten_minutes(
    delivery: DingTalkDelivery, dingtalk: Any
) -> None:
    stranger = User(
        id="@dingtalk:099999", name="099999", department="", accounts={"dingtalk": "099999"}, active=False
    )
    for outbox_id in (20, 20, 21, 22):
        await delivery.deliver(
            text_message(outbox_id, "不在通讯录", platform="dingtalk", account="099999"), stranger
        )
    assert len(bodies(dingtalk["send"])) == 1


def test_reaches_only_people_with_a_dingtalk_account(delivery: DingTalkDelivery) -> None:
    assert delivery.reaches(SUN)
    assert not delivery.reaches(User(id="u_x", name="X", department="d", accounts={"wecom": "x"}))
