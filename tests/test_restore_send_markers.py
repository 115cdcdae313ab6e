"""A restore that keeps Redis loses no message: send markers live in the database they describe.

The marker used to be `wecom:sent:<outbox id>` in the key-value store; after `oabot restore` put
back a backup whose rows were still pending, the kept store said "already sent" and those
replies never went out (701 of 1,200 in one run). Here: 30 replies, 12 of them sent before the
backup; all 30 sent; the backup restored with the same store (Redis when configured); the 18 the
backup has as pending go out again, to WeCom through its real client (respx).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx

from bot.cli import main
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.delivery import WeComDelivery
from bot.settings import WeComSettings
from notifications.dispatcher import OutboxDispatcher
from org.model import Org
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.kv import KeyValueStore
from storage.kv_memory import MemoryStore
from storage.kv_redis import RedisStore
from tests.conftest import REDIS_URL
from tests.helpers import T0, demo_org

BASE = "https://qyapi.example.test"
SETTINGS = WeComSettings(
    corp_id="ww1", agent_id=1000002, secret="s", token="t", aes_key="a" * 43, api_base=BASE
)
ORG = demo_org()


async def the_org() -> Org:
    return ORG


@pytest.fixture(params=["memory", "redis"])
def kept_store(request: pytest.FixtureRequest) -> KeyValueStore:
    """The store kept across the restore (made outside any event loop; used in the test's own)."""
    if request.param == "memory":
        return MemoryStore()
    if REDIS_URL is None:
        pytest.skip("OABOT_TEST_REDIS_URL is not set")
    return RedisStore(REDIS_URL, prefix=f"oabot-restore:{uuid.uuid4().hex[:12]}:")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OABOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'oabot.db'}")
    monkeypatch.setenv("OABOT_BACKUP_DIR", str(tmp_path / "backups"))
    return tmp_path


@pytest.fixture
def sent() -> Iterator[list[str]]:
    """The texts WeCom accepted, in order."""
    texts: list[str] = []

    def send(request: httpx.Request) -> httpx.Response:
        texts.append(json.loads(request.content)["text"]["content"])
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": "m"})

    with respx.mock(assert_all_called=False) as mock:
        mock.get(f"{BASE}/cgi-bin/gettoken").mock(
            return_value=httpx.Response(200, json={"errcode": 0, "access_token": "tok", "expires_in": 7200})
        )
        mock.post(f"{BASE}/cgi-bin/message/send").mock(side_effect=send)
        yield texts


async def dispatch(url: str, kv: KeyValueStore, *, add: int = 0, start: int = 0) -> None:
    """Add `add` replies to 王芳 (numbered from `start`), then send everything due."""
    db = Database(url)
    try:
        async with db.transaction() as s:
            s.add_all(
                OutboxRow.due_now(
                    kind="text", recipient="u_wang", payload={"text": f"回复{start + i}"}, now=T0
                )
                for i in range(add)
            )
        async with httpx.AsyncClient() as http:
            delivery = WeComDelivery(WeComClient(http, SETTINGS, kv), db, kv, lambda: T0)
            await OutboxDispatcher(db, [delivery], org=the_org, now=lambda: T0).drain()
    finally:
        await db.dispose()


def backup_path(out: str) -> str:
    line = next(line for line in out.splitlines() if line.startswith("backup written: "))
    return line.removeprefix("backup written: ").rsplit(" (", 1)[0]


def test_a_restore_that_keeps_redis_sends_every_reply_the_backup_has_pending(
    env: Path, kept_store: KeyValueStore, sent: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{env / 'oabot.db'}"
    assert main(["migrate"]) == 0
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(dispatch(url, kept_store, add=12))
        assert len(sent) == 12
        loop.run_until_complete(add_unsent(url))
        capsys.readouterr()
        assert main(["backup"]) == 0  # 12 sent, 18 pending
        backup = backup_path(capsys.readouterr().out)
        loop.run_until_complete(dispatch(url, kept_store))
        assert sent == [f"回复{i}" for i in range(30)]

        assert main(["restore", backup]) == 0
        loop.run_until_complete(dispatch(url, kept_store))
    finally:
        loop.run_until_complete(kept_store.close())
        loop.close()

    assert sent[30:] == [f"回复{i}" for i in range(12, 30)], (
        "every reply pending in the backup went out again"
    )
    assert sent[:12] == [f"回复{i}" for i in range(12)] and len(sent) == 48, "none sent before it went twice"


async def add_unsent(url: str) -> None:
    """Add replies 12..29 without sending them (the dispatcher has not reached them yet)."""
    db = Database(url)
    try:
        async with db.transaction() as s:
            s.add_all(
                OutboxRow.due_now(kind="text", recipient="u_wang", payload={"text": f"回复{i}"}, now=T0)
                for i in range(12, 30)
            )
    finally:
        await db.dispose()
