"""The timer kinds and the one scan that fires them.

- `TimerKinds` is the registry: every `TimerKind` in use has one async handler, registered by the
  service that owns it when that service is built (`kinds.register(kind, handler)`). A recurring
  kind (digests, summaries, backups) also gives `next_slot`, which writes its next occurrence
  under a key unique to the slot, so replicas never write (or fire) one slot twice. A kind whose
  timers may be missing for work that predates them gives `seed`.
- `TimerScanner.scan_once` claims the due rows (see `deadlines.timers`: SKIP LOCKED on
  PostgreSQL, a lease and a claim token everywhere) and hands each to its kind's handler. The
  handler closes its timer with `timers.finish` in the transaction of its effects and says how it
  went (`FireResult`). A row of an unknown kind is logged and failed; a handler that raises is
  retried later with backoff, then failed (a recurring kind still gets its next slot).
- `start` runs the seeds, makes sure every recurring kind has its next slot (one that fell due
  while the service was down is still pending and fires at the first scan, once), and puts the
  scan on the scheduler as one interval job; `stop` takes it off and lets a running scan finish.

What a timer means is the handlers' business; this module only claims, dispatches and counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession

from deadlines import timers
from deadlines.timers import Timer, TimerKind, TimerStatus
from storage.db import Database

logger = logging.getLogger(__name__)

SCAN_JOB_ID = "timer-scan"
MAX_BATCHES = 50  # per scan, so that one scan stays short
STOP_TIMEOUT_S = 5.0


class FireResult(StrEnum):
    FIRED = "fired"
    CANCELLED = "cancelled"  # what it was for is gone (a task done, a delegation ended)
    DEFERRED = "deferred"  # quiet hours: back to pending until the next working start
    SKIPPED = "skipped"  # nobody to tell, or not a working day
    FAILED = "failed"  # an error: retried later with backoff, then given up
    LOST = "lost"  # another scanner took the timer over after our lease ran out


@dataclass
class ScanStats:
    claimed: int = 0
    fired: int = 0
    cancelled: int = 0
    deferred: int = 0
    skipped: int = 0
    failed: int = 0
    lost: int = 0
    max_drift_s: float = 0.0
    fired_by_kind: Counter[str] = field(default_factory=Counter)

    def count(self, result: FireResult, kind: str) -> None:
        setattr(self, result.value, getattr(self, result.value) + 1)
        if result == FireResult.FIRED:
            self.fired_by_kind[kind] += 1


Handler = Callable[[Timer], Awaitable[FireResult]]
Seed = Callable[[AsyncSession, datetime], Awaitable[None]]
Preparation = Callable[[datetime], Awaitable[None]]


class NextSlot(Protocol):
    """Write the first slot of a recurring kind strictly after `after` (if not there yet)."""

    async def __call__(self, session: AsyncSession, *, after: datetime, now: datetime) -> datetime | None: ...


@dataclass(frozen=True)
class KindEntry:
    handler: Handler
    next_slot: NextSlot | None = None
    seed: Seed | None = None


class TimerKinds:
    """Which handler fires which kind. Filled while the services are built, read by the scan."""

    def __init__(self) -> None:
        self._entries: dict[str, KindEntry] = {}
        self._preparations: list[Preparation] = []

    def register(
        self,
        kind: TimerKind,
        handler: Handler,
        *,
        next_slot: NextSlot | None = None,
        seed: Seed | None = None,
    ) -> None:
        if kind.value in self._entries:
            raise ValueError(f"timer kind {kind.value} has a handler already")
        self._entries[kind.value] = KindEntry(handler, next_slot, seed)

    def before_scan(self, preparation: Preparation) -> None:
        """Run `preparation(now)` at the start of every scan (e.g. refresh the working calendar)."""
        self._preparations.append(preparation)

    def entry(self, kind: str) -> KindEntry | None:
        return self._entries.get(kind)

    @property
    def entries(self) -> dict[str, KindEntry]:
        return dict(self._entries)

    @property
    def preparations(self) -> list[Preparation]:
        return list(self._preparations)


class TimerScanner:
    """Claims due timers and fires them through the registry. Safe in several processes at once."""

    def __init__(
        self,
        *,
        db: Database,
        kinds: TimerKinds,
        now: Callable[[], datetime],
        scan_interval_s: float = 1.0,
        batch_size: int = 100,
        lease: timedelta = timers.LEASE,
        max_attempts: int = 8,
    ) -> None:
        self.db = db
        self.kinds = kinds
        self.now = now
        self.scan_interval_s = scan_interval_s
        self.batch_size = batch_size
        self.lease = lease
        self.max_attempts = max_attempts
        self.last_scan_at: datetime | None = None
        self._running: asyncio.Task[Any] | None = None
        self._scan_failing = False

    # -- scanning ---------------------------------------------------------------------------
    async def scan_once(self) -> ScanStats:
        """Claim and fire every due timer, in batches."""
        stats = ScanStats()
        now = self.now()
        for preparation in self.kinds.preparations:
            await preparation(now)
        async with self.db.transaction() as session:
            await timers.reclaim_expired(session, now=now)
        for _ in range(MAX_BATCHES):
            batch = await timers.claim_due(self.db, now=self.now(), limit=self.batch_size, lease=self.lease)
            stats.claimed += len(batch)
            for timer in batch:
                drift = (self.now() - timer.due_at).total_seconds()
                result = await self._fire_safely(timer)
                stats.count(result, timer.kind)
                if result == FireResult.FIRED:
                    stats.max_drift_s = max(stats.max_drift_s, drift)
            if len(batch) < self.batch_size:
                break
        self.last_scan_at = self.now()
        if stats.claimed:
            logger.info(
                "timer scan: %d claimed, %d fired, %d cancelled, %d deferred, %d failed",
                stats.claimed,
                stats.fired,
                stats.cancelled,
                stats.deferred,
                stats.failed,
                extra={
                    "max_drift_s": round(stats.max_drift_s, 3),
                    "fired_by_kind": dict(stats.fired_by_kind),
                },
            )
        return stats

    async def _fire_safely(self, timer: Timer) -> FireResult:
        entry = self.kinds.entry(timer.kind)
        if entry is None:
            logger.error("timer %s has a kind nothing handles: %s", timer.id, timer.kind, extra=ids(timer))
            async with self.db.transaction() as session:
                await timers.finish(
                    session,
                    timer,
                    now=self.now(),
                    status=TimerStatus.FAILED,
                    error=f"unknown kind {timer.kind}",
                )
            return FireResult.FAILED
        try:
            return await entry.handler(timer)
        except Exception as exc:
            logger.exception("timer %s failed", timer.id, extra=ids(timer))
            await self._retry_later(timer, entry, f"{type(exc).__name__}: {exc}")
            return FireResult.FAILED

    async def _retry_later(self, timer: Timer, entry: KindEntry, error: str) -> None:
        now = self.now()
        async with self.db.transaction() as session:
            if timer.attempts < self.max_attempts:
                delay = timedelta(seconds=min(300.0, 2.0**timer.attempts))
                await timers.release(session, timer, due_at=now + delay, error=error[:2000])
                return
            given_up = await timers.finish(
                session, timer, now=now, status=TimerStatus.FAILED, error=error[:2000]
            )
            if given_up and entry.next_slot is not None:
                await entry.next_slot(session, after=max(now, timer.due_at), now=now)
        logger.error(
            "timer %s given up after %d attempts: %s", timer.id, timer.attempts, error, extra=ids(timer)
        )

    # -- lifecycle ----------------------------------------------------------------------------
    async def seed(self) -> None:
        """Write the timers every kind needs to exist: seeds, and the next slot of each recurring kind."""
        now = self.now()
        async with self.db.transaction() as session:
            for entry in self.kinds.entries.values():
                if entry.seed is not None:
                    await entry.seed(session, now)
                if entry.next_slot is not None:
                    await entry.next_slot(session, after=now, now=now)

    async def start(self, scheduler: AsyncIOScheduler) -> None:
        """Seed the timers, then put the scan on the scheduler."""
        try:
            await self.seed()
        except Exception as exc:  # an unmigrated or unreachable database: /readyz says so
            logger.warning("could not schedule the recurring timers yet: %s: %s", type(exc).__name__, exc)
        # APScheduler logs every run at INFO; once a second that drowns the service's own lines.
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        scheduler.add_job(
            self._scan_job,
            "interval",
            seconds=self.scan_interval_s,
            id=SCAN_JOB_ID,
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )

    async def _scan_job(self) -> None:
        self._running = asyncio.current_task()
        try:
            await self.scan_once()
            if self._scan_failing:
                logger.info("timer scan works again")
            self._scan_failing = False
        except Exception as exc:
            # Once with the traceback, then one line a scan until it works again (database down).
            if not self._scan_failing:
                logger.exception("timer scan failed")
            else:
                logger.debug("timer scan still failing: %s: %s", type(exc).__name__, exc)
            self._scan_failing = True
        finally:
            self._running = None

    async def stop(self, scheduler: AsyncIOScheduler) -> None:
        """Stop scanning; a scan under way gets a few seconds to finish its timer."""
        try:
            scheduler.remove_job(SCAN_JOB_ID)
        except JobLookupError:
            pass
        running = self._running
        if running is not None and not running.done():
            try:
                await asyncio.wait_for(asyncio.shield(running), timeout=STOP_TIMEOUT_S)
            except TimeoutError:
                running.cancel()


def ids(timer: Timer) -> dict[str, Any]:
    """The ids of a timer for a log line's `extra`."""
    return {
        "timer_id": timer.id,
        "kind": timer.kind,
        "request_id": timer.request_id,
        "task_id": timer.task_id,
    }
