"""WeCom end to end: the real `oabot serve` process against a fake WeCom API on 127.0.0.1.

Requests are submitted through the REST API as 吴昊 (u_wu); every approver acts by tapping the
card WeCom showed them, i.e. a template_card_event POSTed to /callbacks/wecom, built and encrypted
with wechatpy (not with oabot's crypto). The fake records what oabot sent: cards to each account,
card updates with the click's response code, texts. Runs on SQLite, and on PostgreSQL (with Redis
as the key-value store when configured) when OABOT_TEST_DATABASE_URL is set.

Demo accounts: u_sun→sunli, u_wang→wangfang, u_li→lina, u_zhang→zhangwei, u_chen→chenjing,
u_wu→wuhao, u_liu→liuqiang.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import func, select

from bot.app import open_database
from handlers.chat import NOT_IN_DIRECTORY
from storage.kv_redis import RedisStore
from storage.platform_models import InboxRow
from tests.conftest import PG_URL, REDIS_URL, create_pg_schema, drop_pg_schema
from tests.e2e_harness import ServerProcess, base_env, wait_until
from tests.fake_wecom import FakeWeCom, WeComCallbacks

CORP_ID = "ww0e2e0123456789ab"
AGENT_ID = 1000002
SECRET = "fake-app-secret"
TOKEN = "e2eCallbackToken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
API_TOKEN = "e2e-token-0123456789"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}

SEAL = {
    "seal": "公章",
    "reason": "签署合作协议",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["合作协议.pdf", "授权委托书.pdf"],
    "copies": 2,
    "take_out": False,
}
VEHICLE = {
    "destination": "浦东项目现场",
    "depart_at": "2026-11-24T09:00:00+08:00",
    "return_at": "2026-11-24T17:00:00+08:00",
    "passengers": 3,
    "reason": "现场勘查",
}


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """Environment for the server's database (and, with PostgreSQL, Redis when configured)."""
    if request.param == "sqlite":
        yield {"OABOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/e2e.db"}
        return
    if PG_URL is None:
        pytest.skip("OABOT_TEST_DATABASE_URL is not set")
    schema = await create_pg_schema(PG_URL)
    env = {"OABOT_DATABASE_URL": f"{PG_URL}?options=-csearch_path%3D{schema}"}
    prefix = f"oabot-e2e:{uuid.uuid4().hex[:12]}:"
    if REDIS_URL:
        env.update(OABOT_REDIS_URL=REDIS_URL, OABOT_REDIS_PREFIX=prefix)
    try:
        yield env
    finally:
        await drop_pg_schema(PG_URL, schema)
        if REDIS_URL:
            store = RedisStore(REDIS_URL, prefix=prefix)
            await store.purge_prefix()
            await store.close()


@pytest.fixture
async def wecom() -> AsyncIterator[FakeWeCom]:
    fake = await FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID).start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def server(stores: dict[str, str], wecom: FakeWeCom, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = base_env(
        stores["OABOT_DATABASE_URL"],
        **stores,
        OABOT_WECOM_CORP_ID=CORP_ID,
        OABOT_WECOM_AGENT_ID=str(AGENT_ID),
        OABOT_WECOM_SECRET=SECRET,
        OABOT_WECOM_TOKEN=TOKEN,
        OABOT_WECOM_AES_KEY=AES_KEY,
        OABOT_WECOM_API_BASE=wecom.base_url,
    )
    async with ServerProcess(env, tmp_path) as proc:
        yield proc


@pytest.fixture
def callbacks() -> WeComCallbacks:
    return WeComCallbacks(TOKEN, AES_KEY, CORP_ID, AGENT_ID)


class Phone:
    """What a person does in WeCom: tap a card, send a message. Talks to the real server."""

    def __init__(
        self, server: ServerProcess, wecom: FakeWeCom, callbacks: WeComCallbacks, stores: dict[str, str]
    ) -> None:
        self.server, self.wecom, self.cb = server, wecom, callbacks
        self.url = f"{server.base_url}/callbacks/wecom"
        self.db_url = stores["OABOT_DATABASE_URL"]
        self.acks: list[float] = []
        self._msg_ids = iter(range(7_000_000_000_000_000_000, 8_000_000_000_000_000_000))

    async def post(self, query: dict[str, str], body: bytes, times: int = 1) -> list[httpx.Response]:
        out = []
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(times):
                started = time.perf_counter()
                out.append(
                    await http.post(
                        self.url, params=query, content=body, headers={"Content-Type": "text/xml"}
                    )
                )
                self.acks.append(time.perf_counter() - started)
        return out

    async def deliver(self, inner_xml: str, times: int = 3) -> None:
        """WeCom's delivery of one callback, repeated `times` times (its retries)."""
        query, body = self.cb.seal(inner_xml)
        for resp in await self.post(query, body, times):
            assert resp.status_code == 200 and resp.content == b"", (resp.status_code, resp.text)

    async def card(self, account: str, request_id: str, index: int = 0) -> dict[str, Any]:
        """The `index`-th card `account` got for `request_id`, once it has arrived."""

        def found() -> list[dict[str, Any]]:
            return [
                c["template_card"]
                for c in self.wecom.cards_to(account)
                if c["template_card"]["task_id"].startswith(f"oa_{request_id}-")
            ]

        cards = await wait_until(lambda: len(found()) > index and found())
        return cards[index]

    async def tap(self, account: str, card: dict[str, Any], key: str = "approve", times: int = 3) -> str:
        """Tap a button; WeCom delivers the event `times` times. Returns the click's response code."""
        code = self.wecom.click_code()
        await self.deliver(self.cb.card_click_xml(account, card["task_id"], key, code), times)
        return code

    async def say(self, account: str, text: str, times: int = 1) -> None:
        await self.deliver(self.cb.text_xml(account, text, next(self._msg_ids)), times)

    async def update_for(self, code: str) -> dict[str, Any]:
        updates = await wait_until(lambda: [u for u in self.wecom.updates if u["response_code"] == code])
        assert len(updates) == 1
        return updates[0]

    async def text_to(self, account: str, needle: str) -> str:
        texts = await wait_until(lambda: [t for t in self.wecom.texts_to(account) if needle in t])
        return str(texts[0])

    async def inbox_size(self) -> int:
        db = open_database(self.db_url)
        try:
            async with db.session() as s:
                q = select(func.count()).select_from(InboxRow).where(InboxRow.status != "refused")  # type: ignore[arg-type]
                return int((await s.execute(q)).scalar_one())
        finally:
            await db.dispose()


@pytest.fixture
def phone(
    server: ServerProcess, wecom: FakeWeCom, callbacks: WeComCallbacks, stores: dict[str, str]
) -> Phone:
    return Phone(server, wecom, callbacks, stores)


# -- REST helpers -----------------------------------------------------------------------------
async def submit(server: ServerProcess, template: str, form: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            f"{server.base_url}/api/v1/requests",
            json={"template": template, "initiator": "u_wu", "form": form},
            headers=AUTH,
        )
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def fetch(server: ServerProcess, request_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(f"{server.base_url}/api/v1/requests/{request_id}", headers=AUTH)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def decisions(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["kind"], e["actor"]) for e in view["trail"] if e["kind"] in ("approved", "rejected")]


async def settled(server: ServerProcess, request_id: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        view = await fetch(server, request_id)
        return view if view["status"] == status else None

    return dict(await wait_until(check))


# == URL verification =========================================================================
async def test_url_verification_answers_the_echostr_plaintext(
    server: ServerProcess, callbacks: WeComCallbacks
) -> None:
    query = callbacks.echostr("1616140317555161061")
    async with httpx.AsyncClient(timeout=10) as http:
        ok = await http.get(f"{server.base_url}/callbacks/wecom", params=query)
        forged = await http.get(
            f"{server.base_url}/callbacks/wecom", params={**query, "msg_signature": "0" * 40}
        )
        missing = await http.get(f"{server.base_url}/callbacks/wecom", params={"echostr": query["echostr"]})

    assert ok.status_code == 200 and ok.text == "1616140317555161061"
    assert ok.headers["Content-Type"].startswith("text/plain")
    assert forged.status_code == 403 and forged.json()["error"] == "bad_signature"
    assert missing.status_code == 400


# == full flows ================================================================================
async def test_seal_use_runs_through_wecom_cards_and_taps(
    server: ServerProcess, phone: Phone, wecom: FakeWeCom
) -> None:
    req = await submit(server, "seal_use", SEAL)
    chain = [
        ("sunli", "孙丽", "已同意"),
        ("wangfang", "王芳", "已同意"),
        ("lina", "李娜", "已同意"),
        ("zhangwei", "张伟", "已同意"),
        ("chenjing", "陈静", "已交付"),
    ]

    for account, name, label in chain:
        card = await phone.card(account, req["id"])
        assert card["card_type"] == "button_interaction"
        assert card["main_title"]["title"] == "用章申请·一般"
        assert card["main_title"]["desc"].startswith("吴昊 提交")
        assert {"keyname": "印章名称", "value": "公章"} in card["horizontal_content_list"]
        assert any(h["keyname"] == "截止" for h in card["horizontal_content_list"])
        assert "等待您处理" in card["sub_title_text"]
        first = card["button_list"][0]
        assert first["key"] == "approve" and first["text"] == ("已交付" if account == "chenjing" else "同意")
        more = card["button_list"][-1]
        assert more["type"] == 1 and more["text"] == "更多操作"
        assert more["url"].startswith(f"{server.base_url}/m/l/") and card["card_action"]["url"] == more["url"]
        code = await phone.tap(
            account, card, "approve", times=3
        )  # WeCom's retries: one tap, three deliveries
        update = await phone.update_for(code)
        assert update["userids"] == [account] and update["agentid"] == AGENT_ID
        decided = update["template_card"]
        assert decided["card_type"] == "text_notice" and "button_list" not in decided
        assert f"{label} · {name} · " in decided["sub_title_text"]
        assert "等待您处理" not in decided["sub_title_text"]
        assert decided["card_action"]["url"].startswith(f"{server.base_url}/m/l/")

    result = await phone.text_to("wuhao", "已通过")
    assert result.startswith("您的「用章申请」")
    view = await settled(server, req["id"], "approved")
    assert decisions(view) == [("approved", u) for u in ("u_sun", "u_wang", "u_li", "u_zhang", "u_chen")]
    for account, _, _ in chain:
        assert len(wecom.cards_to(account)) == 1, account
    assert len(wecom.updates) == len(chain)
    assert wecom.cards_to("wuhao") == [] and wecom.cards_to("liuqiang") == []


@pytest.mark.parametrize(
    ("trip", "approvers"),
    [({}, ["wangfang"]), ({"overnight": True}, ["wangfang", "lina", "zhangwei"])],
    ids=["same_day_with_driver", "overnight"],
)
async def test_vehicle_dispatch_routes_run_through_wecom(
    server: ServerProcess, phone: Phone, wecom: FakeWeCom, trip: dict[str, Any], approvers: list[str]
) -> None:
    req = await submit(server, "vehicle_dispatch", {**VEHICLE, **trip})

    for account in approvers:
        card = await phone.card(account, req["id"])
        assert card["main_title"]["title"] == "派车申请·一般"
        assert [b.get("key", b["text"]) for b in card["button_list"]] == ["approve", "reject", "更多操作"]
        code = await phone.tap(account, card, "approve", times=3)
        assert "已同意 · " in (await phone.update_for(code))["template_card"]["sub_title_text"]

    notice = await phone.text_to("liuqiang", "【请安排】")
    assert "派车申请" in notice and "浦东项目现场" in notice
    assert (await phone.text_to("wuhao", "已通过")).startswith("您的「派车申请」")
    progress = [t for t in wecom.texts_to("wuhao") if t.startswith("【进度】")]
    assert len(progress) == len(approvers) - 1  # each step but the last, whose news is the result
    view = await settled(server, req["id"], "approved")
    assert len(decisions(view)) == len(approvers)
    skipped = {"wangfang", "lina", "zhangwei"} - set(approvers)
    assert all(wecom.cards_to(a) == [] for a in skipped)


# == retries, double taps, strangers ==========================================================
async def test_double_tap_acts_once_and_the_second_tap_gets_already_handled(
    server: ServerProcess, phone: Phone, wecom: FakeWeCom
) -> None:
    req = await submit(server, "vehicle_dispatch", {**VEHICLE, "overnight": True})
    card = await phone.card("wangfang", req["id"])

    first = await phone.tap("wangfang", card, "approve", times=3)
    second = await phone.tap("wangfang", card, "reject", times=3)

    reply = await phone.text_to("wangfang", "已处理")
    await phone.card("lina", req["id"])
    view = await fetch(server, req["id"])
    assert decisions(view) == [("approved", "u_wang")]
    assert view["status"] == "running"
    assert reply.startswith("已处理")
    mine = [u for u in wecom.updates if u["userids"] == ["wangfang"]]
    assert len(mine) == 1 and mine[0]["response_code"] in (first, second)
    assert len([t for t in wecom.texts_to("wangfang") if "已处理" in t]) == 1


async def test_click_from_an_account_outside_the_directory_gets_a_polite_reply_and_changes_nothing(
    server: ServerProcess, phone: Phone, wecom: FakeWeCom
) -> None:
    req = await submit(server, "seal_use", SEAL)
    card = await phone.card("sunli", req["id"])
    before = await fetch(server, req["id"])

    await phone.tap("visitor007", card, "approve")

    assert await phone.text_to("visitor007", "不在本单位通讯录") == NOT_IN_DIRECTORY
    after = await fetch(server, req["id"])
    assert after["version"] == before["version"] and decisions(after) == []
    assert wecom.updates == []


async def test_tap_on_someone_elses_card_changes_nothing(
    server: ServerProcess, phone: Phone, wecom: FakeWeCom
) -> None:
    req = await submit(server, "seal_use", SEAL)
    card = await phone.card("sunli", req["id"])
    before = await fetch(server, req["id"])

    await phone.tap("lina", card, "approve")

    assert "不是由您处理" in await phone.text_to("lina", "不是由您处理")
    after = await fetch(server, req["id"])
    assert after["version"] == before["version"] and decisions(after) == []
    assert wecom.updates == []
    # sunli's own tap still works afterwards, with her card's handle untouched by lina's click
    code = await phone.tap("sunli", card, "approve")
    assert (await phone.update_for(code))["userids"] == ["sunli"]


async def test_text_commands_and_locations_get_replies(
    server: ServerProcess, phone: Phone, callbacks: WeComCallbacks
) -> None:
    await submit(server, "seal_use", SEAL)

    await phone.say("sunli", "待办", times=2)
    await phone.say("sunli", "帮助")
    await phone.say("sunli", "你好")
    await phone.deliver(callbacks.location_xml("sunli", 31.2304, 121.4737, "集团总部", 42))
    await phone.deliver(callbacks.location_event_xml("sunli", 31.2215, 121.544, 30.0))

    assert "您有 1 条待办" in await phone.text_to("sunli", "条待办")
    assert (await phone.text_to("sunli", "可用命令")).startswith("可用命令")
    assert await phone.text_to("sunli", "没有听懂")
    assert "31.23040, 121.47370" in await phone.text_to("sunli", "31.23040")
    assert "31.22150, 121.54400" in await phone.text_to("sunli", "31.22150")
    assert len([t for t in phone.wecom.texts_to("sunli") if "条待办" in t]) == 1  # the repeat was deduped


# == bad input ================================================================================
def _sign(encrypted: str, ts: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([TOKEN, ts, nonce, encrypted])).encode()).hexdigest()


def _badly_padded(inner: str) -> str:
    """Ciphertext under the right key whose PKCS#7 padding byte is 0 (never valid)."""
    key = base64.b64decode(AES_KEY + "=")
    msg = inner.encode()
    plain = os.urandom(16) + struct.pack(">I", len(msg)) + msg + CORP_ID.encode()
    plain += b"\x00" * (32 - len(plain) % 32)
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def _outer(encrypted: str) -> bytes:
    return f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()


async def test_forged_replayed_and_malformed_callbacks_change_nothing_and_never_get_a_5xx(
    server: ServerProcess, phone: Phone, wecom: FakeWeCom, callbacks: WeComCallbacks
) -> None:
    req = await submit(server, "seal_use", SEAL)
    card = await phone.card("sunli", req["id"])
    tap_code = wecom.click_code()
    tap_xml = callbacks.card_click_xml("sunli", card["task_id"], "approve", tap_code)
    query, body = callbacks.seal(tap_xml)
    ts, nonce = "1795000000", "777"
    other_corp = WeComCallbacks(TOKEN, AES_KEY, "wwSomeOtherCorp0001", AGENT_ID)
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>'
    padded = _badly_padded(tap_xml)
    inner_broken_query, inner_broken_body = callbacks.seal("<xml><FromUserName>sunli</Fro")
    no_sender_query, no_sender_body = callbacks.seal("<xml><MsgType>text</MsgType><Content>x</Content></xml>")
    bad = {
        "forged signature": ({**query, "msg_signature": "0" * 40}, body, 403),
        "another corp's message": (*other_corp.seal(tap_xml), 403),
        "bad padding": (
            {"msg_signature": _sign(padded, ts, nonce), "timestamp": ts, "nonce": nonce},
            _outer(padded),
            400,
        ),
        "not base64": (
            {"msg_signature": _sign("%%%%", ts, nonce), "timestamp": ts, "nonce": nonce},
            _outer("%%%%"),
            400,
        ),
        "malformed outer XML": (query, b"<xml><Encrypt>abc", 400),
        "entity expansion": (query, bomb, 400),
        # Signed by WeCom but unusable: acknowledged (no retries), refused and recorded.
        "malformed inner XML": (inner_broken_query, inner_broken_body, 200),
        "message without a sender": (no_sender_query, no_sender_body, 200),
        "no signature": ({}, body, 400),
        "over 64 KiB": (query, b"<xml><Encrypt>" + b"A" * (65 * 1024) + b"</Encrypt></xml>", 413),
    }
    inbox_before = await phone.inbox_size()
    before = await fetch(server, req["id"])

    answers = {name: (await phone.post(q, b))[0] for name, (q, b, _) in bad.items()}

    for name, (_, _, status) in bad.items():
        resp = answers[name]
        assert resp.status_code == status, (name, resp.status_code, resp.text)
        assert "error" in resp.json() if status >= 400 else resp.content == b"", name
    assert await phone.inbox_size() == inbox_before
    after = await fetch(server, req["id"])
    assert after["version"] == before["version"] and decisions(after) == []
    assert wecom.updates == []
    assert server.logs().count("wecom callback refused") >= len(bad)

    # The genuine tap, then a replay of it long after it was handled: one action only.
    await phone.post(query, body)
    await phone.update_for(tap_code)
    await phone.card("wangfang", req["id"])
    inbox_after_tap = await phone.inbox_size()
    [replayed] = await phone.post(query, body)
    assert replayed.status_code == 200
    assert await phone.inbox_size() == inbox_after_tap
    assert decisions(await fetch(server, req["id"])) == [("approved", "u_sun")]
    assert len(wecom.updates) == 1


# == the platform misbehaving ==================================================================
async def test_platform_5xx_then_ok_still_delivers_every_card_exactly_once(
    server: ServerProcess, phone: Phone, wecom: FakeWeCom
) -> None:
    # More failures than one delivery's own retries: the outbox retries the row later.
    wecom.fail_next("/cgi-bin/message/send", times=5, status=502)
    req = await submit(server, "vehicle_dispatch", {**VEHICLE, "overnight": True})
    card = await phone.card("wangfang", req["id"])
    wecom.fail_next("/cgi-bin/message/send", times=2, errcode=45009)  # then rate-limited twice
    wecom.fail_next("/cgi-bin/message/update_template_card", times=2, status=503)

    code = await phone.tap("wangfang", card)
    await phone.update_for(code)
    await phone.card("lina", req["id"])

    assert len(wecom.cards_to("wangfang")) == 1 and len(wecom.cards_to("lina")) == 1
    sent_task_ids = [
        c["template_card"]["task_id"] for c in wecom.delivered if c["msgtype"] == "template_card"
    ]
    assert len(sent_task_ids) == len(set(sent_task_ids)) == 2
    await phone.text_to("wuhao", "【进度】")
    # the failures, the two cards and the initiator's progress message
    assert len(wecom.calls("/cgi-bin/message/send")) == 5 + 1 + 2 + 1 + 1
    assert len(wecom.calls("/cgi-bin/message/update_template_card")) == 2 + 1


async def test_ack_stays_fast_while_the_wecom_api_takes_3_seconds(
    server: ServerProcess, phone: Phone, wecom: FakeWeCom
) -> None:
    wecom.send_delay_s = 3.0
    req = await submit(server, "vehicle_dispatch", {**VEHICLE, "overnight": True})
    card = await phone.card("wangfang", req["id"])
    phone.acks.clear()

    code = await phone.tap("wangfang", card, times=3)
    await phone.say("wangfang", "待办", times=3)
    await phone.say("lina", "帮助", times=3)

    slowest = max(phone.acks)
    print(
        f"\nwecom callback acks while message/send takes 3 s: n={len(phone.acks)} max={slowest * 1000:.0f} ms"
    )
    assert slowest < 1.0
    await phone.update_for(code)
    await phone.card("lina", req["id"])  # the slow sends still get through
    wecom.send_delay_s = 0.0  # let the server stop without waiting for more slow sends


async def test_token_is_fetched_once_for_many_sends_and_refreshed_once_after_42001(
    server: ServerProcess, phone: Phone, wecom: FakeWeCom
) -> None:
    first = await submit(server, "vehicle_dispatch", VEHICLE)
    second = await submit(server, "vehicle_dispatch", {**VEHICLE, "destination": "集团总部"})
    await phone.card("wangfang", first["id"])
    await phone.card("wangfang", second["id"])
    await phone.say("wangfang", "帮助")
    await phone.text_to("wangfang", "可用命令")
    assert len(wecom.tokens_issued) == 1

    wecom.expire_token()
    third = await submit(server, "vehicle_dispatch", {**VEHICLE, "destination": "浦东机场"})
    await phone.card("wangfang", third["id"])
    await phone.say("wangfang", "待办")
    await phone.text_to("wangfang", "条待办")

    assert len(wecom.tokens_issued) == 2
    expired = [
        r
        for r in wecom.calls("/cgi-bin/message/send")
        if r.query.get("access_token") == wecom.tokens_issued[0]
    ]
    assert len(expired) >= 1
    assert len(wecom.cards_to("wangfang")) == 3


# == cards closed some other way ==============================================================
async def withdraw(server: ServerProcess, request_id: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            f"{server.base_url}/api/v1/requests/{request_id}/actions",
            json={"action": "withdraw", "actor": "u_wu"},
            headers=AUTH,
        )
    assert resp.status_code == 200, resp.text


async def test_withdrawn_request_closes_the_open_card_or_says_so_in_a_text(
    server: ServerProcess, phone: Phone, wecom: FakeWeCom
) -> None:
    kept = await submit(server, "seal_use", SEAL)
    refused = await submit(server, "seal_use", {**SEAL, "reason": "续签租赁合同"})
    await phone.card("sunli", kept["id"])
    await phone.card("sunli", refused["id"])
    assert len(wecom.cards_to("sunli")) == 2

    await withdraw(server, kept["id"])
    [update] = await wait_until(lambda: wecom.updates)
    wecom.fail_next("/cgi-bin/message/update_template_card", errcode=40098)  # e.g. the code expired (72 h)
    await withdraw(server, refused["id"])

    assert update["userids"] == ["sunli"] and "申请已撤销" in update["template_card"]["sub_title_text"]
    assert update["response_code"].startswith("rc-send-")  # the code message/send returned
    fallback = await phone.text_to("sunli", "续签租赁合同")
    assert fallback.endswith("申请已撤销")
    assert len(wecom.updates) == 1
