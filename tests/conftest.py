"""Shared fixtures.

Storage tests run on SQLite always and on PostgreSQL when OABOT_TEST_DATABASE_URL is set;
key-value tests run on the in-process store always and on Redis when OABOT_TEST_REDIS_URL is
set. When a URL is set but the server does not answer, the tests fail: they never skip.
Each test gets its own PostgreSQL schema and its own Redis key prefix, dropped afterwards,
so two runs at once do not collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from approvals.clock import ManualClock
from storage.db import Database

PG_URL = os.environ.get("OABOT_TEST_DATABASE_URL") or None
REDIS_URL = os.environ.get("OABOT_TEST_REDIS_URL") or None
ROOT = Path(__file__).resolve().parent.parent
DEMO_ORG = ROOT / "bot" / "data" / "demo_org.yaml"
TEST_TRAIL_KEY = "test-trail-key-0123456789abcdef0123456789"


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_pg_schema(url: str) -> str:
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    return schema


async def drop_pg_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def create_tables(database: Database) -> None:
    from storage.models import metadata

    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database with no tables (for migration tests)."""
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path}/test.db")
        try:
            yield database
        finally:
            await database.dispose()
        return
    if PG_URL is None:
        pytest.skip("OABOT_TEST_DATABASE_URL is not set")
    schema = await create_pg_schema(PG_URL)
    database = Database(PG_URL, schema=schema)
    try:
        yield database
    finally:
        await database.dispose()
        await drop_pg_schema(PG_URL, schema)


@pytest.fixture
async def db(empty_db: Database) -> Database:
    """A database with every table, on SQLite and (when configured) PostgreSQL."""
    await create_tables(empty_db)
    return empty_db


@pytest.fixture(params=["memory", "redis"])
async def kv(request: pytest.FixtureRequest) -> AsyncIterator[object]:
    """A key-value store: the in-process one and (when configured) Redis."""
    if request.param == "memory":
        from storage.kv_memory import MemoryStore

        store = MemoryStore()
        try:
            yield store
        finally:
            await store.close()
        return
    if REDIS_URL is None:
        pytest.skip("OABOT_TEST_REDIS_URL is not set")
    from storage.kv_redis import RedisStore

    prefix = f"oabot-test:{uuid.uuid4().hex[:12]}:"
    store = RedisStore(REDIS_URL, prefix=prefix)
    try:
        yield store
    finally:
        await store.purge_prefix()
        await store.close()


@pytest.fixture
def clock() -> ManualClock:
    # Monday 2026-11-23 10:00 in Shanghai.
    return ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))


@pytest.fixture(autouse=True)
def _trail_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI and the e2e processes read settings from the environment: give them the fixed
    trail key too, so no test writes ./var/trail.key into the checkout (tests of the key file
    remove it again)."""
    monkeypatch.setenv("OABOT_TRAIL_KEY", TEST_TRAIL_KEY)


def settings_for(database: Database, **overrides: object):  # type: ignore[no-untyped-def]
    """Settings that point a whole app at the test database (PostgreSQL schema included)."""
    from bot.settings import Settings

    url = database.url
    if database.schema:
        url = f"{url}?options=-csearch_path%3D{database.schema}"
    values: dict[str, object] = {
        "database_url": url,
        "api_token": "test-token-0123456789",
        "run_background": False,
        "public_url": "http://oabot.test",
        "console": True,
        # The console as the demo runs it: its person picker, no sign-in (outside demo mode it asks
        # for an org admin's session; tests of that pass demo=False).
        "demo": True,
        # No scheduled backups unless a test asks: a scan past 07:00/12:00/19:00 would write them.
        "backup_times": (),
        # A fixed trail key, so tests write no key file (./var/trail.key).
        "trail_key": TEST_TRAIL_KEY,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def import_demo_org(database: Database) -> None:
    from org.loader import load_org_file
    from storage.org_repo import import_org

    async with database.transaction() as session:
        await import_org(session, load_org_file(DEMO_ORG), now=datetime.now(UTC))


@pytest.fixture
async def org_db(db: Database) -> Database:
    """A database with every table and the demo org imported."""
    await import_demo_org(db)
    return db


class Api:
    """A test client for /api/v1 with the bearer token, and a hand-driven outbox."""

    def __init__(self, client: object, app: object) -> None:
        self.client = client
        self.app = app
        self.headers = {"Authorization": "Bearer test-token-0123456789"}

    async def call(
        self, method: str, path: str, json: object = None, expect: int | None = None
    ) -> tuple[int, object]:
        resp = await self.client.request(method, "/api/v1" + path, json=json, headers=self.headers)  # type: ignore[attr-defined]
        body = await resp.json()
        if expect is not None:
            assert resp.status == expect, (resp.status, body)
        return resp.status, body

    async def submit(self, template: str, initiator: str, form: dict, **kw: object) -> dict:
        _, body = await self.call(
            "POST",
            "/requests",
            {"template": template, "initiator": initiator, "form": form, **kw},
            expect=201,
        )
        return body  # type: ignore[return-value]

    async def pending(self, user: str) -> list[dict]:
        _, body = await self.call("GET", f"/tasks?assignee={user}", expect=200)
        return body["items"]  # type: ignore[index,no-any-return]

    async def decide(self, user: str, action: str = "approve", expect: int = 200, **kw: object) -> dict:
        tasks = await self.pending(user)
        assert tasks, f"{user} has no pending task"
        t = tasks[0]
        _, body = await self.call(
            "POST",
            f"/requests/{t['request_id']}/actions",
            {"action": action, "actor": user, "task_id": t["task_id"], "version": t["version"], **kw},
            expect=expect,
        )
        return body  # type: ignore[return-value]

    async def drain(self) -> None:
        from bot.keys import DISPATCHER

        await self.app[DISPATCHER].drain()  # type: ignore[index]


@pytest.fixture
async def api(org_db: Database, aiohttp_client, clock: ManualClock) -> Api:  # type: ignore[no-untyped-def]
    from bot.app import create_app

    app = create_app(settings_for(org_db), clock=clock)
    client = await aiohttp_client(app)
    return Api(client, app)
