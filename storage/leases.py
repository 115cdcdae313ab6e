"""Leased work queues in a table (the outbox and the inbox share this).

`claim_due` takes up to `batch` rows that are due (`pending` and `next_attempt_at <= now`) or
whose previous claim ran out (a worker died), marks them as being worked on with a lease, and
returns them, all in one short transaction: `FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas
never take the same row, SQLite's single writer otherwise. `while_leased` is the WHERE clause
a worker must write its result under, so a worker whose lease was handed over cannot overwrite
the result of the one that took it.

A batch is worked through one row at a time, so its last rows can wait longer than the lease
(a slow platform API, a loaded machine): `keep_lease` is called before each row, and renews the
claim when less than half of it is left. A row whose lease ran out and was taken over by another
worker meanwhile is skipped, not worked on twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlmodel import col

from storage.db import Database

Row = TypeVar("Row", bound=Any)


async def claim_due(
    db: Database, model: type[Row], *, now: datetime, batch: int, lease: timedelta, working: str
) -> list[Row]:
    async with db.transaction() as session:
        q = (
            select(model)
            .where(
                or_(
                    and_(col(model.status) == "pending", col(model.next_attempt_at) <= now),
                    and_(col(model.status) == working, col(model.claimed_until) < now),
                )
            )
            .order_by(col(model.id))
            .limit(batch)
        )
        if not db.is_sqlite:
            q = q.with_for_update(skip_locked=True)
        rows = list((await session.execute(q)).scalars().all())
        if rows:
            until = now + lease
            await session.execute(
                update(model)
                .where(col(model.id).in_([r.id for r in rows]))
                .values(status=working, claimed_until=until)
            )
            for r in rows:  # our claim: results are written only while we still hold it
                r.status, r.claimed_until = working, until
    return rows


def while_leased(model: type[Row], row: Row) -> ColumnElement[bool]:
    return and_(
        col(model.id) == row.id,
        col(model.status) == row.status,
        col(model.claimed_until) == row.claimed_until,
    )


async def keep_lease(db: Database, model: type[Row], row: Row, *, now: datetime, lease: timedelta) -> bool:
    """Before working on a claimed `row`: True while this worker still holds it with at least half
    a `lease` left (renewed to `now + lease` when less was left); False when the lease was handed
    over to another worker, which then works on the row instead."""
    if row.claimed_until is not None and row.claimed_until - now >= lease / 2:
        return True
    until = now + lease
    async with db.transaction() as session:
        result = await session.execute(
            update(model).where(while_leased(model, row)).values(claimed_until=until)
        )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    row.claimed_until = until
    return True
