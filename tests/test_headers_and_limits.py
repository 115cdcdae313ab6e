"""The HTTP edge's defences as a client sees them: security headers on every response, rate limits
answering 429 with Retry-After (counted in the shared key-value store), a database outage
answering 503 with Retry-After instead of 500, and /readyz telling anonymous callers the verdict
only."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from approvals.clock import ManualClock
from bot.app import create_app
from bot.settings import DingTalkSettings, EdgeSettings, RateLimit, Settings
from org.signed_links import LinkTarget
from org.signed_links import sign as sign_personal
from services.health import database_unavailable
from services.rate_limits import RateLimiter
from storage.db import Database
from storage.kv import KeyValueStore
from storage.kv_memory import MemoryStore
from storage.kv_redis import RedisStore
from tests.conftest import REDIS_URL, settings_for

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LINK_SECRET = "link-secret-for-tests-0123456789"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def edge(**limits: Any) -> EdgeSettings:
    """Edge settings with every limit off except the ones given."""
    off: dict[str, Any] = {
        "sign_in_per_ip": None,
        "sign_in_per_account": None,
        "api_per_token": None,
        "callbacks_per_ip": None,
    }
    return EdgeSettings(**(off | limits))


async def app_client(aiohttp_client: Any, settings: Settings, clock: ManualClock | None = None) -> Any:
    return await aiohttp_client(create_app(settings, clock=clock))


# -- headers -----------------------------------------------------------------------------------------


async def test_pages_get_a_content_security_policy_and_are_not_framed(
    org_db: Database, aiohttp_client: Any
) -> None:
    client = await app_client(aiohttp_client, settings_for(org_db))

    for path in ("/m/sign-in", "/console", "/checkin/not-a-token-at-all"):
        resp = await client.get(path)
        assert resp.content_type == "text/html", path
        csp = resp.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"].startswith("'self' 'sha256-"), path  # the check-in script's hash
        assert "'unsafe-inline'" not in directives["script-src"]
        assert directives["object-src"] == "'none'"
        assert directives["base-uri"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"


async def test_json_files_and_redirects_get_a_deny_everything_policy(
    org_db: Database, aiohttp_client: Any
) -> None:
    client = await app_client(aiohttp_client, settings_for(org_db))

    for path, headers in (
        ("/api/v1/templates", AUTH),
        ("/healthz", {}),
        ("/api/v1/templates", {}),  # a 401
        ("/m/static/workspace.js", {}),
        ("/", {}),  # a redirect
    ):
        resp = await client.get(path, headers=headers, allow_redirects=False)
        assert resp.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'", path
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        assert resp.headers["X-Frame-Options"] == "DENY", path
        assert resp.headers["Referrer-Policy"] == "no-referrer", path


async def test_dingtalk_jsapi_may_load_and_framing_sites_can_be_allowed(
    org_db: Database, aiohttp_client: Any
) -> None:
    settings = settings_for(
        org_db,
        dingtalk=DingTalkSettings(
            app_key="k", app_secret="s", corp_id="ding123", jsapi_url="https://g.alicdn.com/dingding/x.js"
        ),
        edge=EdgeSettings(frame_ancestors=("https://oa.example.com",)),
    )
    client = await app_client(aiohttp_client, settings)

    resp = await client.get("/m/sign-in")

    csp = resp.headers["Content-Security-Policy"]
    assert "https://g.alicdn.com" in csp.split("script-src", 1)[1].split(";")[0]
    assert "frame-ancestors https://oa.example.com" in csp
    assert "X-Frame-Options" not in resp.headers


# -- rate limits -------------------------------------------------------------------------------------


def assert_too_many(resp: Any, body: dict[str, Any], window_s: int) -> None:
    assert resp.status == 429, body
    assert body["error"] == "too_many_requests"
    assert "请求过于频繁" in body["message"]
    assert 1 <= int(resp.headers["Retry-After"]) <= window_s


async def test_sign_in_routes_are_limited_per_client_address(org_db: Database, aiohttp_client: Any) -> None:
    settings = settings_for(
        org_db, edge=edge(sign_in_per_ip=RateLimit(3, 60), trusted_proxies=("127.0.0.1/32",))
    )
    client = await app_client(aiohttp_client, settings)

    for _ in range(3):
        assert (await client.get("/m/sign-in")).status == 200
    resp = await client.get("/m/sign-in")
    assert_too_many(resp, await resp.json(), 60)
    # The same proxy forwarding for another visitor: that visitor has their own count.
    other = await client.get("/m/sign-in", headers={"X-Forwarded-For": "203.0.113.7"})
    assert other.status == 200
    # Pages other than sign-in are not counted.
    assert (await client.get("/healthz")).status == 200


async def test_sign_ins_of_one_person_are_limited(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    settings = settings_for(
        org_db, edge=edge(sign_in_per_account=RateLimit(2, 600)), checkins={"link_secret": LINK_SECRET}
    )
    client: TestClient[Any, Any] = await app_client(aiohttp_client, settings, clock)
    target = LinkTarget(user="u_wu", path="/m/todo", expires_at=clock.now().replace(year=2027))
    token = sign_personal(LINK_SECRET.encode(), target)

    statuses = []
    for _ in range(3):
        client.session.cookie_jar.clear()  # a new browser each time: a new session each time
        statuses.append((await client.get(f"/m/l/{token}", allow_redirects=False)).status)

    assert statuses[:2] == [303, 303]
    assert statuses[2] == 429


async def test_api_is_limited_per_token(org_db: Database, aiohttp_client: Any) -> None:
    client = await app_client(aiohttp_client, settings_for(org_db, edge=edge(api_per_token=RateLimit(5, 60))))

    for _ in range(5):
        assert (await client.get("/api/v1/templates", headers=AUTH)).status == 200
    resp = await client.get("/api/v1/templates", headers=AUTH)
    assert_too_many(resp, await resp.json(), 60)
    # A caller without a token is still told it needs one.
    assert (await client.get("/api/v1/templates")).status == 401


async def test_callbacks_are_limited_per_source_address(org_db: Database, aiohttp_client: Any) -> None:
    client = await app_client(
        aiohttp_client, settings_for(org_db, edge=edge(callbacks_per_ip=RateLimit(2, 30)))
    )

    for _ in range(2):
        assert (await client.post("/callbacks/wecom?msg_signature=x", data=b"<xml/>")).status != 429
    resp = await client.post("/callbacks/dingtalk/robot", json={})
    assert_too_many(resp, await resp.json(), 30)


async def test_default_limits_are_on_and_far_above_an_office() -> None:
    limits = Settings().edge
    assert limits.sign_in_per_ip == RateLimit(600, 60)
    assert limits.sign_in_per_account == RateLimit(120, 600)
    assert limits.api_per_token == RateLimit(6000, 60)
    assert limits.callbacks_per_ip == RateLimit(3000, 60)


@pytest.mark.skipif(REDIS_URL is None, reason="needs OABOT_TEST_REDIS_URL")
async def test_replicas_sharing_redis_share_the_counts(org_db: Database, aiohttp_client: Any) -> None:
    prefix = f"oabot-test:{uuid.uuid4().hex[:12]}:"
    settings = settings_for(
        org_db, redis_url=REDIS_URL, redis_prefix=prefix, edge=edge(api_per_token=RateLimit(4, 60))
    )
    first = await app_client(aiohttp_client, settings)
    second = await app_client(aiohttp_client, settings)
    try:
        statuses = [
            (await replica.get("/api/v1/templates", headers=AUTH)).status
            for replica in (first, second, first, second, first)
        ]
        assert statuses == [200, 200, 200, 200, 429]
    finally:
        assert REDIS_URL is not None
        cleanup = RedisStore(REDIS_URL, prefix=prefix)
        await cleanup.purge_prefix()
        await cleanup.close()


async def test_the_limiter_counts_a_fixed_window_on_each_store(kv: KeyValueStore) -> None:
    limiter = RateLimiter(kv)

    answers = [await limiter.hit("test", "10.0.0.1", count=3, window_s=60) for _ in range(5)]

    assert answers[:3] == [None, None, None]
    assert all(a is not None and 1 <= a <= 60 for a in answers[3:])
    assert await limiter.hit("test", "10.0.0.2", count=3, window_s=60) is None  # its own count
    assert await limiter.hit("other", "10.0.0.1", count=3, window_s=60) is None  # its own bucket


async def test_the_window_ends_and_counting_starts_again() -> None:
    now = [1000.0]
    limiter = RateLimiter(MemoryStore(clock=lambda: now[0]))
    assert [await limiter.hit("b", "x", count=1, window_s=10) for _ in range(2)] == [None, 10]
    now[0] += 4.2
    assert await limiter.hit("b", "x", count=1, window_s=10) == 6
    now[0] += 6
    assert await limiter.hit("b", "x", count=1, window_s=10) is None


async def test_an_unreachable_store_lets_requests_through() -> None:
    store = RedisStore(f"redis://127.0.0.1:{closed_port()}/0", prefix="oabot-test:")
    try:
        assert await RateLimiter(store).hit("b", "x", count=1, window_s=10) is None
        assert await RateLimiter(store).hit("b", "x", count=1, window_s=10) is None
    finally:
        await store.close()


# -- a database outage -------------------------------------------------------------------------------


def assert_db_unavailable(resp: Any, body: dict[str, Any]) -> None:
    assert resp.status == 503, body
    assert body["error"] == "database_unavailable"
    assert body["message"] == "数据库暂时无法访问，请稍后重试。"
    assert int(resp.headers["Retry-After"]) > 0


async def test_postgres_that_does_not_answer_is_a_503_with_retry_after(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/oabot"
    settings = Settings(database_url=url, api_token=TOKEN, run_background=False)
    client = await app_client(aiohttp_client, settings)

    for path in ("/api/v1/tasks?assignee=u_wu", "/api/v1/requests?initiator=u_wu", "/checkin/" + "x" * 40):
        resp = await client.get(path, headers=AUTH)
        assert_db_unavailable(resp, await resp.json())


class TcpProxy:
    """A TCP relay to PostgreSQL that can be cut: the database "goes away" under a running app."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        """Stop listening and drop every relayed connection."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()


async def test_postgres_going_away_under_a_running_app_is_a_503(
    org_db: Database, aiohttp_client: Any
) -> None:
    if org_db.is_sqlite:
        pytest.skip("a PostgreSQL server going away; SQLite is covered by the test below")
    real = make_url(org_db.url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.start()
    settings = settings_for(org_db)
    settings = settings.with_overrides(
        database_url=settings.database_url.replace(f":{real.port or 5432}/", f":{proxy.port}/", 1)
    )
    client = await app_client(aiohttp_client, settings)
    assert (await client.get("/api/v1/tasks?assignee=u_wu", headers=AUTH)).status == 200

    await proxy.cut()
    resp = await client.get("/api/v1/tasks?assignee=u_wu", headers=AUTH)

    assert_db_unavailable(resp, await resp.json())


async def test_sqlite_file_that_cannot_be_opened_is_a_503(aiohttp_client: Any, tmp_path: Path) -> None:
    blocked = tmp_path / "oabot.db"
    blocked.mkdir()  # a directory where the database file should be
    settings = Settings(database_url=f"sqlite+aiosqlite:///{blocked}", api_token=TOKEN, run_background=False)
    client = await app_client(aiohttp_client, settings)

    resp = await client.get("/api/v1/tasks?assignee=u_wu", headers=AUTH)

    assert_db_unavailable(resp, await resp.json())


async def test_a_bug_is_still_a_500_not_an_outage(org_db: Database, aiohttp_client: Any) -> None:
    app = create_app(settings_for(org_db))

    async def broken(request: Any) -> Any:
        raise OSError("no such file: /etc/oabot/missing.yaml")

    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app)

    assert (await client.get("/broken")).status == 500


# -- /readyz -----------------------------------------------------------------------------------------


async def test_readyz_tells_anonymous_callers_the_verdict_only(aiohttp_client: Any, tmp_path: Path) -> None:
    redis_port = closed_port()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/app.db",
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        api_token=TOKEN,
        run_background=False,
    )
    client = await app_client(aiohttp_client, settings)

    anonymous = await client.get("/readyz")
    wrong = await client.get("/readyz", headers={"Authorization": "Bearer not-a-token-0123456789"})
    admin = await client.get("/readyz", headers=AUTH)

    for resp in (anonymous, wrong):
        assert resp.status == 503
        assert await resp.json() == {"status": "not_ready"}
        assert str(redis_port) not in await resp.text()
    assert admin.status == 503
    body = await admin.json()
    assert body["checks"]["kv"]["detail"] == f"redis at redis://127.0.0.1:{redis_port}/0 does not answer"
    assert "kv" in body["failing"]


def test_a_locked_sqlite_database_counts_as_an_outage_and_bad_data_does_not(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    waiter = sqlite3.connect(path, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError) as locked:
            waiter.execute("INSERT INTO t VALUES (1)")
    finally:
        waiter.close()
        holder.close()
    wrapped = sa_exc.OperationalError("INSERT INTO t VALUES (?)", (1,), locked.value)

    assert database_unavailable(wrapped)
    bad_data = asyncpg.exceptions.DataError("invalid input for query argument $1")
    assert not database_unavailable(sa_exc.InterfaceError("SELECT $1", ("x",), bad_data))
    assert not database_unavailable(
        sa_exc.OperationalError("SELECT nope", (), sqlite3.OperationalError("no such column: nope"))
    )
