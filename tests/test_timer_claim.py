"""Claiming due timers: every due timer goes to exactly one claimer, however many claim at once,
earliest first; and a handler reads the timer's data exactly as it was scheduled, also on a retry.

Runs on SQLite and (when configured) PostgreSQL, with two `Database` objects on one database
standing for two replicas.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from deadlines import timers
from deadlines.timer_kinds import FireResult, TimerKinds, TimerScanner
from deadlines.timers import Timer, TimerKind
from storage.db import Database
from storage.timer_models import TimerRow

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
async def replica(db: Database) -> AsyncIterator[Database]:
    """A second process on the same database: its own engine and pool."""
    other = Database(db.url, schema=db.schema)
    try:
        yield other
    finally:
        await other.dispose()


async def schedule(db: Database, n: int, *, due_from: datetime, data: dict[str, Any] | None = None) -> None:
    async with db.transaction() as s:
        for i in range(n):
            await timers.schedule_once(
                s,
                kind=TimerKind.ORG_REFRESH,
                key=f"claim-test:{due_from.isoformat()}:{i}",
                due_at=due_from + timedelta(seconds=i),
                now=NOW,
                ref=f"ref-{i}",
                data=data if data is not None else {"n": i},
            )


async def test_concurrent_claimers_get_disjoint_sets_and_every_due_timer_once(
    db: Database, replica: Database
) -> None:
    await schedule(db, 120, due_from=NOW - timedelta(hours=1))
    await schedule(db, 10, due_from=NOW + timedelta(minutes=5))  # not due yet
    claims: list[list[Timer]] = []

    async def claimer(database: Database) -> None:
        while batch := await timers.claim_due(database, now=NOW, limit=7):
            claims.append(batch)

    await asyncio.gather(*(claimer(d) for d in (db, replica, db, replica, db, replica)))

    ids = [t.id for batch in claims for t in batch]
    assert len(ids) == 120 and len(set(ids)) == 120  # every due timer, none twice
    assert all(t.due_at <= NOW for batch in claims for t in batch)
    for batch in claims:  # each claim hands its timers over earliest first, with one token
        assert [t.due_at for t in batch] == sorted(t.due_at for t in batch)
        assert len({t.claim_token for t in batch}) == 1
    assert len({batch[0].claim_token for batch in claims}) == len(claims)
    async with db.session() as s:
        statuses = (await s.execute(select(TimerRow.status, TimerRow.attempts))).all()  # type: ignore[call-overload]
    assert sorted(statuses) == sorted([("firing", 1)] * 120 + [("pending", 0)] * 10)


async def test_a_timer_locked_by_another_claim_is_skipped_not_waited_for(
    db: Database, replica: Database
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has one writer: a second claim waits for the first to commit")
    await schedule(db, 10, due_from=NOW - timedelta(hours=1))
    async with replica.engine.connect() as holder, holder.begin():
        # Another replica's claim is half-way: it holds the three earliest rows.
        held = (
            await holder.execute(
                text("SELECT id FROM timers ORDER BY due_at LIMIT 3 FOR UPDATE"),
            )
        ).scalars()
        held_ids = set(held)

        claimed = await asyncio.wait_for(timers.claim_due(db, now=NOW, limit=100), timeout=5)

    assert len(claimed) == 7 and held_ids.isdisjoint(t.id for t in claimed)


async def test_a_claimed_timer_fires_with_its_data_as_scheduled_also_on_a_retry(db: Database) -> None:
    data = {
        "名字": "张伟",
        "部门": ["研发部", "行政部"],
        "level": 2,
        "point": 0.5,
        "quiet": True,
        "none": None,
    }
    await schedule(db, 1, due_from=NOW - timedelta(minutes=1), data=data)
    await schedule(db, 1, due_from=NOW - timedelta(minutes=2), data={})
    seen: list[tuple[str | None, dict[str, Any], int]] = []
    clock = [NOW]
    kinds = TimerKinds()
    scanner = TimerScanner(db=db, kinds=kinds, now=lambda: clock[0])

    async def handler(timer: Timer) -> FireResult:
        seen.append((timer.ref, timer.data, timer.attempts))
        if timer.data and timer.attempts == 1:
            raise RuntimeError("the platform is down")  # released, claimed again later
        async with db.transaction() as s:
            assert await timers.finish(s, timer, now=clock[0])
        return FireResult.FIRED

    kinds.register(TimerKind.ORG_REFRESH, handler)

    first = await scanner.scan_once()
    clock[0] = NOW + timedelta(minutes=1)  # past the retry's back-off
    second = await scanner.scan_once()

    assert (first.fired, first.failed, second.fired) == (1, 1, 1)
    assert seen == [("ref-0", {}, 1), ("ref-0", data, 1), ("ref-0", data, 2)]
    async with db.session() as s:
        rows = (await s.execute(select(TimerRow).order_by(TimerRow.due_at))).scalars().all()  # type: ignore[arg-type]
    assert [(r.status, r.data) for r in rows] == [("done", {}), ("done", data)]
