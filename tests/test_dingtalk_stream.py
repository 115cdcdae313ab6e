"""Stream mode. At the handler boundary: SDK-shaped frames go into our handler objects (no
websocket), the inbox gets the neutral event and the ack comes back at once. Then the
connection itself against a fake gateway and websocket on 127.0.0.1: acks on the socket,
pings, a server `disconnect` followed by a reconnect, and the state /readyz reports."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
import websockets.exceptions
from aiohttp import web
from dingtalk_stream import AckMessage, CallbackMessage
from sqlalchemy import select

from approvals.clock import ManualClock
from bot.app import create_app
from bot.platforms.dingtalk.stream import CARD_TOPIC, OPEN_PATH, ROBOT_TOPIC, StreamConnection
from bot.platforms.inbox import Inbox
from bot.settings import DingTalkSettings
from handlers.events import CardAction, Event, TextMessage, event_from_dict
from storage.db import Database
from storage.kv_memory import MemoryStore
from storage.platform_models import InboxRow
from tests.conftest import settings_for
from tests.e2e_harness import FakeApi, Recorded, wait_until
from tests.fake_dingtalk import card_tap, robot_message

HANDLER_BUDGET_S = 0.5


def frame(
    topic: str, data: dict[str, Any], message_id: str = "msg-1", kind: str = "CALLBACK"
) -> dict[str, Any]:
    return {
        "specVersion": "1.0",
        "type": kind,
        "headers": {
            "appId": "app",
            "connectionId": "conn-1",
            "contentType": "application/json",
            "messageId": message_id,
            "time": str(int(time.time() * 1000)),
            "topic": topic,
        },
        "data": json.dumps(data),
    }


@pytest.fixture
async def inbox(db: Database, clock: ManualClock) -> AsyncIterator[Inbox]:
    kv = MemoryStore()

    async def process(event: Event) -> None:
        return None

    yield Inbox(db, kv, process, now=clock.now)
    await kv.close()


@pytest.fixture
async def stream(inbox: Inbox, clock: ManualClock) -> AsyncIterator[StreamConnection]:
    settings = DingTalkSettings(app_key="dingkey", app_secret="secret", api_base="http://127.0.0.1:9")
    async with httpx.AsyncClient() as http:
        yield StreamConnection(settings, http, inbox.accept, now=clock.now)


async def stored(db: Database) -> list[Event]:
    async with db.session() as s:
        rows = (await s.execute(select(InboxRow).order_by(InboxRow.id))).scalars().all()  # type: ignore[arg-type]
    return [event_from_dict(dict(r.payload)) for r in rows]


async def timed(handler: Any, raw: dict[str, Any]) -> tuple[AckMessage, float]:
    started = time.perf_counter()
    ack = await handler.raw_process(CallbackMessage.from_dict(raw))
    return ack, time.perf_counter() - started


async def test_a_card_tap_is_stored_as_a_neutral_event_and_acked_at_once(
    stream: StreamConnection, db: Database
) -> None:
    raw = frame(CARD_TOPIC, card_tap("oabot_20261123-abcd1234-1_v2", "010008", "approve"), "m-tap")

    ack, elapsed = await timed(stream.card_handler, raw)

    assert elapsed < HANDLER_BUDGET_S
    assert ack.code == AckMessage.STATUS_OK and ack.headers.message_id == "m-tap"
    assert json.loads(ack.to_dict()["data"]) == {"response": {}}
    [event] = await stored(db)
    assert isinstance(event, CardAction)
    assert (event.sender.platform, event.sender.account) == ("dingtalk", "010008")
    assert (event.task_id, event.version, event.action) == ("20261123-abcd1234-1", 2, "approve")


async def test_a_redelivered_frame_is_acked_again_but_stored_once(
    stream: StreamConnection, db: Database
) -> None:
    raw = frame(CARD_TOPIC, card_tap("oabot_r-1_v1", "010008", "reject"), "m-same")
    acks = [await stream.card_handler.raw_process(CallbackMessage.from_dict(raw)) for _ in range(3)]
    assert [a.code for a in acks] == [200, 200, 200]
    assert len(await stored(db)) == 1


async def test_a_malformed_card_callback_is_refused_and_stores_nothing(
    stream: StreamConnection, db: Database
) -> None:
    for data in ({"outTrackId": "not-ours", "userId": "010008", "content": "{}"}, {"userId": "010008"}, {}):
        ack, _ = await timed(stream.card_handler, frame(CARD_TOPIC, data))
        assert ack.code == AckMessage.STATUS_BAD_REQUEST
    assert await stored(db) == []


async def test_a_robot_message_is_stored_as_text_and_acked_at_once(
    stream: StreamConnection, db: Database
) -> None:
    ack, elapsed = await timed(
        stream.robot_handler, frame(ROBOT_TOPIC, robot_message("010008", " 待办 ", msg_id="msgA"))
    )

    assert elapsed < HANDLER_BUDGET_S and ack.code == AckMessage.STATUS_OK
    [event] = await stored(db)
    assert isinstance(event, TextMessage) and event.text == "待办" and event.sender.account == "010008"


async def test_when_the_event_cannot_be_stored_the_ack_asks_for_redelivery(clock: ManualClock) -> None:
    async def broken(event: Event) -> bool:
        raise OSError("database is down")

    settings = DingTalkSettings(app_key="dingkey", app_secret="secret")
    async with httpx.AsyncClient() as http:
        conn = StreamConnection(settings, http, broken, now=clock.now)
        ack, _ = await timed(
            conn.card_handler, frame(CARD_TOPIC, card_tap("oabot_r-1_v1", "010008", "approve"))
        )
        robot_ack, _ = await timed(conn.robot_handler, frame(ROBOT_TOPIC, robot_message("010008", "帮助")))
    assert ack.code == robot_ack.code == AckMessage.STATUS_SYSTEM_EXCEPTION


async def test_a_tap_that_could_not_be_stored_is_taken_when_dingtalk_redelivers_it(
    stream: StreamConnection, inbox: Inbox, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = frame(CARD_TOPIC, card_tap("oabot_r-1_v1", "010008", "approve"), "m-retry")
    real_insert = inbox.writer.insert

    async def failing_insert(*args: Any, **kwargs: Any) -> bool:
        raise OSError("database connection lost")

    monkeypatch.setattr(inbox.writer, "insert", failing_insert)  # the group commit's one writer
    first = await stream.card_handler.raw_process(CallbackMessage.from_dict(raw))
    monkeypatch.setattr(inbox.writer, "insert", real_insert)
    again = await stream.card_handler.raw_process(CallbackMessage.from_dict(raw))

    assert (first.code, again.code) == (AckMessage.STATUS_SYSTEM_EXCEPTION, AckMessage.STATUS_OK)
    assert len(await stored(db)) == 1


def test_websockets_exposes_what_the_sdk_expects() -> None:
    # NOTES §4.2: dingtalk-stream 0.24 reads websockets.exceptions.ConnectionClosedError.
    assert issubclass(websockets.exceptions.ConnectionClosedError, websockets.exceptions.ConnectionClosed)
    assert callable(websockets.connect)


# -- the connection, against a fake gateway -----------------------------------------------------
class Gateway:
    """POST /v1.0/gateway/connections/open and a websocket at /stream, on 127.0.0.1."""

    def __init__(self) -> None:
        self.api = FakeApi("dingtalk-gateway")
        self.sessions: asyncio.Queue[web.WebSocketResponse] = asyncio.Queue()
        self.acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.refuse_open = False
        self.api.route("POST", OPEN_PATH, self._open)
        self.api.route("GET", "/stream", self._stream)

    async def _open(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if self.refuse_open:
            return web.json_response({"code": "ServiceUnavailable"}, status=503)
        return web.json_response(
            {"endpoint": f"ws://127.0.0.1:{self.api.port}/stream", "ticket": "tick et+1"}
        )

    async def _stream(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await self.sessions.put(ws)
        async for msg in ws:
            await self.acks.put(json.loads(msg.data))
        return ws


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gw = Gateway()
    await gw.api.start()
    try:
        yield gw
    finally:
        await gw.api.stop()


async def next_of(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), timeout=5)


async def test_the_stream_acks_on_the_socket_and_reconnects_after_a_disconnect(
    gateway: Gateway, inbox: Inbox, db: Database, clock: ManualClock
) -> None:
    settings = DingTalkSettings(app_key="dingkey", app_secret="secret", api_base=gateway.api.base_url)
    async with httpx.AsyncClient() as http:
        conn = StreamConnection(settings, http, inbox.accept, now=clock.now)
        runner = asyncio.create_task(conn.run())
        try:
            ws = await next_of(gateway.sessions)
            [opened] = gateway.api.calls(OPEN_PATH)
            assert opened.json()["clientId"] == "dingkey"
            assert {s["topic"] for s in opened.json()["subscriptions"]} == {CARD_TOPIC, ROBOT_TOPIC}
            assert gateway.api.calls("/stream")[0].query["ticket"] == "tick et+1"
            await wait_until(lambda: conn.state.describe()[0])

            await ws.send_str(
                json.dumps(frame(CARD_TOPIC, card_tap("oabot_r-1_v1", "010008", "approve"), "m1"))
            )
            ack = await next_of(gateway.acks)
            assert ack["code"] == 200 and ack["headers"]["messageId"] == "m1"
            assert [type(e) for e in await stored(db)] == [CardAction]

            await ws.send_str(json.dumps(frame("ping", {"opaque": "x"}, "p1", kind="SYSTEM")))
            ping_ack = await next_of(gateway.acks)
            assert ping_ack["headers"]["messageId"] == "p1" and json.loads(ping_ack["data"]) == {
                "opaque": "x"
            }

            await ws.send_str(json.dumps(frame("disconnect", {}, "d1", kind="SYSTEM")))
            await next_of(gateway.acks)
            await next_of(gateway.sessions)  # a fresh connection, by itself
            assert len(gateway.api.calls(OPEN_PATH)) == 2
            await wait_until(lambda: conn.state.connected and conn.state.connections == 2)
        finally:
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner
    assert conn.state.connected is False


async def test_the_readiness_check_follows_the_stream_connection(
    gateway: Gateway, org_db: Database, aiohttp_client: Any
) -> None:
    settings = settings_for(
        org_db,
        run_background=True,
        dispatch_interval_s=0.05,
        dingtalk=DingTalkSettings(
            app_key="dingkey",
            app_secret="secret",
            api_base=gateway.api.base_url,
            oapi_base=gateway.api.base_url,
        ),
    )
    client = await aiohttp_client(create_app(settings))

    async def stream_check() -> dict[str, Any]:
        admin = {"Authorization": f"Bearer {settings.api_token}"}
        body = await (await client.get("/readyz", headers=admin)).json()
        return body["checks"]["dingtalk_stream"]  # type: ignore[no-any-return]

    ws = await next_of(gateway.sessions)
    await wait_until(stream_check_ok(stream_check))

    gateway.refuse_open = True
    await ws.close()
    await wait_until(lambda: len(gateway.api.calls(OPEN_PATH)) >= 2)
    down = await wait_until(stream_check_failing(stream_check))
    assert "failed attempts" in down["detail"]

    gateway.refuse_open = False
    await next_of(gateway.sessions)
    await wait_until(stream_check_ok(stream_check))


def stream_check_failing(check: Any) -> Any:
    async def failing() -> dict[str, Any] | None:
        result = await check()
        return result if not result["ok"] and "failed" in result["detail"] else None

    return failing


def stream_check_ok(check: Any) -> Any:
    async def ok() -> bool:
        return bool((await check())["ok"])

    return ok
