"""Scheduled SQLite backups as the `backup` timer kind.

One timer per backup time (OABOT_BACKUP_TIMES, organisation time), each with a key unique to
its slot; firing one copies the live database (`reports.backup`, in a thread), applies the
retention and schedules the next time. A time missed while the service was down is made up at
the next scan, once (not once per missed time). PostgreSQL is backed up with `oabot backup`
(pg_dump) by the operator, so the kind is registered on SQLite only, which one process serves.

A copy is not part of a transaction: a crash between the copy and closing the timer makes one
extra backup after the lease runs out, never a missing one. A failed copy is logged and the
next time is scheduled all the same, as the operator expects the next backup at the next time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from deadlines import timers
from deadlines.slots import next_daily, slot_key
from deadlines.timer_kinds import FireResult, TimerKinds
from deadlines.timers import Timer, TimerKind
from reports.backup import BackupResult, backup_sqlite
from storage.db import Database

logger = logging.getLogger(__name__)


class ScheduledBackups:
    """The `backup` timer kind for the SQLite file `path`."""

    def __init__(
        self,
        *,
        db: Database,
        kinds: TimerKinds,
        path: Path,
        directory: Path,
        keep: int,
        times: Sequence[time],
        tz: ZoneInfo,
        now: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.path = path
        self.directory = directory
        self.keep = keep
        self.times = tuple(sorted(times))
        self.tz = tz
        self.now = now
        kinds.register(TimerKind.BACKUP, self.fire, next_slot=self.schedule_next)

    async def schedule_next(self, session: AsyncSession, *, after: datetime, now: datetime) -> datetime:
        slot = next_daily(self.times, after=after, tz=self.tz)
        await timers.schedule_once(
            session, kind=TimerKind.BACKUP, key=slot_key("backup", slot), due_at=slot, now=now
        )
        return slot

    async def _copy(self) -> BackupResult | None:
        """Back up the database now (in a thread) and apply the retention; None when it failed (logged)."""
        try:
            result = await asyncio.to_thread(
                backup_sqlite, self.path, self.directory, now=self.now(), keep=self.keep
            )
        except Exception:
            logger.exception("scheduled backup of %s failed", self.path)
            return None
        logger.info(
            "backup written: %s (%d bytes); %d old backup(s) removed",
            result.path,
            result.size,
            len(result.removed),
        )
        return result

    async def fire(self, timer: Timer) -> FireResult:
        result = await self._copy()
        now = self.now()
        async with self.db.transaction() as session:
            if not await timers.finish(session, timer, now=now, error=None if result else "backup failed"):
                return FireResult.LOST
            await self.schedule_next(session, after=max(now, timer.due_at), now=now)
        return FireResult.FIRED if result is not None else FireResult.SKIPPED
