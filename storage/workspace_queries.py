"""The workspace's list queries: 待我处理, 我已处理, 我发起的, 抄送我的, their counts, and the
tasks a batch approval names.

One SELECT per page (plus one COUNT), joined and paginated in SQL, the same text on SQLite and
PostgreSQL; never one query per row. Rows come back as `ListRow`s carrying only what a list
shows. What the filters mean (whose lists, which delegations count) is decided by the caller
(`services.workspace_lists`); this module only turns them into SQL and decides nothing.

A person's 抄送我的 is read from `approval_readers` (the template's CC 抄送 and the people picked
by 知会他人, added when they were told), together with the outbox's `cc` notices of requests
that ended before readers were stored. Archived 归档 requests leave every list unless the
filter asks for them alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, cast, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import col

from approvals.model import TaskStatus
from storage.approval_models import OutboxRow, ReaderRow, RequestRow, TaskRow

# Any SELECT, whatever its columns (SQLAlchemy types them as a variadic tuple).
Query = Select[*tuple[Any, ...]]

CC_NOTICE_KIND = "cc"  # approvals.model.NoticeKind.CC, as the outbox stores it


@dataclass(frozen=True)
class RequestFilter:
    """What narrows a list. `text` matches the title, any form value, or an initiator in
    `initiators_named` (people whose names match, found by the caller)."""

    text: str = ""
    initiators_named: tuple[str, ...] = ()
    template: str = ""
    status: str = ""
    created_from: datetime | None = None
    created_before: datetime | None = None
    archived: bool = False  # False: leave archived requests out; True: only archived ones


@dataclass(frozen=True)
class DelegatedTo:
    """A delegation 代理 that lets the list's person act on `delegator`'s tasks (all templates
    when `templates` is empty)."""

    delegator: str
    templates: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListRow:
    """One line of a list: the request, and for 待我处理 the task."""

    request_id: str
    template_key: str
    title: str
    initiator: str
    status: str
    urgency: str
    created_at: datetime
    finished_at: datetime | None
    at: datetime | None = None  # the list's own time: activated / decided by me / CC'd
    task_id: str | None = None
    task_version: int | None = None
    task_status: str | None = None
    assignee: str | None = None
    acting_for: str | None = None
    permission: str | None = None
    due_at: datetime | None = None
    step_name: str = ""
    step_kind: str = ""


@dataclass(frozen=True)
class ListSlice:
    rows: list[ListRow] = field(default_factory=list)
    total: int = 0


_REQUEST_COLUMNS = (
    col(RequestRow.id),
    col(RequestRow.template_key),
    col(RequestRow.title),
    col(RequestRow.initiator),
    col(RequestRow.status),
    col(RequestRow.urgency),
    col(RequestRow.created_at),
    col(RequestRow.finished_at),
)


def _request_part(row: Any) -> dict[str, Any]:
    return {
        "request_id": row.id,
        "template_key": row.template_key,
        "title": row.title,
        "initiator": row.initiator,
        "status": row.status,
        "urgency": row.urgency,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }


def _step_of(state: dict[str, Any], index: int) -> tuple[str, str]:
    steps = state.get("steps", [])
    if 0 <= index < len(steps):
        return str(steps[index].get("name", "")), str(steps[index].get("kind", ""))
    return "", ""


def _task_row(row: Any) -> ListRow:
    step_name, step_kind = _step_of(row.state, row.step_index)
    return ListRow(
        **_request_part(row),
        at=row.activated_at,
        task_id=row.task_id,
        task_version=row.task_version,
        task_status=row.task_status,
        assignee=row.assignee,
        acting_for=row.acting_for,
        permission=row.permission,
        due_at=row.due_at,
        step_name=step_name,
        step_kind=step_kind,
    )


# -- filters -----------------------------------------------------------------------------------
def _text_matches(text: str, initiators: tuple[str, ...]) -> ColumnElement[bool]:
    """Title or form text contains `text` (case-insensitive), or the initiator is named.

    The form is stored as JSON text with non-ASCII characters escaped (\\uXXXX), so the escaped
    spelling is searched too; `autoescape` makes % and _ in the text literal."""
    form_text = cast(col(RequestRow.form), Text)
    escaped = json.dumps(text)[1:-1]
    options: list[ColumnElement[bool]] = [
        col(RequestRow.title).icontains(text, autoescape=True),
        form_text.icontains(text, autoescape=True),
    ]
    if escaped != text:
        options.append(form_text.icontains(escaped, autoescape=True))
    if initiators:
        options.append(col(RequestRow.initiator).in_(initiators))
    return or_(*options)


def _filtered(q: Query, f: RequestFilter) -> Query:
    q = q.where(
        col(RequestRow.archived_at).is_not(None) if f.archived else col(RequestRow.archived_at).is_(None)
    )
    if f.text:
        q = q.where(_text_matches(f.text, f.initiators_named))
    if f.template:
        q = q.where(col(RequestRow.template_key) == f.template)
    if f.status:
        q = q.where(col(RequestRow.status) == f.status)
    if f.created_from is not None:
        q = q.where(col(RequestRow.created_at) >= f.created_from)
    if f.created_before is not None:
        q = q.where(col(RequestRow.created_at) < f.created_before)
    return q


async def _slice(session: AsyncSession, q: Query, *, limit: int, offset: int) -> tuple[list[Any], int]:
    total = int(
        (await session.execute(select(func.count()).select_from(q.order_by(None).subquery()))).scalar_one()
    )
    rows = list((await session.execute(q.limit(limit).offset(offset))).all()) if total > offset else []
    return rows, total


# -- 待我处理 -------------------------------------------------------------------------------------
def _holds(user: str, delegated: Sequence[DelegatedTo]) -> ColumnElement[bool]:
    """Tasks `user` may act on: assigned to them, theirs but handed to a delegate, or (through an
    active delegation) assigned to someone they stand in for."""
    options: list[ColumnElement[bool]] = [col(TaskRow.assignee) == user, col(TaskRow.acting_for) == user]
    for d in delegated:
        cond = col(TaskRow.assignee) == d.delegator
        if d.templates:
            cond = and_(cond, col(RequestRow.template_key).in_(d.templates))
        options.append(cond)
    return or_(*options)


def _todo_query(user: str, delegated: Sequence[DelegatedTo]) -> Query:
    return (
        select(
            *_REQUEST_COLUMNS,
            col(RequestRow.state),
            col(TaskRow.id).label("task_id"),
            col(TaskRow.version).label("task_version"),
            col(TaskRow.status).label("task_status"),
            col(TaskRow.assignee),
            col(TaskRow.acting_for),
            col(TaskRow.permission),
            col(TaskRow.step_index),
            col(TaskRow.activated_at),
            col(TaskRow.due_at),
        )
        .join(RequestRow, col(RequestRow.id) == col(TaskRow.request_id))
        .where(col(TaskRow.status) == TaskStatus.PENDING.value)
        .where(_holds(user, delegated))
    )


async def todo(
    session: AsyncSession,
    *,
    user: str,
    delegated: Sequence[DelegatedTo] = (),
    where: RequestFilter = RequestFilter(),
    limit: int,
    offset: int = 0,
) -> ListSlice:
    """Open, actionable tasks `user` holds (directly or as a delegate), newest first."""
    q = _filtered(_todo_query(user, delegated), where).order_by(
        col(TaskRow.activated_at).desc(), col(TaskRow.id).desc()
    )
    rows, total = await _slice(session, q, limit=limit, offset=offset)
    return ListSlice([_task_row(r) for r in rows], total)


async def tasks_by_id(session: AsyncSession, *, task_ids: Sequence[str]) -> list[ListRow]:
    """The named tasks with their requests, whatever their status (a batch approval's items)."""
    if not task_ids:
        return []
    q = (
        select(
            *_REQUEST_COLUMNS,
            col(RequestRow.state),
            col(TaskRow.id).label("task_id"),
            col(TaskRow.version).label("task_version"),
            col(TaskRow.status).label("task_status"),
            col(TaskRow.assignee),
            col(TaskRow.acting_for),
            col(TaskRow.permission),
            col(TaskRow.step_index),
            col(TaskRow.activated_at),
            col(TaskRow.due_at),
        )
        .join(RequestRow, col(RequestRow.id) == col(TaskRow.request_id))
        .where(col(TaskRow.id).in_(list(task_ids)))
    )
    return [_task_row(r) for r in (await session.execute(q)).all()]


# -- 我已处理 / 我发起的 / 抄送我的 ------------------------------------------------------------------
def _decided_by(user: str) -> Any:
    return (
        select(col(TaskRow.request_id).label("request_id"), func.max(TaskRow.decided_at).label("at"))
        .where(col(TaskRow.decided_by) == user)
        .group_by(col(TaskRow.request_id))
        .subquery()
    )


def _cc_to(user: str) -> Any:
    """Requests `user` may read as CC 抄送 / 知会他人, with when they were first told."""
    told = union_all(
        select(col(ReaderRow.request_id).label("request_id"), col(ReaderRow.added_at).label("at")).where(
            col(ReaderRow.user_id) == user
        ),
        select(col(OutboxRow.request_id).label("request_id"), col(OutboxRow.created_at).label("at"))
        .where(col(OutboxRow.recipient) == user)
        .where(col(OutboxRow.kind) == CC_NOTICE_KIND)
        .where(col(OutboxRow.request_id).is_not(None)),
    ).subquery()
    return (
        select(told.c.request_id.label("request_id"), func.max(told.c.at).label("at"))
        .group_by(told.c.request_id)
        .subquery()
    )


async def _requests_via(
    session: AsyncSession, sub: Any, *, where: RequestFilter, limit: int, offset: int
) -> ListSlice:
    q: Query = select(*_REQUEST_COLUMNS, sub.c.at).join(sub, sub.c.request_id == col(RequestRow.id))
    q = _filtered(q, where).order_by(sub.c.at.desc(), col(RequestRow.id).desc())
    rows, total = await _slice(session, q, limit=limit, offset=offset)
    return ListSlice([ListRow(**_request_part(r), at=r.at) for r in rows], total)


async def decided(
    session: AsyncSession, *, user: str, where: RequestFilter = RequestFilter(), limit: int, offset: int = 0
) -> ListSlice:
    """Requests in which `user` decided a task, by their latest decision, newest first."""
    return await _requests_via(session, _decided_by(user), where=where, limit=limit, offset=offset)


async def cc(
    session: AsyncSession, *, user: str, where: RequestFilter = RequestFilter(), limit: int, offset: int = 0
) -> ListSlice:
    """Requests `user` was CC'd on (抄送), newest CC first."""
    return await _requests_via(session, _cc_to(user), where=where, limit=limit, offset=offset)


async def initiated(
    session: AsyncSession, *, user: str, where: RequestFilter = RequestFilter(), limit: int, offset: int = 0
) -> ListSlice:
    """Requests `user` started, newest first."""
    q: Query = select(*_REQUEST_COLUMNS, col(RequestRow.created_at).label("at")).where(
        col(RequestRow.initiator) == user
    )
    q = _filtered(q, where).order_by(col(RequestRow.created_at).desc(), col(RequestRow.id).desc())
    rows, total = await _slice(session, q, limit=limit, offset=offset)
    return ListSlice([ListRow(**_request_part(r), at=r.at) for r in rows], total)


@dataclass(frozen=True)
class ListCounts:
    todo: int
    done: int
    mine: int
    cc: int


async def counts(session: AsyncSession, *, user: str, delegated: Sequence[DelegatedTo] = ()) -> ListCounts:
    """The four unfiltered counts (archived requests left out), in one statement."""
    todo_q = _todo_query(user, delegated).order_by(None).subquery()
    active = col(RequestRow.archived_at).is_(None)

    def active_via(sub: Any) -> Any:
        return (
            select(func.count())
            .select_from(sub)
            .join(RequestRow, col(RequestRow.id) == sub.c.request_id)
            .where(active)
            .scalar_subquery()
        )

    q = select(
        select(func.count()).select_from(todo_q).scalar_subquery(),
        active_via(_decided_by(user)),
        select(func.count())
        .select_from(RequestRow)
        .where(col(RequestRow.initiator) == user, active)
        .scalar_subquery(),
        active_via(_cc_to(user)),
    )
    row = (await session.execute(q)).one()
    return ListCounts(todo=int(row[0]), done=int(row[1]), mine=int(row[2]), cc=int(row[3]))
