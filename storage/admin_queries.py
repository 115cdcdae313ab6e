"""The office desk's queries: every request with the desk's filters, sorted and paginated in SQL;
the same rows in batches for an export; the outbox by status.

One SELECT per page plus one COUNT, the same text on SQLite and PostgreSQL. Full-text search is a
case-insensitive LIKE over the title and the stored form JSON text (both dialects; the JSON text
escapes non-ASCII characters, so the escaped spelling is searched too, see
`workspace_queries._text_matches`). What a filter means (which people a department holds, what
"now" is) is decided by the caller (`services.admin_desk`); this module turns it into SQL only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement
from sqlmodel import col

from approvals.model import TaskStatus
from storage.approval_models import OutboxRow, RequestRow, TaskRow
from storage.workspace_queries import Query, _text_matches

SORTS: dict[str, Any] = {
    "created": col(RequestRow.created_at),
    "finished": col(RequestRow.finished_at),
    "title": col(RequestRow.title),
    "status": col(RequestRow.status),
    "urgency": col(RequestRow.urgency),
    "template": col(RequestRow.template_key),
}


@dataclass(frozen=True)
class DeskFilter:
    """What narrows the desk's request list; every part is optional."""

    text: str = ""
    template: str = ""
    status: str = ""
    urgency: str = ""
    initiators: tuple[str, ...] | None = None  # None: anyone; () matches nobody
    initiator: str = ""
    approver: str = ""  # held or decided a task in the request
    stuck_at: str = ""  # holds a pending task in it now
    overdue_at: datetime | None = None  # a pending task was due before this moment
    created_from: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class DeskRow:
    request_id: str
    template_key: str
    title: str
    initiator: str
    status: str
    urgency: str
    created_at: datetime
    finished_at: datetime | None
    form: dict[str, Any]
    state: dict[str, Any]


def _pending_task(*conds: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(
        col(TaskRow.request_id) == col(RequestRow.id), col(TaskRow.status) == TaskStatus.PENDING.value, *conds
    )


def _conditions(f: DeskFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.text:
        conds.append(_text_matches(f.text, ()))
    for column, value in (
        (RequestRow.template_key, f.template),
        (RequestRow.status, f.status),
        (RequestRow.urgency, f.urgency),
        (RequestRow.initiator, f.initiator),
    ):
        if value:
            conds.append(col(column) == value)
    if f.initiators is not None:
        conds.append(col(RequestRow.initiator).in_(list(f.initiators)))
    if f.approver:
        conds.append(
            exists().where(
                col(TaskRow.request_id) == col(RequestRow.id),
                (col(TaskRow.assignee) == f.approver) | (col(TaskRow.decided_by) == f.approver),
            )
        )
    if f.stuck_at:
        conds.append(_pending_task(col(TaskRow.assignee) == f.stuck_at))
    if f.overdue_at is not None:
        conds.append(_pending_task(col(TaskRow.due_at) < f.overdue_at))
    if f.created_from is not None:
        conds.append(col(RequestRow.created_at) >= f.created_from)
    if f.created_before is not None:
        conds.append(col(RequestRow.created_at) < f.created_before)
    return conds


def _query(f: DeskFilter) -> Query:
    return select(
        col(RequestRow.id),
        col(RequestRow.template_key),
        col(RequestRow.title),
        col(RequestRow.initiator),
        col(RequestRow.status),
        col(RequestRow.urgency),
        col(RequestRow.created_at),
        col(RequestRow.finished_at),
        col(RequestRow.form),
        col(RequestRow.state),
    ).where(*_conditions(f))


def _row(r: Any) -> DeskRow:
    return DeskRow(
        request_id=r.id,
        template_key=r.template_key,
        title=r.title,
        initiator=r.initiator,
        status=r.status,
        urgency=r.urgency,
        created_at=r.created_at,
        finished_at=r.finished_at,
        form=dict(r.form or {}),
        state=dict(r.state or {}),
    )


def _ordered(q: Query, sort: str, descending: bool) -> Query:
    column = SORTS.get(sort, SORTS["created"])
    key = column.desc() if descending else column.asc()
    tie = col(RequestRow.id).desc() if descending else col(RequestRow.id).asc()
    return q.order_by(key.nulls_last(), tie)


async def requests(
    session: AsyncSession, *, where: DeskFilter, sort: str, descending: bool, limit: int, offset: int
) -> tuple[list[DeskRow], int]:
    """One page of the filtered requests and how many there are in all."""
    q = _query(where)
    total = int((await session.execute(select(func.count()).select_from(q.subquery()))).scalar_one())
    if total <= offset:
        return [], total
    rows = (await session.execute(_ordered(q, sort, descending).limit(limit).offset(offset))).all()
    return [_row(r) for r in rows], total


async def template_keys(session: AsyncSession, *, where: DeskFilter) -> list[str]:
    """The templates the filtered requests use (an export's form columns)."""
    q = select(col(RequestRow.template_key)).where(*_conditions(where)).distinct()
    return sorted(str(k) for k in (await session.execute(q)).scalars())


async def batches(
    session: AsyncSession, *, where: DeskFilter, sort: str, descending: bool, size: int
) -> AsyncIterator[list[DeskRow]]:
    """Every filtered request, `size` at a time (keyset-free paging: the list is a snapshot per batch)."""
    offset = 0
    q = _ordered(_query(where), sort, descending)
    while True:
        rows = (await session.execute(q.limit(size).offset(offset))).all()
        if not rows:
            return
        yield [_row(r) for r in rows]
        offset += len(rows)


@dataclass(frozen=True)
class TaskLine:
    request_id: str
    step_index: int
    assignee: str
    acting_for: str | None
    status: str
    activated_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    due_at: datetime | None


async def tasks_of(session: AsyncSession, *, request_ids: Sequence[str]) -> list[TaskLine]:
    """The tasks of the named requests, in the order they were created."""
    if not request_ids:
        return []
    q = (
        select(TaskRow)
        .where(col(TaskRow.request_id).in_(list(request_ids)))
        .order_by(col(TaskRow.request_id), col(TaskRow.created_at), col(TaskRow.id))
    )
    return [
        TaskLine(
            t.request_id,
            t.step_index,
            t.assignee,
            t.acting_for,
            t.status,
            t.activated_at,
            t.decided_at,
            t.decided_by,
            t.due_at,
        )  # fmt: skip
        for t in (await session.execute(q)).scalars()
    ]


# -- the outbox --------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutboxLine:
    id: int
    kind: str
    recipient: str
    request_id: str | None
    payload_platform: str
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    last_error: str | None


UNSENT = ("pending", "sending", "dead")


async def unsent(session: AsyncSession, *, limit: int) -> list[OutboxLine]:
    """Messages not delivered (waiting, retrying or dead), newest first."""
    q = (
        select(OutboxRow)
        .where(col(OutboxRow.status).in_(UNSENT))
        .order_by(col(OutboxRow.created_at).desc(), col(OutboxRow.id).desc())
        .limit(limit)
    )
    return [
        OutboxLine(
            id=int(r.id or 0),
            kind=r.kind,
            recipient=r.recipient,
            request_id=r.request_id,
            payload_platform=str((r.payload or {}).get("platform") or ""),
            status=r.status,
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            created_at=r.created_at,
            last_error=r.last_error,
        )
        for r in (await session.execute(q)).scalars()
    ]


async def last_failures(session: AsyncSession, *, limit: int) -> list[OutboxLine]:
    """The most recent rows that carry an error, whatever their status now."""
    q = (
        select(OutboxRow)
        .where(col(OutboxRow.last_error).is_not(None))
        .order_by(col(OutboxRow.next_attempt_at).desc(), col(OutboxRow.id).desc())
        .limit(limit)
    )
    return [
        OutboxLine(
            int(r.id or 0),
            r.kind,
            r.recipient,
            r.request_id,
            str((r.payload or {}).get("platform") or ""),
            r.status,
            r.attempts,
            r.next_attempt_at,
            r.created_at,
            r.last_error,
        )  # fmt: skip
        for r in (await session.execute(q)).scalars()
    ]


async def revive(session: AsyncSession, *, outbox_id: int, now: datetime) -> bool:
    """A dead message goes back to pending, due now, with a fresh attempt count; False when it is
    not dead (already retried, sent, or unknown)."""
    result = await session.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == outbox_id, col(OutboxRow.status) == "dead")
        .values(status="pending", attempts=0, next_attempt_at=now, claimed_until=None)
    )
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class OverdueTask:
    task_id: str
    version: int
    request_id: str
    template_key: str
    title: str
    state: dict[str, Any]
    step_index: int
    assignee: str
    acting_for: str | None
    created_at: datetime
    activated_at: datetime | None
    due_at: datetime | None


async def overdue_tasks(session: AsyncSession, *, now: datetime) -> list[OverdueTask]:
    """Pending tasks past their deadline (知会 tasks hold nothing up and are left out)."""
    stmt = (
        select(
            col(TaskRow.id),
            col(TaskRow.version),
            col(TaskRow.request_id),
            col(RequestRow.template_key),
            col(RequestRow.title),
            col(RequestRow.state),
            col(TaskRow.step_index),
            col(TaskRow.assignee),
            col(TaskRow.acting_for),
            col(TaskRow.created_at),
            col(TaskRow.activated_at),
            col(TaskRow.due_at),
        )
        .join(RequestRow, col(RequestRow.id) == col(TaskRow.request_id))
        .where(col(TaskRow.status) == TaskStatus.PENDING.value)
        .where(col(TaskRow.permission) != "notify")
        .where(col(TaskRow.due_at) < now)
        .order_by(col(TaskRow.due_at), col(TaskRow.id))
    )
    return [
        OverdueTask(
            r.id,
            r.version,
            r.request_id,
            r.template_key,
            r.title,
            dict(r.state or {}),
            r.step_index,
            r.assignee,
            r.acting_for,
            r.created_at,
            r.activated_at,
            r.due_at,
        )  # fmt: skip
        for r in (await session.execute(stmt)).all()
    ]
