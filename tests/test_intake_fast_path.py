"""The callback intake's fast path keeps its guarantees: correctly signed callbacks skip the
per-address limiter while unsigned junk is still limited (and then refused before it is read);
the inbox's unique key alone stops repeats, without the key-value store; a pooled PostgreSQL
connection is pinged only after sitting idle, and one that died costs one failed operation;
in the `all` role the worker gives way to callbacks that are arriving, without stopping."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from approvals.clock import ManualClock
from bot.app import create_app
from bot.platforms import inbox as inbox_module
from bot.platforms.inbox import Inbox
from bot.platforms.wecom.crypto import WeComCrypto
from bot.platforms.wecom.inbound import MalformedMessage, parse_xml
from bot.settings import EdgeSettings, RateLimit, WeComSettings
from bot.web.rate_limits import CallbackBlocks
from handlers.events import Event, Sender, TextMessage
from storage import db as db_module
from storage.db import Database, database_unreachable
from storage.kv_memory import MemoryStore
from tests.conftest import PG_URL, settings_for

CORP = "wwfastpath01"
TOKEN = "fast-path-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def _event(n: int) -> TextMessage:
    return TextMessage(sender=Sender("wecom", "wuhao"), event_id=f"fast:{n}", text=f"第{n}条")


class CountingStore(MemoryStore):
    """A key-value store that counts every call made to it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name in {"get", "set", "set_if_absent", "incr", "ttl", "delete"}:
            super().__getattribute__("calls").append(name)
        return attr


def _wecom_settings() -> WeComSettings:
    return WeComSettings(
        corp_id=CORP,
        agent_id=1000002,
        secret="s",
        token=TOKEN,
        aes_key=AES_KEY,
        api_base="http://127.0.0.1:9",
    )


def _signed_text(n: int, account: str = "wuhao") -> tuple[str, bytes]:
    crypto = WeComCrypto(TOKEN, AES_KEY, CORP)
    ts = str(int(time.time()))
    inner = (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{account}]]></FromUserName>"
        f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content>"
        f"<MsgId>{7000 + n}</MsgId><AgentID>1000002</AgentID></xml>"
    )
    sealed = crypto.seal(inner, ts, f"nonce{n}")
    body = f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{sealed.encrypted}]]></Encrypt></xml>"
    return f"/callbacks/wecom?msg_signature={sealed.signature}&timestamp={ts}&nonce=nonce{n}", body.encode()


def _limits(count: int) -> EdgeSettings:
    return EdgeSettings(
        sign_in_per_ip=None,
        sign_in_per_account=None,
        api_per_token=None,
        callbacks_per_ip=RateLimit(count, 60),
    )


# -- the limiter -----------------------------------------------------------------------------------


async def test_signed_callbacks_are_never_limited_but_unsigned_junk_is(
    org_db: Database, aiohttp_client: Any
) -> None:
    settings = settings_for(org_db, edge=_limits(3), wecom=_wecom_settings())
    app = create_app(settings)
    client = await aiohttp_client(app)

    # Ten times the limit of correctly signed callbacks from one address: all stored and acked.
    for n in range(30):
        path, body = _signed_text(n)
        assert (await client.post(path, data=body)).status == 200
    async with org_db.session() as s:
        assert (await s.execute(text("SELECT count(*) FROM inbox"))).scalar_one() == 30

    # Forged ones count: three are answered as forged, the fourth is refused for the rate.
    forged = "/callbacks/wecom?msg_signature=forged&timestamp=1&nonce=x"
    for _ in range(3):
        assert (await client.post(forged, data=b"<xml><Encrypt>x</Encrypt></xml>")).status in (400, 403)
    over = await client.post(forged, data=b"<xml><Encrypt>x</Encrypt></xml>")
    assert over.status == 429
    assert int(over.headers["Retry-After"]) >= 1
    assert (await over.json())["error"] == "too_many_requests"


async def test_an_address_over_the_limit_is_refused_before_its_callback_is_read() -> None:
    now = [100.0]
    blocks = CallbackBlocks(now=lambda: now[0])
    assert blocks.retry_after("10.0.0.9") is None
    blocks.block("10.0.0.9", 30)
    assert blocks.retry_after("10.0.0.9") == 30
    assert blocks.retry_after("10.0.0.8") is None  # only that address
    now[0] += 29.5
    assert blocks.retry_after("10.0.0.9") == 1
    now[0] += 1
    assert blocks.retry_after("10.0.0.9") is None  # the window is over: counted afresh


def test_the_in_process_blocks_stay_bounded_under_many_addresses() -> None:
    now = [0.0]
    blocks = CallbackBlocks(now=lambda: now[0])
    for n in range(3 * CallbackBlocks.MAX_ADDRESSES):
        blocks.block(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", 60)
    assert len(blocks._until) <= CallbackBlocks.MAX_ADDRESSES
    last = 3 * CallbackBlocks.MAX_ADDRESSES - 1
    assert blocks.retry_after(f"10.{last // 65536}.{last // 256 % 256}.{last % 256}") == 60  # the newest kept


# -- dedupe by the unique key alone ------------------------------------------------------------------


async def test_repeats_are_stopped_by_the_database_with_no_key_value_round_trip(
    db: Database, clock: ManualClock
) -> None:
    seen: list[str] = []

    async def process(event: Event) -> None:
        seen.append(event.event_id)

    kv = CountingStore()
    inbox = Inbox(db, kv, process, now=clock.now)
    try:
        assert await inbox.accept(_event(1)) is True
        assert await inbox.accept(_event(1)) is False  # a later batch: the unique key refuses it
        both = await asyncio.gather(inbox.accept(_event(2)), inbox.accept(_event(2)))  # the same batch
        assert sorted(both) == [False, True]
        assert kv.calls == []
        assert await inbox.drain() == 2
        assert seen == ["fast:1", "fast:2"]
    finally:
        await inbox.close()


# -- pooled connections -----------------------------------------------------------------------------


@pytest.mark.skipif(PG_URL is None, reason="needs OABOT_TEST_DATABASE_URL")
async def test_a_busy_pool_is_not_pinged_and_an_idle_dead_connection_is_replaced(
    empty_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if empty_db.is_sqlite:
        pytest.skip("PostgreSQL pool")
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

    pings: list[object] = []
    real_ping = AsyncAdapt_asyncpg_connection.ping

    def counted_ping(self: Any) -> None:
        pings.append(self)
        real_ping(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted_ping)
    for _ in range(5):
        async with empty_db.session() as s:
            await s.execute(text("SELECT 1"))
    assert pings == []  # checked out five times in a row: no ping round trip

    # The pooled connection dies while idle (a restart, an idle timeout) ...
    async with empty_db.session() as s:
        pid = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    admin = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)
    # ... and has sat longer than the idle limit: the checkout pings it and connects afresh.
    monkeypatch.setattr(db_module, "IDLE_PING_S", 0.0)
    async with empty_db.session() as s:
        assert (await s.execute(text("SELECT 1"))).scalar_one() == 1
    assert len(pings) == 1


@pytest.mark.skipif(PG_URL is None, reason="needs OABOT_TEST_DATABASE_URL")
async def test_a_connection_that_died_in_use_costs_one_failed_operation(empty_db: Database) -> None:
    if empty_db.is_sqlite:
        pytest.skip("PostgreSQL pool")
    async with empty_db.session() as s:
        pids = {(await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()}
    admin = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for pid in pids:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)
    # Used again at once (not idle long enough for a ping): this one operation fails as an outage ...
    with pytest.raises(Exception) as failed:
        async with empty_db.session() as s:
            await s.execute(text("SELECT 1"))
    assert database_unreachable(failed.value)
    # ... and the next one gets a fresh connection.
    async with empty_db.session() as s:
        assert (await s.execute(text("SELECT 1"))).scalar_one() == 1


# -- the worker gives way to intake ------------------------------------------------------------------


async def test_the_worker_pauses_while_callbacks_arrive_and_still_finishes(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def process(event: Event) -> None:
        await asyncio.sleep(0.05)  # an event that takes a while

    inbox = Inbox(db, MemoryStore(), process, now=clock.now)
    try:
        for n in range(2):
            assert await inbox.accept(_event(n)) is True
        inbox.writer.last_arrival = -1e9  # quiet: no pause
        assert await inbox.run_once() == 2
        assert inbox.paused_s == 0

        # Callbacks keep arriving (a generous window, so a slow machine cannot make it quiet).
        monkeypatch.setattr(inbox_module, "INTAKE_BUSY_S", 30.0)
        for n in range(2, 4):
            assert await inbox.accept(_event(n)) is True
        started = time.perf_counter()
        assert await inbox.run_once() == 2  # both events are still done
        took = time.perf_counter() - started
        # ...with a pause after each, INTAKE_SHARE times as long as the event took.
        assert inbox.paused_s >= 2 * 0.05 * inbox_module.INTAKE_SHARE * 0.9
        assert took >= inbox.paused_s
        async with db.session() as s:
            statuses = (await s.execute(text("SELECT status FROM inbox"))).scalars().all()
        assert set(statuses) == {"done"}
    finally:
        await inbox.close()


# -- reading WeCom XML -------------------------------------------------------------------------------


def test_wecom_xml_reads_direct_children_like_an_element_tree() -> None:
    data = (
        "<xml><A> x <b>in</b> tail </A><C/><A>2</A><D>&amp;&lt;中文</D>"
        "<E><![CDATA[ <密> ]]></E><SelectedItems><SelectedItem><Q>k</Q></SelectedItem></SelectedItems></xml>"
    )
    assert parse_xml(data) == {"A": "2", "C": "", "D": "&<中文", "E": "<密>", "SelectedItems": ""}
    assert parse_xml(b"<xml><A>x <b/> y</A></xml>") == {"A": "x"}  # text before the first sub-element


@pytest.mark.parametrize(
    "data",
    [
        b'<!DOCTYPE x [<!ENTITY a "boom">]><xml><A>&a;</A></xml>',
        b'<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><xml/>',
        b"<xml><A>&undeclared;</A></xml>",
        b"<xml/><xml/>",
        b"<xml><A></B></xml>",
        b"\xff\xfe<xml/>",
    ],
    ids=["entity", "parameter_entity", "undeclared_entity", "two_roots", "mismatched", "not_utf8"],
)
def test_wecom_xml_with_declarations_or_broken_structure_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_xml(data)


# -- the event loop --------------------------------------------------------------------------------


def test_serve_runs_on_uvloop_when_installed_and_on_asyncio_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from bot.cli.serve import StartupError, loop_factory
    from bot.settings import Settings

    assert Settings().event_loop == "auto"
    assert loop_factory("asyncio") is None
    uvloop = pytest.importorskip("uvloop")
    assert loop_factory("auto") is uvloop.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop
    monkeypatch.setitem(sys.modules, "uvloop", None)  # not installed
    assert loop_factory("auto") is None
    with pytest.raises(StartupError, match="uvloop is not installed"):
        loop_factory("uvloop")


async def test_signed_dingtalk_card_taps_are_never_limited_but_forged_ones_are(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    from tests.fake_dingtalk import card_tap, sealed_callback
    from tests.test_dingtalk_callbacks import dingtalk_settings

    settings = settings_for(org_db, edge=_limits(2), dingtalk=dingtalk_settings())
    client = await aiohttp_client(create_app(settings, clock=clock))
    now_ms = int(clock.now().timestamp() * 1000)
    for n in range(6):  # three times the limit, each one correctly signed
        cb = sealed_callback(
            card_tap(f"oabot_20261123-fast{n:04d}-1_v1", "010008", "approve"), timestamp_ms=now_ms
        )
        resp = await client.post(
            f"/callbacks/dingtalk/card?{cb.query}", data=cb.body, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 200, await resp.text()
    statuses = [
        (
            await client.post(
                "/callbacks/dingtalk/card?signature=x&timestamp=1&nonce=n", json={"encrypt": "x"}
            )
        ).status
        for _ in range(3)
    ]
    assert all(s in (400, 403) for s in statuses[:2]) and statuses[2] == 429
