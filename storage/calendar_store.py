"""Reading and changing the organisation's calendar overrides (keyword-only, session first).

The API, the CLI and the deadline service call these; the meaning of an override (it wins over
the official schedule) is `deadlines.calendar`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.calendar_models import CalendarOverrideRow


class OverrideKind(StrEnum):
    HOLIDAY = "holiday"  # an extra day off
    WORKDAY = "workday"  # an extra working day


@dataclass(frozen=True)
class Override:
    day: date
    kind: OverrideKind
    reason: str
    created_by: str | None
    created_at: datetime


def _from_row(r: CalendarOverrideRow) -> Override:
    return Override(
        day=r.day,
        kind=OverrideKind(r.kind),
        reason=r.reason,
        created_by=r.created_by,
        created_at=r.created_at,
    )


async def list_overrides(
    session: AsyncSession, *, start: date | None = None, end: date | None = None
) -> list[Override]:
    """Overrides in date order, optionally only those from `start` through `end` (inclusive)."""
    q = select(CalendarOverrideRow)
    if start is not None:
        q = q.where(CalendarOverrideRow.day >= start)  # type: ignore[arg-type]
    if end is not None:
        q = q.where(CalendarOverrideRow.day <= end)  # type: ignore[arg-type]
    rows = (await session.execute(q.order_by(CalendarOverrideRow.day))).scalars().all()  # type: ignore[arg-type]
    return [_from_row(r) for r in rows]


async def set_override(
    session: AsyncSession,
    *,
    day: date,
    kind: OverrideKind,
    reason: str = "",
    created_by: str | None = None,
    now: datetime,
) -> tuple[Override, bool]:
    """Make `day` an extra holiday or working day, replacing what it was. Returns (it, created)."""
    row = await session.get(CalendarOverrideRow, day)
    created = row is None
    if row is None:
        row = CalendarOverrideRow(
            day=day, kind=kind.value, reason=reason, created_by=created_by, created_at=now
        )
        session.add(row)
    else:
        row.kind = kind.value
        row.reason = reason
        row.created_by = created_by
        row.created_at = now
    await session.flush()
    return _from_row(row), created


async def remove_override(session: AsyncSession, *, day: date) -> Override | None:
    """Delete the override of `day`; None when there was none."""
    row = await session.get(CalendarOverrideRow, day)
    if row is None:
        return None
    removed = _from_row(row)
    await session.delete(row)
    await session.flush()
    return removed
