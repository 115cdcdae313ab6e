"""Timer rows on the storage side: write them, cancel them, claim the due ones, finish them.

Exactly once, with any number of replicas:

- `claim_due` marks a batch of due rows `firing` in one short statement with a lease and a
  fresh claim token (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so two scanners never get the same
  row; SQLite: the single writer does the same);
- the firing itself runs in one transaction that starts with `finish`: the row becomes `done`
  only if it still carries this claim's token. Its effects (trail, outbox) commit with it, so a
  crash before the commit leaves nothing behind and the lease expiry hands the row over again;
  a slow scanner whose lease expired and was taken over finds its token gone and rolls back.

Task rungs are written by the workflow hook in the transaction of the state change that made
the task pending, and cancelled in the transaction that makes it anything else. Every kind of
timer is listed in `TimerKind`; what firing one does is registered per kind in
`deadlines.timer_kinds`, whose scan is the only caller of `claim_due`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, and_, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from deadlines.ladder import PlannedRung, RungKind
from storage.db import Database
from storage.timer_models import TimerRow

LEASE = timedelta(seconds=60)
_TABLE: Table = TimerRow.__table__  # type: ignore[attr-defined]
_CLAIMED_COLUMNS = [
    _TABLE.c[name]
    for name in ("id", "kind", "due_at", "request_id", "task_id", "ref", "key", "data", "attempts")
]


class TimerKind(StrEnum):
    """Every kind of timer the service has (the `kind` column, at most 24 characters)."""

    REMIND = RungKind.REMIND.value  # the four rungs of a pending task's reminder ladder
    DUE = RungKind.DUE.value
    ESCALATE = RungKind.ESCALATE.value
    AUTO = RungKind.AUTO.value
    DELEGATION_START = "delegation_start"  # a delegation that moves pending tasks begins
    DIGEST = "digest"  # a digest slot (recurring)
    CHECKIN_MISSING = "checkin_missing"  # a rung of a trip's missing-check-in ladder
    CHECKIN_SUMMARY = "checkin_summary"  # the managers' daily check-in summary (recurring)
    STATS_WEEKLY = "stats_weekly"  # the weekly statistics summary (recurring)
    BACKUP = "backup"  # a scheduled SQLite backup (recurring)
    CALENDAR_REPLAN = "calendar_replan"  # a calendar override changed: re-plan pending due times
    ORG_SYNC = "org_sync"  # the nightly directory sync from WeCom or DingTalk (recurring)
    ORG_REFRESH = "org_refresh"  # re-read one person or department after a contact event


TASK_KINDS = tuple(k.value for k in (TimerKind.REMIND, TimerKind.DUE, TimerKind.ESCALATE, TimerKind.AUTO))


class TimerStatus(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True)
class Timer:
    """A claimed timer: what to do, and the token that proves the claim."""

    id: int
    kind: str
    due_at: datetime
    request_id: str | None
    task_id: str | None
    ref: str | None
    key: str | None
    data: dict[str, Any]
    attempts: int
    claim_token: str


# -- writing ----------------------------------------------------------------------------------
async def schedule_rungs(
    session: AsyncSession, *, request_id: str, task_id: str, rungs: Sequence[PlannedRung], now: datetime
) -> None:
    if not rungs:
        return
    await session.execute(
        insert(TimerRow),
        [
            {
                "kind": r.kind.value,
                "status": TimerStatus.PENDING.value,
                "due_at": r.at,
                "request_id": request_id,
                "task_id": task_id,
                "data": r.to_data(),
                "attempts": 0,
                "created_at": now,
            }
            for r in rungs
        ],
    )


async def schedule_once(
    session: AsyncSession,
    *,
    kind: TimerKind,
    key: str,
    due_at: datetime,
    now: datetime,
    ref: str | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Insert a keyed timer unless one with that key exists (any status). True if inserted.

    Concurrent callers may both try: the unique key lets one win, the other gets False.
    """
    values = {
        "kind": kind.value,
        "status": TimerStatus.PENDING.value,
        "due_at": due_at,
        "key": key,
        "ref": ref,
        "data": data or {},
        "attempts": 0,
        "created_at": now,
    }
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = await session.execute(
        dialect_insert(TimerRow).values(**values).on_conflict_do_nothing(index_elements=["key"])
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def schedule_replan(session: AsyncSession, *, day: date, change: str, now: datetime) -> None:
    """A calendar override changed (`change`: holiday | workday, or removed_holiday |
    removed_workday): re-plan the due times and rungs of pending tasks, once, at the next scan
    of whichever replica claims it. Written in the transaction of the change itself."""
    await schedule_once(
        session,
        kind=TimerKind.CALENDAR_REPLAN,
        key=f"calendar_replan:{uuid.uuid4().hex}",
        due_at=now,
        now=now,
        data={"day": day.isoformat(), "change": change},
    )


async def cancel_task_timers(
    session: AsyncSession, *, request_id: str, keep_task_ids: Iterable[str] = (), now: datetime
) -> int:
    """Cancel the pending rungs of the request's tasks, except those of `keep_task_ids`."""
    keep = list(keep_task_ids)
    q = (
        update(TimerRow)
        .where(TimerRow.request_id == request_id)  # type: ignore[arg-type]
        .where(TimerRow.status == TimerStatus.PENDING.value)  # type: ignore[arg-type]
        .where(TimerRow.kind.in_(TASK_KINDS))  # type: ignore[attr-defined]
    )
    if keep:
        q = q.where(TimerRow.task_id.not_in(keep))  # type: ignore[union-attr]
    result = await session.execute(q.values(status=TimerStatus.CANCELLED.value, fired_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def cancel_by_key(session: AsyncSession, *, key: str, now: datetime) -> bool:
    return bool(await cancel_keys(session, keys=[key], now=now))


async def cancel_keys(session: AsyncSession, *, keys: Sequence[str], now: datetime) -> int:
    """Cancel the pending timers among `keys`; the number cancelled."""
    result = await session.execute(
        update(TimerRow)
        .where(TimerRow.key.in_(list(keys)))  # type: ignore[union-attr]
        .where(TimerRow.status == TimerStatus.PENDING.value)  # type: ignore[arg-type]
        .values(status=TimerStatus.CANCELLED.value, fired_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# -- claiming ---------------------------------------------------------------------------------
async def reclaim_expired(session: AsyncSession, *, now: datetime) -> int:
    """Hand back timers whose claim lease ran out (their scanner died or stalled)."""
    result = await session.execute(
        update(TimerRow)
        .where(TimerRow.status == TimerStatus.FIRING.value)  # type: ignore[arg-type]
        .where(TimerRow.claimed_until < now)  # type: ignore[arg-type,operator]
        .values(status=TimerStatus.PENDING.value, claim_token=None, claimed_until=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def claim_due(
    db: Database, *, now: datetime, limit: int = 100, lease: timedelta = LEASE
) -> list[Timer]:
    """Claim up to `limit` due timers, earliest first, in one statement. Never the same row twice."""
    token = uuid.uuid4().hex
    due = (
        select(_TABLE.c.id)
        .where(TimerRow.status == TimerStatus.PENDING.value)  # type: ignore[arg-type]
        .where(TimerRow.due_at <= now)  # type: ignore[arg-type]
        .order_by(TimerRow.due_at)  # type: ignore[arg-type]
        .limit(limit)
    )
    if not db.is_sqlite:
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(TimerRow)
        .where(TimerRow.id.in_(due.scalar_subquery()))  # type: ignore[union-attr]
        .values(
            status=TimerStatus.FIRING.value,
            claim_token=token,
            claimed_until=now + lease,
            attempts=TimerRow.attempts + 1,
        )
        .returning(*_CLAIMED_COLUMNS)
    )
    async with db.transaction() as session:
        rows = (await session.execute(stmt)).all()
    timers = [
        Timer(
            id=r.id,
            kind=r.kind,
            due_at=r.due_at,
            request_id=r.request_id,
            task_id=r.task_id,
            ref=r.ref,
            key=r.key,
            data=dict(r.data or {}),
            attempts=r.attempts,
            claim_token=token,
        )
        for r in rows
    ]
    return sorted(timers, key=lambda t: (t.due_at, t.id))


async def finish(
    session: AsyncSession,
    timer: Timer,
    *,
    now: datetime,
    status: TimerStatus = TimerStatus.DONE,
    error: str | None = None,
) -> bool:
    """Close a claimed timer if the claim still holds. False: someone else owns it now."""
    result = await session.execute(
        update(TimerRow)
        .where(
            and_(
                TimerRow.id == timer.id,  # type: ignore[arg-type]
                TimerRow.status == TimerStatus.FIRING.value,  # type: ignore[arg-type]
                TimerRow.claim_token == timer.claim_token,  # type: ignore[arg-type]
            )
        )
        .values(status=status.value, fired_at=now, claim_token=None, claimed_until=None, last_error=error)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_status(
    session: AsyncSession, timer_id: int, *, status: TimerStatus, error: str | None = None
) -> None:
    """Change the status of a timer this transaction already finished (e.g. done -> cancelled)."""
    await session.execute(
        update(TimerRow).where(TimerRow.id == timer_id).values(status=status.value, last_error=error)  # type: ignore[arg-type]
    )


async def release(session: AsyncSession, timer: Timer, *, due_at: datetime, error: str | None = None) -> bool:
    """Put a claimed timer back to pending at `due_at` (quiet hours, or a retry after an error)."""
    result = await session.execute(
        update(TimerRow)
        .where(
            and_(
                TimerRow.id == timer.id,  # type: ignore[arg-type]
                TimerRow.status == TimerStatus.FIRING.value,  # type: ignore[arg-type]
                TimerRow.claim_token == timer.claim_token,  # type: ignore[arg-type]
            )
        )
        .values(
            status=TimerStatus.PENDING.value,
            due_at=due_at,
            claim_token=None,
            claimed_until=None,
            last_error=error,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# -- reading -----------------------------------------------------------------------------------
async def timers_of(
    session: AsyncSession, *, request_id: str | None = None, task_id: str | None = None
) -> list[TimerRow]:
    """Timer rows of a request or task, in due order (tests, support)."""
    q = select(TimerRow)
    if request_id is not None:
        q = q.where(TimerRow.request_id == request_id)  # type: ignore[arg-type]
    if task_id is not None:
        q = q.where(TimerRow.task_id == task_id)  # type: ignore[arg-type]
    return list((await session.execute(q.order_by(TimerRow.due_at, TimerRow.id))).scalars().all())  # type: ignore[arg-type]


async def reschedule(session: AsyncSession, timer_id: int, *, due_at: datetime) -> None:
    """Put a timer this transaction finished back to pending at `due_at` (it waits for working time)."""
    await session.execute(
        update(TimerRow)
        .where(TimerRow.id == timer_id)  # type: ignore[arg-type]
        .values(
            status=TimerStatus.PENDING.value,
            due_at=due_at,
            fired_at=None,
            claim_token=None,
            claimed_until=None,
        )
    )
