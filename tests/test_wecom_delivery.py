"""WeComDelivery against respx and a real database: cards, card closing through
update_template_card with the stored response code, the text fallback, and idempotency per
outbox id (a re-handed outbox row is not sent twice)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from bot.platforms.wecom import card_refs
from bot.platforms.wecom.cards import card_task_id
from bot.platforms.wecom.client import WECOM_RETRY, WeComClient
from bot.platforms.wecom.delivery import WeComDelivery
from bot.settings import WeComSettings
from notifications.delivery import DeliveryError, OutgoingMessage
from org.model import User
from storage.db import Database
from storage.kv_memory import MemoryStore

BASE = "https://qyapi.example.test"
SETTINGS = WeComSettings(
    corp_id="ww1", agent_id=1000002, secret="s", token="t", aes_key="a" * 43, api_base=BASE
)
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
WANG = User(id="u_wang", name="王芳", department="admin_service", accounts={"wecom": "wangfang"})
TASK = "20261123-3f9a1c2b-1"
CARD = {
    "title": "派车申请",
    "urgency": "一般",
    "subtitle": "浦东项目现场 派车",
    "initiator": "吴昊",
    "step": "行政服务部经理审批",
    "fields": [{"label": "目的地", "value": "浦东项目现场"}],
    "deadline": "11-23 14:00",
    "waiting": "吴昊 于 11-23 10:00 提交，等待您处理",
    "buttons": [
        {"action": "approve", "label": "同意", "style": "primary"},
        {"action": "reject", "label": "驳回", "style": "danger"},
    ],
    "link": "http://oabot.test/console/requests/20261123-3f9a1c2b",
}


def card_message(outbox_id: int = 1, version: int = 1) -> OutgoingMessage:
    payload = {
        "request_id": "20261123-3f9a1c2b",
        "task_id": TASK,
        "version": version,
        "title": "浦东项目现场 派车",
        "card": CARD,
    }
    return OutgoingMessage(outbox_id, "task_card", "u_wang", "20261123-3f9a1c2b", TASK, payload)


def closed_message(outbox_id: int = 2, outcome: str = "已同意 · 王芳 · 11-23 10:42") -> OutgoingMessage:
    payload = {
        "request_id": "20261123-3f9a1c2b",
        "task_id": TASK,
        "title": "浦东项目现场 派车",
        "outcome": outcome,
    }
    return OutgoingMessage(outbox_id, "card_closed", "u_wang", "20261123-3f9a1c2b", TASK, payload)


def text_message(outbox_id: int = 3, text: str = "您的「派车申请」已通过") -> OutgoingMessage:
    return OutgoingMessage(outbox_id, "result", "u_wang", "20261123-3f9a1c2b", None, {"text": text})


class Api:
    """respx routes standing in for WeCom, with the bodies they received."""

    def __init__(self, mock: respx.MockRouter) -> None:
        mock.get(f"{BASE}/cgi-bin/gettoken").mock(
            return_value=httpx.Response(200, json={"errcode": 0, "access_token": "tok", "expires_in": 7200})
        )
        self.send = mock.post(f"{BASE}/cgi-bin/message/send").mock(side_effect=self._sent)
        self.update = mock.post(f"{BASE}/cgi-bin/message/update_template_card").mock(
            return_value=httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})
        )
        self.codes = 0

    def _sent(self, request: httpx.Request) -> httpx.Response:
        self.codes += 1
        return httpx.Response(
            200,
            json={
                "errcode": 0,
                "errmsg": "ok",
                "invaliduser": "",
                "msgid": "m",
                "response_code": f"rc-send-{self.codes}",
            },
        )

    def bodies(self, route: respx.Route) -> list[dict[str, Any]]:
        return [json.loads(c.request.content) for c in route.calls]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def api() -> Iterator[Api]:
    with respx.mock(assert_all_called=False) as mock:
        yield Api(mock)


def delivery_for(db: Database, http: httpx.AsyncClient, kv: MemoryStore | None = None) -> WeComDelivery:
    store = kv or MemoryStore()

    async def no_sleep(_: float) -> None:
        return None

    return WeComDelivery(
        WeComClient(http, SETTINGS, store, retry=replace(WECOM_RETRY, sleep=no_sleep)), db, store, lambda: NOW
    )


async def stored_ref(db: Database) -> Any:
    async with db.session() as s:
        return await card_refs.card_ref(s, task_id=TASK, user_id="u_wang")


async def test_reaches_only_people_with_a_wecom_account(db: Database, http: httpx.AsyncClient) -> None:
    delivery = delivery_for(db, http)
    assert delivery.reaches(WANG)
    assert not delivery.reaches(User(id="u_x", name="x", department="d", accounts={"dingtalk": "01"}))


async def test_task_card_is_sent_and_where_it_went_is_kept(
    db: Database, http: httpx.AsyncClient, api: Api
) -> None:
    await delivery_for(db, http).deliver(card_message(), WANG)

    [body] = api.bodies(api.send)
    assert body["touser"] == "wangfang" and body["msgtype"] == "template_card" and body["agentid"] == 1000002
    assert body["template_card"]["task_id"] == card_task_id(TASK, 1, "u_wang")
    ref = await stored_ref(db)
    assert (ref.account, ref.card_id, ref.handle, ref.handle_used) == (
        "wangfang",
        card_task_id(TASK, 1, "u_wang"),
        "rc-send-1",
        False,
    )


async def test_a_re_handed_card_is_not_sent_twice_even_without_the_kv_marker(
    db: Database, http: httpx.AsyncClient, api: Api
) -> None:
    await delivery_for(db, http).deliver(card_message(), WANG)
    await delivery_for(db, http).deliver(
        card_message(), WANG
    )  # a fresh key-value store: only the database remembers

    assert api.send.call_count == 1


async def test_a_new_version_of_the_card_is_sent_and_replaces_the_old_one(
    db: Database, http: httpx.AsyncClient, api: Api
) -> None:
    delivery = delivery_for(db, http)
    await delivery.deliver(card_message(1, version=1), WANG)
    await delivery.deliver(card_message(5, version=3), WANG)

    assert api.send.call_count == 2
    ref = await stored_ref(db)
    assert ref.card_id == card_task_id(TASK, 3, "u_wang") and ref.handle == "rc-send-2"


async def test_card_closed_updates_the_card_with_the_latest_code_once(
    db: Database, http: httpx.AsyncClient, api: Api
) -> None:
    delivery = delivery_for(db, http)
    await delivery.deliver(card_message(), WANG)
    async with db.transaction() as s:  # the click's fresh code, as the callback stores it
        await card_refs.record_click(
            s,
            card_id=card_task_id(TASK, 1, "u_wang"),
            account="wangfang",
            response_code="rc-click-9",
            now=NOW,
        )

    await delivery.deliver(closed_message(), WANG)
    await delivery.deliver(closed_message(), WANG)  # handed over again

    assert api.bodies(api.update) == [
        {
            "userids": ["wangfang"],
            "agentid": 1000002,
            "response_code": "rc-click-9",
            "button": {"replace_name": "已同意 · 王芳 · 11-23 10:42"},
        }
    ]
    assert (await stored_ref(db)).handle_used is True
    assert api.send.call_count == 1


async def test_a_refused_update_falls_back_to_a_text(db: Database, http: httpx.AsyncClient, api: Api) -> None:
    delivery = delivery_for(db, http)
    await delivery.deliver(card_message(), WANG)
    api.update.mock(
        return_value=httpx.Response(200, json={"errcode": 40058, "errmsg": "invalid response_code"})
    )

    await delivery.deliver(closed_message(outcome="申请已撤销"), WANG)

    texts = [b for b in api.bodies(api.send) if b["msgtype"] == "text"]
    assert [t["text"]["content"] for t in texts] == ["审批「浦东项目现场 派车」申请已撤销"]
    assert (await stored_ref(db)).handle_used is True


async def test_a_spent_code_goes_straight_to_the_text(
    db: Database, http: httpx.AsyncClient, api: Api
) -> None:
    delivery = delivery_for(db, http)
    await delivery.deliver(card_message(), WANG)
    await delivery.deliver(closed_message(2), WANG)
    await delivery.deliver(closed_message(3, outcome="申请已终止"), WANG)

    assert api.update.call_count == 1
    assert [b["text"]["content"] for b in api.bodies(api.send) if b["msgtype"] == "text"] == [
        "审批「浦东项目现场 派车」申请已终止"
    ]


async def test_a_busy_platform_during_the_update_is_retried_later_not_replaced_by_text(
    db: Database, http: httpx.AsyncClient, api: Api
) -> None:
    delivery = delivery_for(db, http)
    await delivery.deliver(card_message(), WANG)
    api.update.mock(return_value=httpx.Response(503))

    with pytest.raises(DeliveryError) as err:
        await delivery.deliver(closed_message(), WANG)

    assert err.value.retryable
    assert (await stored_ref(db)).handle_used is False
    assert api.send.call_count == 1


async def test_closing_a_card_that_never_went_to_wecom_sends_nothing(
    db: Database, http: httpx.AsyncClient, api: Api
) -> None:
    await delivery_for(db, http).deliver(closed_message(), WANG)
    assert api.send.call_count == 0 and api.update.call_count == 0


async def test_texts_are_sent_once_per_outbox_id(db: Database, http: httpx.AsyncClient, api: Api) -> None:
    kv = MemoryStore()
    delivery = delivery_for(db, http, kv)
    await delivery.deliver(text_message(), WANG)
    await delivery.deliver(text_message(), WANG)
    await delivery.deliver(text_message(4, "第二条"), WANG)

    assert [b["text"]["content"] for b in api.bodies(api.send)] == ["您的「派车申请」已通过", "第二条"]
    assert all(b["touser"] == "wangfang" and b["agentid"] == 1000002 for b in api.bodies(api.send))


async def test_an_account_wecom_does_not_know_is_a_permanent_failure(
    db: Database, http: httpx.AsyncClient, api: Api
) -> None:
    api.send.mock(
        return_value=httpx.Response(200, json={"errcode": 0, "errmsg": "ok", "invaliduser": "wangfang"})
    )

    with pytest.raises(DeliveryError) as err:
        await delivery_for(db, http).deliver(text_message(), WANG)

    assert not err.value.retryable


async def test_replies_to_an_account_outside_the_directory_are_throttled(
    db: Database, http: httpx.AsyncClient, api: Api
) -> None:
    guest = User(
        id="@wecom:visitor", name="visitor", department="", accounts={"wecom": "visitor"}, active=False
    )
    delivery = delivery_for(db, http)

    def reply(outbox_id: int) -> OutgoingMessage:
        payload = {"text": "不在通讯录", "platform": "wecom", "account": "visitor"}
        return OutgoingMessage(outbox_id, "text", "@wecom:visitor", None, None, payload)

    await delivery.deliver(reply(10), guest)
    await delivery.deliver(reply(11), guest)  # a second click a moment later

    assert [b["touser"] for b in api.bodies(api.send)] == ["visitor"]


async def test_a_card_sent_before_a_crash_counts_as_delivered_and_is_still_closed(
    db: Database, http: httpx.AsyncClient, api: Api
) -> None:
    """kill -9 after WeCom took the card, before anything was recorded: the resend is refused with
    40099 (task_id exists). That is delivered, not dead, and the reference written before the
    send lets the decision close the card with the code the click brought."""
    api.send.mock(side_effect=httpx.ConnectError("killed mid-send"))
    with pytest.raises(DeliveryError):
        await delivery_for(db, http).deliver(card_message(), WANG)
    ref = await stored_ref(db)
    assert (ref.card_id, ref.handle) == (card_task_id(TASK, 1, "u_wang"), ""), "recorded before sending"

    api.send.mock(
        side_effect=None,
        return_value=httpx.Response(200, json={"errcode": 40099, "errmsg": "task_id exists"}),
    )
    await delivery_for(db, http).deliver(card_message(), WANG)  # no DeliveryError: delivered
    async with db.transaction() as s:
        await card_refs.record_click(
            s, card_id=ref.card_id, account="wangfang", response_code="rc-click-1", now=NOW
        )
    await delivery_for(db, http).deliver(closed_message(), WANG)

    assert [b["response_code"] for b in api.bodies(api.update)] == ["rc-click-1"]


async def test_notices_ask_wecom_to_drop_a_duplicate_but_chat_answers_do_not(
    db: Database, http: httpx.AsyncClient, api: Api
) -> None:
    delivery = delivery_for(db, http)
    await delivery.deliver(text_message(), WANG)
    await delivery.deliver(replace(text_message(7, "待办：无"), kind="text"), WANG)

    notice, answer = api.bodies(api.send)
    assert (notice["enable_duplicate_check"], notice["duplicate_check_interval"]) == (1, 1800)
    assert "enable_duplicate_check" not in answer


async def test_a_frequency_limit_answer_is_a_throttled_failure(
    db: Database, http: httpx.AsyncClient, api: Api
) -> None:
    api.send.mock(
        side_effect=None,
        return_value=httpx.Response(200, json={"errcode": 45033, "errmsg": "api concurrent out of limit"}),
    )
    with pytest.raises(DeliveryError) as raised:
        await delivery_for(db, http).deliver(text_message(), WANG)
    assert raised.value.retryable and raised.value.throttled_for_s == 60.0
