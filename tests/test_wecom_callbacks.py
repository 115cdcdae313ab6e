"""The /callbacks/wecom routes in process (pytest-aiohttp on `create_app`), with callbacks
sealed by wechatpy and the WeCom API mocked by respx: verification first, then the durable inbox,
then an empty 200; the inbox worker and the outbox dispatcher are driven by hand."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import func, select

from approvals.clock import ManualClock
from bot.app import create_app
from bot.keys import DISPATCHER, INBOX, METRICS
from bot.platforms.wecom import card_refs
from bot.settings import WeComSettings
from storage.db import Database
from storage.platform_models import InboxRow
from tests.conftest import settings_for
from tests.fake_wecom import WeComCallbacks

BASE = "https://qyapi.example.test"
WECOM = WeComSettings(
    corp_id="ww0123456789abcdef",
    agent_id=1000002,
    secret="s",
    token="cbtoken",
    aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    api_base=BASE,
)
HEADERS = {"Authorization": "Bearer test-token-0123456789"}
SEAL = {
    "seal": "公章",
    "reason": "签署合作协议",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["合作协议.pdf"],
    "copies": 2,
    "take_out": False,
}


class WeComApi:
    def __init__(self, mock: respx.MockRouter) -> None:
        mock.get(f"{BASE}/cgi-bin/gettoken").mock(
            return_value=httpx.Response(200, json={"errcode": 0, "access_token": "tok", "expires_in": 7200})
        )
        self.n = 0
        self.send = mock.post(f"{BASE}/cgi-bin/message/send").mock(side_effect=self._send)
        self.update = mock.post(f"{BASE}/cgi-bin/message/update_template_card").mock(
            return_value=httpx.Response(200, json={"errcode": 0})
        )

    def _send(self, request: httpx.Request) -> httpx.Response:
        self.n += 1
        return httpx.Response(
            200,
            json={
                "errcode": 0,
                "invaliduser": "",
                "msgid": f"m{self.n}",
                "response_code": f"rc-send-{self.n}",
            },
        )

    def sent(self) -> list[dict[str, Any]]:
        return [json.loads(c.request.content) for c in self.send.calls]


@pytest.fixture
def wecom_api() -> Iterator[WeComApi]:
    # The aiohttp test client is not httpx, so only outbound WeCom calls are intercepted.
    with respx.mock(assert_all_called=False) as mock:
        yield WeComApi(mock)


@pytest.fixture
async def app_client(org_db: Database, aiohttp_client: Any, clock: ManualClock) -> Any:
    app = create_app(settings_for(org_db, wecom=WECOM), clock=clock)
    return await aiohttp_client(app)


@pytest.fixture
def cb(clock: ManualClock) -> WeComCallbacks:
    return WeComCallbacks(
        WECOM.token, WECOM.aes_key, WECOM.corp_id, WECOM.agent_id, now=lambda: clock.now().timestamp()
    )


async def post(client: Any, query: dict[str, str], body: bytes | Any) -> Any:
    return await client.post("/callbacks/wecom", params=query, data=body)


async def inbox_rows(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(InboxRow))).scalar_one())


async def run_workers(client: Any) -> None:
    for _ in range(3):
        await client.app[INBOX].drain()
        await client.app[DISPATCHER].drain()


async def test_url_verification_returns_the_plaintext(app_client: Any, cb: WeComCallbacks) -> None:
    resp = await app_client.get("/callbacks/wecom", params=cb.echostr("echo-123"))

    assert resp.status == 200 and await resp.text() == "echo-123"


async def test_a_message_delivered_three_times_is_stored_once_and_answered_empty(
    app_client: Any, org_db: Database, cb: WeComCallbacks, wecom_api: WeComApi
) -> None:
    query, body = cb.seal(cb.text_xml("wangfang", "帮助", 1234))

    answers = [await post(app_client, query, body) for _ in range(3)]

    assert [(r.status, await r.read()) for r in answers] == [(200, b"")] * 3
    assert await inbox_rows(org_db) == 1
    await run_workers(app_client)
    [reply] = wecom_api.sent()
    assert reply["touser"] == "wangfang" and reply["text"]["content"].startswith("可用命令")


async def test_a_tap_acts_and_the_card_is_updated_with_the_clicks_code(
    app_client: Any, org_db: Database, cb: WeComCallbacks, wecom_api: WeComApi
) -> None:
    resp = await app_client.post(
        "/api/v1/requests", json={"template": "seal_use", "initiator": "u_wu", "form": SEAL}, headers=HEADERS
    )
    assert resp.status == 201
    await run_workers(app_client)
    [card] = [b for b in wecom_api.sent() if b["msgtype"] == "template_card"]
    assert card["touser"] == "sunli"

    query, body = cb.seal(
        cb.card_click_xml("sunli", card["template_card"]["task_id"], "approve", "rc-click-1")
    )
    assert (await post(app_client, query, body)).status == 200
    async with org_db.session() as s:
        ref = await card_refs.card_ref(
            s, task_id=card["template_card"]["task_id"].split("_")[1], user_id="u_sun"
        )
    assert ref is not None and ref.handle == "rc-click-1"  # stored before the inbox even ran
    await run_workers(app_client)

    [update] = [json.loads(c.request.content) for c in wecom_api.update.calls]
    assert update["response_code"] == "rc-click-1"
    assert update["template_card"]["sub_title_text"].endswith("处理结果：已同意 · 孙丽 · 11-23 10:00")
    assert [b["touser"] for b in wecom_api.sent() if b["msgtype"] == "template_card"] == ["sunli", "wangfang"]


async def test_a_click_claiming_someone_elses_card_leaves_its_code_alone(
    app_client: Any, org_db: Database, cb: WeComCallbacks, wecom_api: WeComApi
) -> None:
    await app_client.post(
        "/api/v1/requests", json={"template": "seal_use", "initiator": "u_wu", "form": SEAL}, headers=HEADERS
    )
    await run_workers(app_client)
    [card] = [b for b in wecom_api.sent() if b["msgtype"] == "template_card"]
    task_id = card["template_card"]["task_id"].split("_")[1]

    query, body = cb.seal(cb.card_click_xml("lina", card["template_card"]["task_id"], "approve", "rc-lina"))
    assert (await post(app_client, query, body)).status == 200
    await run_workers(app_client)

    async with org_db.session() as s:
        ref = await card_refs.card_ref(s, task_id=task_id, user_id="u_sun")
    assert ref is not None and ref.handle == "rc-send-1" and not ref.handle_used
    assert wecom_api.update.call_count == 0
    assert any("不是由您处理" in b["text"]["content"] for b in wecom_api.sent() if b["touser"] == "lina")


async def test_bad_callbacks_get_4xx_a_log_line_and_change_nothing(
    app_client: Any, org_db: Database, cb: WeComCallbacks, caplog: pytest.LogCaptureFixture
) -> None:
    query, body = cb.seal(cb.text_xml("wangfang", "待办", 99))
    other = WeComCallbacks(WECOM.token, WECOM.aes_key, "wwSomebodyElse", WECOM.agent_id, now=cb.now)
    cases = [
        ({**query, "msg_signature": "f" * 40}, body, 403, "bad_signature"),
        ({**query, "nonce": "changed"}, body, 403, "bad_signature"),
        (*other.seal(cb.text_xml("wangfang", "待办", 100)), 403, "wrong_receiver"),
        ({k: v for k, v in query.items() if k != "msg_signature"}, body, 400, "missing_parameters"),
        (query, b"not xml at all", 400, "malformed_xml"),
        (query, b"<xml><ToUserName>x</ToUserName></xml>", 400, "malformed_xml"),
        (query, b"<xml><Encrypt>" + b"B" * (64 * 1024) + b"</Encrypt></xml>", 413, "payload_too_large"),
    ]

    with caplog.at_level(logging.WARNING, logger="bot.platforms.wecom.callbacks"):
        for q, b, status, code in cases:
            resp = await post(app_client, q, b)
            assert (resp.status, (await resp.json())["error"]) == (status, code)

    assert await inbox_rows(org_db) == 0
    assert len([r for r in caplog.records if "wecom callback refused" in r.getMessage()]) == len(cases)


async def test_an_oversized_chunked_body_is_refused_before_it_is_all_read(
    app_client: Any, org_db: Database, cb: WeComCallbacks
) -> None:
    query, _ = cb.seal(cb.text_xml("wangfang", "待办", 7))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the size is known only by reading
        for _ in range(64):
            yield b"A" * (16 * 1024)

    resp = await post(app_client, query, chunks())

    assert resp.status == 413
    assert await inbox_rows(org_db) == 0


async def test_kinds_oabot_does_not_handle_are_acknowledged_and_ignored(
    app_client: Any, org_db: Database, cb: WeComCallbacks
) -> None:
    image = "<xml><ToUserName>c</ToUserName><FromUserName>wangfang</FromUserName><CreateTime>1</CreateTime><MsgType>image</MsgType><MsgId>5</MsgId></xml>"
    query, body = cb.seal(image)

    resp = await post(app_client, query, body)

    assert resp.status == 200 and await resp.read() == b""
    assert await inbox_rows(org_db) == 0


async def refused_rows(db: Database) -> list[InboxRow]:
    async with db.session() as s:
        rows = await s.execute(select(InboxRow).where(InboxRow.status == "refused"))  # type: ignore[arg-type]
        return list(rows.scalars().all())


def refusal_count(client: Any, reason: str) -> float:
    value = client.app[METRICS].registry.get_sample_value(
        "oabot_callback_refusals_total", {"platform": "wecom", "reason": reason}
    )
    return float(value or 0)


async def test_a_signed_message_with_an_impossible_create_time_is_acked_refused_and_recorded(
    app_client: Any, org_db: Database, cb: WeComCallbacks
) -> None:
    xml = cb.text_xml("wangfang", "待办", 4321)
    bad = xml.replace(xml[xml.index("<CreateTime>") : xml.index("</CreateTime>")], "<CreateTime>" + "9" * 20)
    query, body = cb.seal(bad)

    resps = [await post(app_client, query, body) for _ in range(2)]  # WeCom's retry changes nothing

    assert [(r.status, await r.read()) for r in resps] == [(200, b"")] * 2
    [row] = await refused_rows(org_db)
    assert row.platform == "wecom" and "CreateTime" in (row.last_error or "")
    assert await inbox_rows(org_db) == 1  # the refusal only; nothing to process
    assert await app_client.app[INBOX].drain() == 0
    assert refusal_count(app_client, "malformed_message") == 2


@pytest.mark.parametrize(
    ("kind", "age_s", "status"),
    [
        ("message", 299, 200),
        ("message", 301, 403),
        ("message", -301, 403),
        ("event", 899, 200),
        ("event", 901, 403),
        ("message", 9 * 365 * 86400, 403),  # a correctly signed message from 2017
    ],
)
async def test_a_callback_signed_outside_its_window_is_refused(
    app_client: Any,
    org_db: Database,
    cb: WeComCallbacks,
    clock: ManualClock,
    kind: str,
    age_s: int,
    status: int,
) -> None:
    inner = (
        cb.text_xml("wangfang", "待办", 77)
        if kind == "message"
        else cb.location_event_xml("wangfang", 31.2, 121.4, 30.0)
    )
    query, body = cb.seal(inner, timestamp=int(clock.now().timestamp()) - age_s)

    resp = await post(app_client, query, body)

    assert resp.status == status
    if status == 403:
        assert (await resp.json())["error"] == "stale"
        assert refusal_count(app_client, "stale") == 1
    assert await inbox_rows(org_db) == (1 if status == 200 else 0)


async def test_the_windows_are_settings(org_db: Database, aiohttp_client: Any, clock: ManualClock) -> None:
    strict = WECOM.model_copy(update={"message_max_age_s": 60})
    client = await aiohttp_client(create_app(settings_for(org_db, wecom=strict), clock=clock))
    cb = WeComCallbacks(
        WECOM.token, WECOM.aes_key, WECOM.corp_id, WECOM.agent_id, now=lambda: clock.now().timestamp()
    )

    query, body = cb.seal(cb.text_xml("wangfang", "待办", 78), timestamp=int(clock.now().timestamp()) - 120)

    assert (await post(client, query, body)).status == 403
