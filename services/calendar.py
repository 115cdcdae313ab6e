"""The calendar overrides use cases: list, set and remove the organisation's extra holidays and
extra working days, and say what the working calendar is built from.

One transaction per change, which also writes a `calendar_replan` timer: the next timer scan
(of any replica) re-plans the due times and reminders of pending tasks on the changed calendar
and records each moved due time in its request's trail. This process's calendar reloads at
once (other processes pick the change up on their next refresh). Returns typed views; decides nothing about deadlines.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from pydantic import BaseModel

from deadlines import timers
from deadlines.org_calendar import OrgCalendar
from org.errors import Category, DomainError
from services.approval_views import IsoTime
from storage import calendar_store
from storage.calendar_store import Override, OverrideKind
from storage.db import Database

__all__ = ["CalendarOverride", "CalendarService", "OverrideKind", "OverrideNotFound"]


class OverrideNotFound(DomainError):
    code = "override_not_found"
    category = Category.NOT_FOUND


class CalendarOverride(BaseModel):
    """One date the organisation made an extra holiday or an extra working day."""

    date: date
    kind: OverrideKind
    reason: str
    created_by: str | None
    created_at: IsoTime

    @classmethod
    def of(cls, o: Override) -> CalendarOverride:
        return cls(date=o.day, kind=o.kind, reason=o.reason, created_by=o.created_by, created_at=o.created_at)


class CalendarService:
    def __init__(self, db: Database, calendar: OrgCalendar, now: Callable[[], datetime]) -> None:
        self.db = db
        self.calendar = calendar
        self.now = now

    async def overrides(
        self, *, start: date | None = None, end: date | None = None
    ) -> list[CalendarOverride]:
        async with self.db.session() as session:
            found = await calendar_store.list_overrides(session, start=start, end=end)
        return [CalendarOverride.of(o) for o in found]

    def coverage(self) -> str:
        """Whether holiday data covers the years in use, and how many overrides there are."""
        return self.calendar.coverage(self.now())

    async def set(
        self, *, day: date, kind: OverrideKind, reason: str = "", created_by: str | None = None
    ) -> tuple[CalendarOverride, bool]:
        """The override as saved, and whether it is new (False: it replaced the date's old one)."""
        async with self.db.transaction() as session:
            saved, created = await calendar_store.set_override(
                session, day=day, kind=kind, reason=reason, created_by=created_by, now=self.now()
            )
            await timers.schedule_replan(session, day=day, change=kind.value, now=self.now())
        await self.calendar.reload(self.db, now=self.now())
        return CalendarOverride.of(saved), created

    async def remove(self, day: date) -> CalendarOverride:
        """The override removed; OverrideNotFound when the date has none."""
        async with self.db.transaction() as session:
            removed = await calendar_store.remove_override(session, day=day)
            if removed is not None:
                await timers.schedule_replan(
                    session, day=day, change=f"removed_{removed.kind.value}", now=self.now()
                )
        if removed is None:
            raise OverrideNotFound(date=day.isoformat())
        await self.calendar.reload(self.db, now=self.now())
        return CalendarOverride.of(removed)
