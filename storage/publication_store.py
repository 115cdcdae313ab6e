"""Reads and writes of `stats_publications`: insert a new version, list, get one. Rows are never
updated or deleted."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.publication_models import StatsPublicationRow


async def add_publication(
    session: AsyncSession,
    *,
    first: date,
    last: date,
    numbers: dict[str, Any],
    published_by: str,
    recipients: int,
    now: datetime,
) -> StatsPublicationRow:
    """The next version of the period's publication (1 for the first). A concurrent publisher of
    the same period loses on the unique (period, version) constraint."""
    latest = await session.scalar(
        select(func.max(col(StatsPublicationRow.version))).where(
            col(StatsPublicationRow.period_from) == first, col(StatsPublicationRow.period_to) == last
        )
    )
    row = StatsPublicationRow(
        period_from=first,
        period_to=last,
        version=(latest or 0) + 1,
        numbers=numbers,
        published_by=published_by,
        published_at=now,
        recipients=recipients,
    )
    session.add(row)
    await session.flush()
    return row


async def list_publications(session: AsyncSession, *, limit: int = 200) -> list[StatsPublicationRow]:
    q = (
        select(StatsPublicationRow)
        .order_by(col(StatsPublicationRow.published_at).desc(), col(StatsPublicationRow.id).desc())
        .limit(limit)
    )
    return list((await session.execute(q)).scalars().all())


async def get_publication(session: AsyncSession, publication_id: int) -> StatsPublicationRow | None:
    return await session.get(StatsPublicationRow, publication_id)
