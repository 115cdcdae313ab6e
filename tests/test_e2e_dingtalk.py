"""End to end through DingTalk (HTTP mode): the real `python -m bot serve` process against a fake
DingTalk API server on 127.0.0.1, with callbacks sealed by dingtalk-sdk (not oabot's crypto).

Runs on SQLite, and on PostgreSQL when OABOT_TEST_DATABASE_URL is set (own schema per test); the
server uses Redis when OABOT_TEST_REDIS_URL is set (own key prefix per test).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from dingtalk.crypto import DingTalkCrypto

from storage.kv_redis import RedisStore
from tests.conftest import PG_URL, REDIS_URL, create_pg_schema, drop_pg_schema
from tests.e2e_harness import ServerProcess, base_env, wait_until
from tests.fake_dingtalk import (
    BATCH_SEND,
    CREATE,
    TOKEN,
    UPDATE,
    CardInstance,
    FakeDingTalk,
    SignedCallback,
    card_tap,
    dingtalk_env,
    event_crypto,
    robot_headers,
    robot_message,
    sealed_callback,
)

API_TOKEN = "e2e-token-0123456789"
SEAL = {
    "seal": "公章",
    "reason": "签署合作协议",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["合作协议.pdf", "授权委托书.pdf"],
    "copies": 2,
    "take_out": False,
}
# seal_use: 吴昊 u_wu → 孙丽 u_sun → 王芳 u_wang → 李娜 u_li → 张伟 u_zhang → seal keeper 陈静 u_chen
CHAIN = [
    ("u_sun", "010008", "孙丽"),
    ("u_wang", "010003", "王芳"),
    ("u_li", "010002", "李娜"),
    ("u_zhang", "010001", "张伟"),
    ("u_chen", "010004", "陈静"),
]
INITIATOR_STAFF = "010009"
ACK_LIMIT_S = 1.0  # DingTalk allows 1.5 s


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/e2e.db"
        return
    if PG_URL is None:
        pytest.skip("OABOT_TEST_DATABASE_URL is not set")
    schema = await create_pg_schema(PG_URL)
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        await drop_pg_schema(PG_URL, schema)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDingTalk]:
    dingtalk = await FakeDingTalk().start()
    try:
        yield dingtalk
    finally:
        await dingtalk.stop()


@pytest.fixture
async def redis_env() -> AsyncIterator[dict[str, str]]:
    if REDIS_URL is None:
        yield {}
        return
    prefix = f"oabot-e2e:{uuid.uuid4().hex[:12]}:"
    yield {"OABOT_REDIS_URL": REDIS_URL, "OABOT_REDIS_PREFIX": prefix}
    store = RedisStore(REDIS_URL, prefix=prefix)
    await store.purge_prefix()
    await store.close()


class Oabot:
    """The server process and what the tests do to it: REST calls and DingTalk callbacks."""

    def __init__(self, server: ServerProcess, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http
        self.ack_times: list[float] = []

    async def submit(self, template: str, initiator: str, form: dict[str, Any]) -> dict[str, Any]:
        resp = await self.http.post(
            "/api/v1/requests",
            json={"template": template, "initiator": initiator, "form": form},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def request(self, request_id: str) -> dict[str, Any]:
        resp = await self.http.get(
            f"/api/v1/requests/{request_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def pending(self, user: str) -> list[dict[str, Any]]:
        resp = await self.http.get(
            f"/api/v1/tasks?assignee={user}", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]  # type: ignore[no-any-return]

    async def post(
        self, path: str, body: bytes, *, query: str = "", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        started = time.perf_counter()
        resp = await self.http.post(
            f"{path}?{query}" if query else path,
            content=body,
            headers=headers or {"Content-Type": "application/json"},
        )
        self.ack_times.append(time.perf_counter() - started)
        return resp

    async def callback(self, path: str, cb: SignedCallback) -> httpx.Response:
        return await self.post(path, cb.body, query=cb.query)

    async def tap(
        self, track: str, staff: str, action: str = "approve", *, times: int = 1
    ) -> list[httpx.Response]:
        """One tap, delivered `times` times (the platform retrying the same callback)."""
        cb = sealed_callback(card_tap(track, staff, action))
        return [await self.callback("/callbacks/dingtalk/card", cb) for _ in range(times)]

    async def robot(self, message: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.post(
            "/callbacks/dingtalk/robot", json.dumps(message).encode(), headers=headers or robot_headers()
        )


def assert_success_reply(resp: httpx.Response) -> None:
    """The answer must be the encrypted "success", checked with dingtalk-sdk."""
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert (
        event_crypto().decrypt_message(body, body["msg_signature"], body["timeStamp"], body["nonce"])
        == "success"
    )


@pytest.fixture
async def oabot(
    database_url: str, fake: FakeDingTalk, redis_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[Oabot]:
    env = base_env(database_url, **dingtalk_env(fake, "http"), **redis_env)
    async with ServerProcess(env, cwd=tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as http:
            try:
                yield Oabot(server, http)
            except BaseException:
                print(server.logs()[-6000:])
                raise


async def card_of(fake: FakeDingTalk, staff: str, index: int = 0) -> CardInstance:
    cards = await wait_until(lambda: len(fake.cards_for(staff)) > index and fake.cards_for(staff))
    return cards[index]


def closed(card: CardInstance) -> Callable[[], bool]:
    return lambda: card.params["status"] == "closed"


def told_already_handled(fake: FakeDingTalk, staff: str) -> Callable[[], bool]:
    return lambda: any(t.startswith("已处理") for t in fake.texts_for(staff))


def decisions(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["kind"], e["actor"]) for e in view["trail"] if e["kind"] in ("approved", "rejected")]


async def test_seal_use_runs_from_submit_through_every_approvers_dingtalk_card_to_the_seal_keeper(
    oabot: Oabot, fake: FakeDingTalk
) -> None:
    assert_success_reply(
        await oabot.callback("/callbacks/dingtalk", sealed_callback({"EventType": "check_url"}))
    )
    req = await oabot.submit("seal_use", "u_wu", SEAL)

    for user, staff, name in CHAIN:
        card = await card_of(fake, staff)
        assert card.out_track_id.startswith("oabot_") and card.params["status"] == "pending"
        assert card.params["show_approve"] == "true" and card.params["subtitle"] == req["title"]
        assert card.params["show_more"] == "true" and card.params["more_label"] == "更多操作"
        assert card.params["more_url"] == card.params["link"]
        assert card.params["link"].startswith(f"{oabot.server.base_url}/m/l/")  # the person's own link
        assert "等待您处理" in card.params["waiting"]
        # The platform delivers the same callback three times: one action, three fast acks.
        for resp in await oabot.tap(card.out_track_id, staff, times=3):
            assert_success_reply(resp)
        if user == "u_wang":
            # A second, separate tap on the same button: answered 已处理, no second transition.
            assert_success_reply((await oabot.tap(card.out_track_id, staff))[0])
            await wait_until(told_already_handled(fake, staff))
        await wait_until(closed(card))
        assert name in card.params["outcome"] and card.params["show_approve"] == "false"
        assert "等待您处理" not in card.params["waiting"] and name in card.params["waiting"]
        assert card.params["show_more"] == "true"  # the request page is still one tap away

    result = await wait_until(
        lambda: [t for t in fake.texts_for(INITIATOR_STAFF) if t.startswith("您的「用章申请」")]
    )
    assert len(result) == 1
    words, link = result[0].split("\n")
    assert words.endswith("已通过") and link.startswith("查看详情：http") and "/m/l/" in link
    assert [fake.cards[t].staff_id for t in fake.created()] == [staff for _, staff, _ in CHAIN]
    assert all(
        len(fake.cards_for(staff)) == 1 and len(fake.cards_for(staff)[0].updates) == 1
        for _, staff, _ in CHAIN
    )
    view = await oabot.request(req["id"])
    assert view["status"] == "approved"
    assert decisions(view) == [("approved", user) for user, _, _ in CHAIN]
    assert [t for t in fake.texts_for("010003") if t.startswith("已处理")] != []
    assert max(oabot.ack_times) < ACK_LIMIT_S, oabot.ack_times


async def test_forged_stale_and_malformed_callbacks_change_nothing_and_never_get_a_5xx(
    oabot: Oabot, fake: FakeDingTalk
) -> None:
    req = await oabot.submit("seal_use", "u_wu", SEAL)
    card = await card_of(fake, "010008")
    tap = card_tap(card.out_track_id, "010008", "approve")
    now_ms = int(time.time() * 1000)
    other_key = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
    refused = {
        "forged signature": await oabot.callback(
            "/callbacks/dingtalk/card", sealed_callback(tap, signature="0" * 40)
        ),
        "another token": await oabot.callback(
            "/callbacks/dingtalk/card",
            sealed_callback(tap, crypto=DingTalkCrypto("guess", other_key, "dingoabotfake")),
        ),
        "another app": await oabot.callback(
            "/callbacks/dingtalk/card", sealed_callback(tap, crypto=event_crypto(owner="dingother"))
        ),
        "stale": await oabot.callback(
            "/callbacks/dingtalk/card", sealed_callback(tap, timestamp_ms=now_ms - 2 * 3600 * 1000)
        ),
        "future": await oabot.callback(
            "/callbacks/dingtalk/card", sealed_callback(tap, timestamp_ms=now_ms + 2 * 3600 * 1000)
        ),
        "no query": await oabot.post("/callbacks/dingtalk/card", sealed_callback(tap).body),
        "not json": await oabot.post(
            "/callbacks/dingtalk/card", b"<xml>no</xml>", query=sealed_callback(tap).query
        ),
        "garbage ciphertext": await oabot.post(
            "/callbacks/dingtalk/card",
            json.dumps({"encrypt": "!!notbase64!!"}).encode(),
            query=sealed_callback(tap).query,
        ),
        "event forged": await oabot.callback(
            "/callbacks/dingtalk", sealed_callback({"EventType": "check_url"}, signature="1" * 40)
        ),
        "robot bad sign": await oabot.robot(robot_message("010008", "待办"), robot_headers(sign="c2lnbg==")),
        "robot stale": await oabot.robot(
            robot_message("010008", "待办"), robot_headers(now_ms - 2 * 3600 * 1000)
        ),
        "robot no sign": await oabot.robot(
            robot_message("010008", "待办"), {"Content-Type": "application/json"}
        ),
    }
    assert {k: r.status_code for k, r in refused.items() if r.status_code not in (400, 403)} == {}
    # Genuine headers with an unreadable body: acknowledged (no retries), refused and recorded.
    assert (await oabot.post("/callbacks/dingtalk/robot", b"{", headers=robot_headers())).status_code == 200

    # Authentic taps from someone outside the directory and from someone not holding the task.
    assert_success_reply((await oabot.tap(card.out_track_id, "099999"))[0])
    assert_success_reply((await oabot.tap(card.out_track_id, "010001"))[0])
    await wait_until(lambda: fake.texts_for("099999") and fake.texts_for("010001"))
    assert "不在本单位通讯录" in fake.texts_for("099999")[0]
    assert "不是由您处理的" in fake.texts_for("010001")[0]

    # A robot message delivered three times: one reply.
    message = robot_message("010008", "待办")
    for _ in range(3):
        resp = await oabot.robot(message)
        assert resp.status_code == 200
    await wait_until(lambda: fake.texts_for("010008"))
    [task] = await oabot.pending("u_sun")
    assert task["request_id"] == req["id"] and task["version"] == int(card.params["version"])
    assert card.updates == [] and card.params["status"] == "pending"
    assert len(fake.texts_for("010008")) == 1 and "待办" in fake.texts_for("010008")[0]
    assert (await oabot.request(req["id"]))["status"] not in ("approved", "rejected")
    assert max(oabot.ack_times) < ACK_LIMIT_S, oabot.ack_times


async def test_platform_errors_and_slowness_never_delay_an_ack_or_duplicate_a_card(
    oabot: Oabot, fake: FakeDingTalk
) -> None:
    fake.fail_next(TOKEN, 500)
    fake.fail_next(CREATE, 500, 503, 429)
    req = await oabot.submit("seal_use", "u_wu", SEAL)
    first = await card_of(fake, "010008")
    assert fake.created() == [first.out_track_id]
    assert len(fake.api.calls(CREATE)) == 4  # three refused, one made the card

    # The token expires; DingTalk is slow (3 s a call) and fails an update once.
    fake.expire_tokens()
    for path in (CREATE, UPDATE, BATCH_SEND):
        fake.delay(path, 3.0)
    fake.fail_next(UPDATE, 502)
    acks = await oabot.tap(first.out_track_id, "010008", times=3)
    assert all(r.status_code == 200 for r in acks)
    await wait_until(
        lambda: len(fake.api.calls(UPDATE)) >= 1, timeout=10
    )  # the dispatcher is now inside a 3 s call
    for resp in await oabot.tap(first.out_track_id, "010008", times=2):
        assert_success_reply(resp)  # another tap while the platform is slow
    assert_success_reply(
        await oabot.callback("/callbacks/dingtalk", sealed_callback({"EventType": "check_url"}))
    )
    assert (await oabot.robot(robot_message("010008", "帮助"))).status_code == 200
    slow_acks = list(oabot.ack_times)

    for path in (CREATE, UPDATE, BATCH_SEND):
        fake.delay(path, 0)  # the platform recovers; everything queued still goes out, once
    await wait_until(closed(first), timeout=15)
    second = await card_of(fake, "010003")
    await wait_until(
        lambda: len(fake.texts_for("010008")) == 2
    )  # 已处理 for the second tap, and the help text
    assert fake.created() == [first.out_track_id, second.out_track_id]
    assert len(first.updates) == 1
    assert fake.token_fetches == 2  # one at start, one after the platform called the token expired
    view = await oabot.request(req["id"])
    assert decisions(view) == [("approved", "u_sun")]
    assert max(oabot.ack_times) < ACK_LIMIT_S, oabot.ack_times
    print(
        f"\ndingtalk ack latency while the platform takes 3 s: max {max(slow_acks) * 1000:.0f} ms over {len(slow_acks)} callbacks"
    )


async def test_a_double_tap_sent_at_once_makes_one_transition(oabot: Oabot, fake: FakeDingTalk) -> None:
    req = await oabot.submit("seal_use", "u_wu", SEAL)
    card = await card_of(fake, "010008")
    taps = [sealed_callback(card_tap(card.out_track_id, "010008", "approve")) for _ in range(2)]
    replies = await asyncio.gather(*(oabot.callback("/callbacks/dingtalk/card", cb) for cb in taps))
    for resp in replies:
        assert_success_reply(resp)
    await card_of(fake, "010003")
    await wait_until(told_already_handled(fake, "010008"))
    assert decisions(await oabot.request(req["id"])) == [("approved", "u_sun")]
    assert len(card.updates) == 1
