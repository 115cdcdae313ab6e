"""The next moment of a recurring timer: a time of day, or a weekday and a time, in the
organisation's timezone.

Pure: no I/O, no wall clock. The scheduled kinds (daily check-in summary, weekly statistics,
backups) compute their next slot here; digests, which skip non-working days, use
`deadlines.digest.next_slot`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

MONDAY = 0


def next_daily(times: Sequence[time], *, after: datetime, tz: ZoneInfo) -> datetime:
    """The first of `times` (local, any day) strictly after `after`."""
    if not times:
        raise ValueError("no times of day given")
    local = after.astimezone(tz)
    for offset in range(2):
        day = local.date() + timedelta(days=offset)
        for t in sorted(times):
            slot = datetime.combine(day, t, tz)
            if slot > after:
                return slot
    raise AssertionError("a time of day recurs within two days")  # pragma: no cover


def next_weekly(weekday: int, at: time, *, after: datetime, tz: ZoneInfo) -> datetime:
    """The first `weekday` (0 = Monday) at `at` (local) strictly after `after`."""
    local = after.astimezone(tz)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        slot = datetime.combine(day, at, tz)
        if day.weekday() == weekday and slot > after:
            return slot
    raise AssertionError("a weekday recurs within eight days")  # pragma: no cover


def slot_key(prefix: str, slot: datetime) -> str:
    """The unique timer key of one slot: replicas scheduling the same slot write one row."""
    return f"{prefix}:{slot.astimezone(UTC).isoformat()}"
