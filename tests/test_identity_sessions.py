"""Browser sessions: a sign-in lasts until it expires, the person signs out, or the person leaves."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.clock import ManualClock
from notifications.messages import message_for
from org.errors import Category
from org.loader import load_org_file
from services.directory import Directory
from services.identity import SESSION_TTL, Sessions, SessionsUnavailable
from services.sign_in import SignInGuard, SignInUnavailable
from storage.db import Database
from storage.kv import KeyValueStore, KVUnavailable
from storage.kv_memory import MemoryStore
from storage.org_repo import import_org
from tests.conftest import DEMO_ORG


async def test_a_session_names_its_person_until_signed_out(
    org_db: Database, kv: KeyValueStore, clock: ManualClock
):
    sessions = Sessions(kv, Directory(org_db, clock.now), clock.now)
    session = await sessions.start("u_sun", via="wecom")
    found = await sessions.get(session.id)
    assert found is not None and found[1].id == "u_sun" and found[0].csrf == session.csrf
    assert await sessions.get(session.id + "x") is None
    assert await sessions.get(None) is None
    await sessions.end(session.id)
    assert await sessions.get(session.id) is None


async def test_a_session_ends_when_it_expires(org_db: Database, kv: KeyValueStore, clock: ManualClock):
    sessions = Sessions(kv, Directory(org_db, clock.now), clock.now)
    session = await sessions.start("u_sun", via="link")
    clock.advance(SESSION_TTL - timedelta(minutes=1))
    assert await sessions.get(session.id) is not None
    clock.advance(timedelta(minutes=2))
    assert await sessions.get(session.id) is None


async def test_a_person_who_left_is_signed_out_at_once(
    org_db: Database, kv: KeyValueStore, clock: ManualClock
):
    directory = Directory(org_db, clock.now)
    sessions = Sessions(kv, directory, clock.now)
    session = await sessions.start("u_wu", via="dingtalk")
    org = load_org_file(DEMO_ORG)
    del org.users["u_wu"]  # gone from the org file: the re-import deactivates him
    async with org_db.transaction() as s:
        await import_org(s, org, now=clock.now())
    await directory.org(fresh=True)
    assert await sessions.get(session.id) is None


async def test_the_store_keeps_no_usable_session_id(org_db: Database, kv: KeyValueStore, clock: ManualClock):
    sessions = Sessions(kv, Directory(org_db, clock.now), clock.now)
    session = await sessions.start("u_sun", via="wecom")
    assert await kv.get("session:" + session.id) is None
    assert session.id not in session.log_id


class _DownStore(MemoryStore):
    """A key-value store whose server does not answer."""

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None:
        raise KVUnavailable("down")

    async def get(self, key: str) -> str | None:
        raise KVUnavailable("down")

    async def set_if_absent(self, key: str, value: str, ttl_s: float) -> bool:
        raise KVUnavailable("down")


async def test_a_store_that_does_not_answer_refuses_sign_in_as_unavailable(
    org_db: Database, clock: ManualClock
):
    down = _DownStore()
    with pytest.raises(SessionsUnavailable) as refused:
        await Sessions(down, Directory(org_db, clock.now), clock.now).start("u_sun", via="wecom")
    assert refused.value.category == Category.UNAVAILABLE and "稍后重试" in message_for(refused.value)
    guard = SignInGuard(down, org_db, secret="x" * 32, now=clock.now)
    with pytest.raises(SignInUnavailable):
        await guard.new_state("/m/")
    with pytest.raises(SignInUnavailable):
        await guard.first_use("wecom", "code-1")
    assert await Sessions(down, Directory(org_db, clock.now), clock.now).get("anything") is None
