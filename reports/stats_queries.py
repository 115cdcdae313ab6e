"""Reads for the statistics in `reports.stats`: rows in, plain facts out.

Keyword-only functions taking the session. Each narrows the rows to those that can count in the
period; the exact rules are applied by `reports.stats`, which owns the definitions. This module
decides nothing and writes nothing. It sits beside `reports.stats` (not in `storage`) because
the facts it returns are the reports' types: storage never imports reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from approvals.model import TaskStatus
from reports.stats import REMINDER_KINDS, Facts, PingFact, RequestFact, TaskFact
from storage.approval_models import RequestRow, TaskRow, TrailRow


async def task_facts(session: AsyncSession, *, start: datetime, end: datetime) -> list[TaskFact]:
    """Tasks decided in [start, end), and tasks with a due time before `end` that were activated
    before `end` and were still pending then (decided later, or pending now)."""
    decided_in_period = and_(col(TaskRow.decided_at) >= start, col(TaskRow.decided_at) < end)
    open_at_end = and_(
        col(TaskRow.due_at).is_not(None),
        col(TaskRow.due_at) < end,
        or_(
            and_(col(TaskRow.decided_at).is_(None), col(TaskRow.status) == TaskStatus.PENDING.value),
            col(TaskRow.decided_at) >= end,
        ),
    )
    q = (
        select(
            col(TaskRow.id),
            col(TaskRow.request_id),
            col(TaskRow.assignee),
            col(TaskRow.status),
            col(TaskRow.activated_at),
            col(TaskRow.decided_at),
            col(TaskRow.decided_by),
            col(TaskRow.due_at),
            col(TaskRow.step_index),
            col(RequestRow.template_key),
        )
        .join(RequestRow, col(RequestRow.id) == col(TaskRow.request_id), isouter=True)
        .where(col(TaskRow.activated_at).is_not(None), col(TaskRow.activated_at) < end)
        .where(or_(decided_in_period, open_at_end))
        .order_by(col(TaskRow.id))
    )
    return [
        TaskFact(
            id=row.id,
            request_id=row.request_id,
            assignee=row.assignee,
            status=row.status,
            activated_at=row.activated_at,
            decided_at=row.decided_at,
            decided_by=row.decided_by,
            due_at=row.due_at,
            template_key=row.template_key,
            step_index=row.step_index,
        )
        for row in (await session.execute(q)).all()
    ]


async def ping_facts(
    session: AsyncSession, *, start: datetime, end: datetime, kinds: Iterable[str] = REMINDER_KINDS
) -> list[PingFact]:
    """Trail events of `kinds` in [start, end) that name the person pinged in `after`."""
    q = (
        select(col(TrailRow.kind), col(TrailRow.at), col(TrailRow.after), col(TrailRow.request_id))
        .where(col(TrailRow.kind).in_(sorted(kinds)))
        .where(col(TrailRow.at) >= start, col(TrailRow.at) < end)
        .where(col(TrailRow.after).is_not(None))
        .order_by(col(TrailRow.id))
    )
    return [
        PingFact(kind=row.kind, at=row.at, person=row.after, request_id=row.request_id)
        for row in (await session.execute(q)).all()
    ]


async def request_facts(session: AsyncSession, *, start: datetime, end: datetime) -> list[RequestFact]:
    """Requests created in [start, end)."""
    q = (
        select(col(RequestRow.id), col(RequestRow.initiator), col(RequestRow.created_at))
        .where(col(RequestRow.created_at) >= start, col(RequestRow.created_at) < end)
        .order_by(col(RequestRow.created_at), col(RequestRow.id))
    )
    return [
        RequestFact(id=row.id, initiator=row.initiator, created_at=row.created_at)
        for row in (await session.execute(q)).all()
    ]


async def load_facts(session: AsyncSession, *, start: datetime, end: datetime) -> Facts:
    """Everything `reports.stats.compute` needs for [start, end)."""
    return Facts(
        tasks=tuple(await task_facts(session, start=start, end=end)),
        pings=tuple(await ping_facts(session, start=start, end=end)),
        requests=tuple(await request_facts(session, start=start, end=end)),
    )
