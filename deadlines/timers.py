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

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import String, Table, Text, and_, cast, insert, select, type_coerce, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from deadlines.ladder import PlannedRung, RungKind
from storage.db import Database
from storage.timer_models import TimerRow

LEASE = timedelta(seconds=60)
_TABLE: Table = TimerRow.__table__  # type: ignore[attr-defined]
# Only what firing needs, in the order `Timer` takes it, with no per-row processing: `data` comes
# back as its JSON text (the driver's decoder is bypassed) and `due_at` as the driver gives it (an
# aware datetime from asyncpg, the stored text from SQLite); `Timer` decodes each on first use.
_CLAIMED_COLUMNS = (
    _TABLE.c.id,
    _TABLE.c.kind,
    type_coerce(_TABLE.c.due_at, String),
    _TABLE.c.attempts,
    _TABLE.c.request_id,
    _TABLE.c.task_id,
    _TABLE.c.ref,
    cast(_TABLE.c.data, Text),
)


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
    MEETING_REMIND = "meeting_remind"  # a reminder to a meeting's attendees before it starts
    POLL_CLOSE = "poll_close"  # a poll's closing time: the trail says closed, the author gets the counts
    NOTICE_DEFAULT = "notice_default"  # a notice's 已收到 deadline: unanswered receipts default
    NOTIFY_DEFAULT = "notify_default"  # a 知会 task unanswered at its deadline counts as read


TASK_KINDS = tuple(k.value for k in (TimerKind.REMIND, TimerKind.DUE, TimerKind.ESCALATE, TimerKind.AUTO))


class TimerStatus(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Timer:
    """A claimed timer: what to do, and the token that proves the claim.

    Built straight from the claim's row; `data` is decoded on first use, so a claim of a thousand
    timers does no JSON work until each one is fired.
    """

    __slots__ = (
        "id",
        "kind",
        "_due",
        "attempts",
        "request_id",
        "task_id",
        "ref",
        "claim_token",
        "_raw",
        "_data",
    )

    def __init__(
        self,
        id: int,
        kind: str,
        due_at: datetime | str,
        attempts: int,
        request_id: str | None,
        task_id: str | None,
        ref: str | None,
        raw_data: str | None,
        claim_token: str,
    ) -> None:
        self.id = id
        self.kind = kind
        self._due = due_at  # SQLite's text sorts in time order, as datetimes do
        self.attempts = attempts
        self.request_id = request_id
        self.task_id = task_id
        self.ref = ref
        self.claim_token = claim_token
        self._raw = raw_data
        self._data: dict[str, Any] | None = None

    @property
    def due_at(self) -> datetime:
        due = self._due
        if isinstance(due, str):  # SQLite: UTC, stored without its zone
            due = self._due = datetime.fromisoformat(due).replace(tzinfo=UTC)
        elif due.tzinfo is not UTC:
            due = self._due = due.astimezone(UTC)
        return due

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            decoded = json.loads(self._raw) if self._raw else None
            self._data = dict(decoded) if isinstance(decoded, dict) else {}
        return self._data

    def __repr__(self) -> str:
        return f"Timer(id={self.id}, kind={self.kind!r}, due_at={self.due_at.isoformat()}, attempts={self.attempts})"


def _due_order(timer: Timer) -> tuple[datetime | str, int]:
    return timer._due, timer.id


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
    request_id: str | None = None,
    task_id: str | None = None,
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
        "request_id": request_id,
        "task_id": task_id,
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
    """Claim up to `limit` due timers, earliest first, in one statement. Never the same row twice.

    A Core statement on a bare connection (no ORM session, no identity map; on PostgreSQL the one
    statement commits by itself): the rows come back as tuples of the columns firing needs and
    become `Timer`s as they are, data still undecoded.
    """
    token = uuid.uuid4().hex
    due = (
        select(_TABLE.c.id)
        .where(_TABLE.c.status == TimerStatus.PENDING.value)
        .where(_TABLE.c.due_at <= now)
        .order_by(_TABLE.c.due_at)
        .limit(limit)
    )
    if not db.is_sqlite:
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(_TABLE)
        .where(_TABLE.c.id.in_(due.scalar_subquery()))
        .values(
            status=TimerStatus.FIRING.value,
            claim_token=token,
            claimed_until=now + lease,
            attempts=_TABLE.c.attempts + 1,
        )
        .returning(*_CLAIMED_COLUMNS)
    )
    if db.is_sqlite:  # BEGIN IMMEDIATE: the single writer
        async with db.engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
    else:  # one statement is its own transaction: no BEGIN and COMMIT round trips around it
        async with db.engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            rows = (await autocommit.execute(stmt)).all()
    timers = [
        Timer(i, kind, due_at, tries, rid, tid, ref, raw, token)
        for i, kind, due_at, tries, rid, tid, ref, raw in rows
    ]
    timers.sort(key=_due_order)
    return timers


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
