"""The durable inbox: one stored event per delivery, processed once, leases respected."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from approvals.clock import ManualClock
from bot.platforms.inbox import LEASE, Inbox
from handlers.events import Sender, TextMessage
from storage.kv_memory import MemoryStore
from storage.platform_models import InboxRow


def _event(event_id: str = "msg:1") -> TextMessage:
    return TextMessage(sender=Sender("wecom", "wuhao"), event_id=event_id, text="待办")


async def test_repeat_deliveries_store_one_event_and_process_it_once(db, clock: ManualClock) -> None:
    seen: list[str] = []

    async def process(event: object) -> None:
        seen.append(event.event_id)  # type: ignore[attr-defined]

    inbox = Inbox(db, MemoryStore(), process, now=clock.now)
    assert await inbox.accept(_event()) is True
    assert await inbox.accept(_event()) is False
    # another replica without the shared dedupe key still cannot store it twice
    assert await Inbox(db, MemoryStore(), process, now=clock.now).accept(_event()) is False
    assert await inbox.drain() == 1
    assert seen == ["msg:1"]


async def test_a_worker_whose_lease_was_handed_over_does_not_overwrite_the_result(
    db, clock: ManualClock
) -> None:
    async def fail(event: object) -> None:
        raise RuntimeError("platform down")

    async def ok(event: object) -> None:
        return None

    slow = Inbox(db, MemoryStore(), fail, now=clock.now)
    fast = Inbox(db, MemoryStore(), ok, now=clock.now)
    await fast.accept(_event())
    [stale] = await slow.claim()  # the slow worker claims, then stalls past its lease
    clock.advance(LEASE + timedelta(seconds=1))
    assert await fast.run_once() == 1  # handed over and done
    # the slow worker finally fails: its result must not turn the done event back to pending
    await slow._finish(stale, "RuntimeError: platform down")  # noqa: SLF001
    async with db.session() as s:
        row = (await s.execute(select(InboxRow))).scalar_one()
    assert row.status == "done" and row.last_error is None


class _FrozenWriter:
    """The inbox writer of a process that dies inside its commit: it never stores the row."""

    def __init__(self) -> None:
        self.writing = asyncio.Event()

    async def insert(self, row: Any, also: Any = ()) -> bool:
        self.writing.set()
        await asyncio.Event().wait()  # killed here: neither commits nor gets to clean up
        return False

    async def close(self) -> None:
        return None


async def test_a_replica_killed_while_storing_an_event_does_not_make_the_retry_a_repeat(
    db, clock: ManualClock
) -> None:
    seen: list[str] = []

    async def process(event: object) -> None:
        seen.append(event.event_id)  # type: ignore[attr-defined]

    shared = MemoryStore()  # the replicas' one Redis
    frozen = _FrozenWriter()
    dying = Inbox(db, shared, process, now=clock.now, writer=frozen)  # type: ignore[arg-type]
    first = asyncio.create_task(dying.accept(_event()))
    await asyncio.wait_for(frozen.writing.wait(), 5)
    try:
        # WeCom got no answer from the dying replica and delivers again, to another one
        other = Inbox(db, shared, process, now=clock.now)
        assert await other.accept(_event()) is True
        assert await other.accept(_event()) is False
        assert await other.drain() == 1
    finally:
        first.cancel()
    assert seen == ["msg:1"]
