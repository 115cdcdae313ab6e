"""Persistence of approval requests: rows in, core objects out, and back.

Every write that appends trail events seals them with the trail key it is given (each event's
MAC, and the request row's anchored chain head, `approvals.trail`); `key=None` writes legacy
unkeyed rows, which `oabot audit verify` reports.

Saving is optimistic: the request row is updated `WHERE version = <the version we loaded>`
and each changed task `WHERE version = <its loaded version>`, inside the caller's
transaction. If another writer got there first, `ConcurrentUpdate` is raised and the caller
reloads and retries; nothing is read-then-written without that check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from approvals.definitions import Permission, StepKind, StepMode
from approvals.model import (
    STATE_SCHEMA_VERSION,
    Delegation,
    Reader,
    ReaderReason,
    Request,
    RequestStatus,
    Step,
    StepStatus,
    Task,
    TaskStatus,
    TrailEvent,
    Urgency,
)
from approvals.trail import Anchor, TrailKey, event_mac, head_mac
from storage.approval_models import DelegationRow, IdempotencyRow, ReaderRow, RequestRow, TaskRow, TrailRow
from storage.base import fit_key


class ConcurrentUpdate(Exception):
    """Someone else changed the request since it was loaded."""


class IdempotencyConflict(Exception):
    """The idempotency key was stored by a concurrent call first."""


@dataclass
class Loaded:
    """A request as loaded, with what is needed to save it optimistically."""

    request: Request
    version: int
    task_snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    readers: tuple[str, ...] = ()  # who could read it (CC / 知会他人) when it was loaded


# -- conversions ----------------------------------------------------------------------------
def _step_to_json(s: Step) -> dict[str, Any]:
    d = asdict(s)
    for k in ("mode", "kind", "permission", "status"):
        d[k] = str(d[k].value if hasattr(d[k], "value") else d[k])
    for k in ("started_at", "finished_at"):
        d[k] = d[k].isoformat() if d[k] else None
    return d


def _step_from_json(d: dict[str, Any]) -> Step:
    return Step(
        index=d["index"],
        key=d["key"],
        name=d["name"],
        mode=StepMode(d["mode"]),
        kind=StepKind(d["kind"]),
        permission=Permission(d["permission"]),
        action_label=d["action_label"],
        can_reject=d["can_reject"],
        time_limit_hours=d["time_limit_hours"],
        assignees=list(d["assignees"]),
        status=StepStatus(d["status"]),
        round=d.get("round", 1),
        notes=list(d.get("notes", [])),
        superseded=list(d.get("superseded", [])),
        started_at=datetime.fromisoformat(d["started_at"]) if d.get("started_at") else None,
        finished_at=datetime.fromisoformat(d["finished_at"]) if d.get("finished_at") else None,
    )


def _state_of(req: Request) -> dict[str, Any]:
    return {
        "schema_version": STATE_SCHEMA_VERSION,
        "round": req.round,
        "steps": [_step_to_json(s) for s in req.steps],
        "urged_at": {k: v.isoformat() for k, v in req.urged_at.items()},
    }


def _task_values(t: Task) -> dict[str, Any]:
    return {
        "id": t.id,
        "request_id": t.request_id,
        "step_index": t.step_index,
        "assignee": t.assignee,
        "acting_for": t.acting_for,
        "permission": t.permission.value,
        "status": t.status.value,
        "version": t.version,
        "after_task": t.after_task,
        "origin": t.origin,
        "added_by": t.added_by,
        "created_at": t.created_at,
        "activated_at": t.activated_at,
        "decided_at": t.decided_at,
        "decided_by": t.decided_by,
        "comment": t.comment,
        "close_reason": t.close_reason,
        "due_at": t.due_at,
    }


def _task_from_row(r: TaskRow) -> Task:
    return Task(
        id=r.id,
        request_id=r.request_id,
        step_index=r.step_index,
        assignee=r.assignee,
        permission=Permission(r.permission),
        status=TaskStatus(r.status),
        created_at=r.created_at,
        version=r.version,
        acting_for=r.acting_for,
        after_task=r.after_task,
        origin=r.origin,
        added_by=r.added_by,
        activated_at=r.activated_at,
        decided_at=r.decided_at,
        decided_by=r.decided_by,
        comment=r.comment,
        close_reason=r.close_reason,
        due_at=r.due_at,
    )


def _reader_from_row(r: ReaderRow) -> Reader:
    return Reader(user=r.user_id, reason=ReaderReason(r.reason), at=r.added_at, by=r.added_by)


def _reader_row(request_id: str, r: Reader) -> ReaderRow:
    return ReaderRow(
        request_id=request_id, user_id=r.user, reason=r.reason.value, added_at=r.at, added_by=r.by
    )


def _add_new_readers(session: AsyncSession, req: Request, known: Sequence[str] = ()) -> None:
    for r in req.readers:
        if r.user not in known:
            session.add(_reader_row(req.id, r))


def _request_from_rows(
    row: RequestRow, tasks: Sequence[TaskRow], readers: Sequence[ReaderRow] = ()
) -> Request:
    state = row.state
    if state.get("schema_version") != STATE_SCHEMA_VERSION:
        raise ValueError(f"request {row.id}: unknown state schema {state.get('schema_version')}")
    return Request(
        id=row.id,
        template_key=row.template_key,
        template_version=row.template_version,
        title=row.title,
        form=dict(row.form),
        initiator=row.initiator,
        urgency=Urgency(row.urgency),
        status=RequestStatus(row.status),
        created_at=row.created_at,
        steps=[_step_from_json(s) for s in state["steps"]],
        tasks=sorted((_task_from_row(t) for t in tasks), key=lambda t: int(t.id.rsplit("-", 1)[1])),
        version=row.version,
        round=state.get("round", 1),
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        last_seq=row.last_seq,
        last_hash=row.last_hash,
        urged_at={k: datetime.fromisoformat(v) for k, v in state.get("urged_at", {}).items()},
        channel=row.channel,
        archived_at=row.archived_at,
        archived_by=row.archived_by,
        readers=sorted((_reader_from_row(r) for r in readers), key=lambda r: (r.at, r.user)),
    )


def _head_values(req: Request, key: TrailKey | None) -> dict[str, Any]:
    """The request row's chain head, anchored with `key` (not anchored without one)."""
    return {
        "last_seq": req.last_seq,
        "last_hash": req.last_hash,
        "head_key_id": key.id if key else None,
        "head_mac": head_mac(key, req.id, req.last_seq, req.last_hash) if key else None,
    }


def _request_values(req: Request, key: TrailKey | None) -> dict[str, Any]:
    return {
        "template_key": req.template_key,
        "template_version": req.template_version,
        "title": req.title,
        "initiator": req.initiator,
        "urgency": req.urgency.value,
        "status": req.status.value,
        "form": req.form,
        "state": _state_of(req),
        "version": req.version,
        **_head_values(req, key),
        "channel": str(req.channel),
        "created_at": req.created_at,
        "updated_at": req.updated_at,
        "finished_at": req.finished_at,
        "archived_at": req.archived_at,
        "archived_by": req.archived_by,
    }


# -- requests -------------------------------------------------------------------------------
async def load_request(session: AsyncSession, *, request_id: str) -> Loaded | None:
    row = await session.get(RequestRow, request_id)
    if row is None:
        return None
    tasks = (
        (await session.execute(select(TaskRow).where(col(TaskRow.request_id) == request_id))).scalars().all()
    )
    readers = (
        (await session.execute(select(ReaderRow).where(col(ReaderRow.request_id) == request_id)))
        .scalars()
        .all()
    )
    req = _request_from_rows(row, tasks, readers)
    return Loaded(
        request=req,
        version=row.version,
        task_snapshots={t.id: _task_values(t) for t in req.tasks},
        readers=tuple(r.user for r in req.readers),
    )


async def insert_request(
    session: AsyncSession, *, request: Request, events: Sequence[TrailEvent], key: TrailKey | None
) -> None:
    session.add(RequestRow(id=request.id, **_request_values(request, key)))
    for t in request.tasks:
        session.add(TaskRow(**_task_values(t)))
    _add_new_readers(session, request)
    await session.flush()
    await append_events(session, events=events, key=key)


async def save_request(
    session: AsyncSession, *, loaded: Loaded, events: Sequence[TrailEvent], key: TrailKey | None
) -> None:
    """Write the changed request, its changed/new tasks and its new events, or raise ConcurrentUpdate."""
    req = loaded.request
    values = _request_values(req, key)
    result = await session.execute(
        update(RequestRow)
        .where(and_(col(RequestRow.id) == req.id, col(RequestRow.version) == loaded.version))
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConcurrentUpdate(req.id)
    for t in req.tasks:
        now_values = _task_values(t)
        before = loaded.task_snapshots.get(t.id)
        if before is None:
            session.add(TaskRow(**now_values))
            continue
        if before == now_values:
            continue
        res = await session.execute(
            update(TaskRow)
            .where(and_(col(TaskRow.id) == t.id, col(TaskRow.version) == before["version"]))
            .values(**{k: v for k, v in now_values.items() if k != "id"})
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentUpdate(req.id)
    _add_new_readers(session, req, loaded.readers)
    await session.flush()
    await append_events(session, events=events, key=key)


async def append_to_saved_request(
    session: AsyncSession,
    *,
    request: Request,
    loaded_version: int,
    events: Sequence[TrailEvent],
    key: TrailKey | None,
) -> None:
    """Append system events to a request this transaction already wrote (only its version and
    chain head change), with the same optimistic check as `save_request`."""
    result = await session.execute(
        update(RequestRow)
        .where(and_(col(RequestRow.id) == request.id, col(RequestRow.version) == loaded_version))
        .values(version=request.version, **_head_values(request, key))
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConcurrentUpdate(request.id)
    await append_events(session, events=events, key=key)


async def append_events(session: AsyncSession, *, events: Sequence[TrailEvent], key: TrailKey | None) -> None:
    for e in events:
        session.add(
            TrailRow(
                request_id=e.request_id,
                seq=e.seq,
                kind=e.kind,
                at=e.at,
                actor=e.actor,
                acting_for=e.acting_for,
                channel=str(e.channel),
                task_id=e.task_id,
                step_index=e.step_index,
                before=e.before,
                after=e.after,
                comment=e.comment,
                data=_jsonable(e.data),
                prev_hash=e.prev_hash,
                hash=e.hash,
                key_id=key.id if key else None,
                mac=event_mac(key, e) if key else None,
            )
        )
    await session.flush()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def trail_from_row(r: TrailRow) -> TrailEvent:
    return TrailEvent(
        request_id=r.request_id,
        seq=r.seq,
        kind=r.kind,
        at=r.at,
        actor=r.actor,
        acting_for=r.acting_for,
        channel=r.channel,
        task_id=r.task_id,
        step_index=r.step_index,
        before=r.before,
        after=r.after,
        comment=r.comment,
        data=dict(r.data),
        prev_hash=r.prev_hash,
        hash=r.hash,
        key_id=r.key_id,
        mac=r.mac,
    )


async def load_trail(session: AsyncSession, *, request_id: str) -> list[TrailEvent]:
    rows = (
        (
            await session.execute(
                select(TrailRow).where(col(TrailRow.request_id) == request_id).order_by(col(TrailRow.seq))
            )
        )
        .scalars()
        .all()
    )
    return [trail_from_row(r) for r in rows]


@dataclass
class StoredTrail:
    """A request as its rows store it, its chain head's anchor and its trail, for checking."""

    request: Request
    anchor: Anchor
    events: list[TrailEvent]


async def load_trails(session: AsyncSession, *, request_ids: Sequence[str]) -> dict[str, StoredTrail]:
    """The stored request, anchor and trail of each of `request_ids` that exists, in four queries."""
    ids = list(request_ids)
    rows = (await session.execute(select(RequestRow).where(col(RequestRow.id).in_(ids)))).scalars().all()
    tasks: dict[str, list[TaskRow]] = {}
    for t in (await session.execute(select(TaskRow).where(col(TaskRow.request_id).in_(ids)))).scalars():
        tasks.setdefault(t.request_id, []).append(t)
    events: dict[str, list[TrailEvent]] = {}
    trail_q = select(TrailRow).where(col(TrailRow.request_id).in_(ids)).order_by(col(TrailRow.seq))
    for e in (await session.execute(trail_q)).scalars():
        events.setdefault(e.request_id, []).append(trail_from_row(e))
    readers: dict[str, list[ReaderRow]] = {}
    for rd in (await session.execute(select(ReaderRow).where(col(ReaderRow.request_id).in_(ids)))).scalars():
        readers.setdefault(rd.request_id, []).append(rd)
    return {
        r.id: StoredTrail(
            request=_request_from_rows(r, tasks.get(r.id, []), readers.get(r.id, [])),
            anchor=Anchor(r.id, r.last_seq, r.last_hash, r.head_key_id, r.head_mac),
            events=events.get(r.id, []),
        )
        for r in rows
    }


async def anchor_head(session: AsyncSession, *, anchor: Anchor, key: TrailKey) -> bool:
    """Anchor a legacy (never anchored) chain head with `key`; False if it changed meanwhile."""
    result = await session.execute(
        update(RequestRow)
        .where(col(RequestRow.id) == anchor.request_id)
        .where(col(RequestRow.last_seq) == anchor.count, col(RequestRow.last_hash) == anchor.last_hash)
        .where(col(RequestRow.head_mac).is_(None))
        .values(head_key_id=key.id, head_mac=head_mac(key, anchor.request_id, anchor.count, anchor.last_hash))
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def list_requests(
    session: AsyncSession,
    *,
    initiator: str | None = None,
    status: str | None = None,
    template: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[RequestRow]:
    q = select(RequestRow)
    if initiator:
        q = q.where(col(RequestRow.initiator) == initiator)
    if status:
        q = q.where(col(RequestRow.status) == status)
    if template:
        q = q.where(col(RequestRow.template_key) == template)
    q = q.order_by(col(RequestRow.created_at).desc(), col(RequestRow.id)).limit(limit).offset(offset)
    return list((await session.execute(q)).scalars().all())


async def pending_tasks(session: AsyncSession, *, assignee: str) -> list[tuple[TaskRow, RequestRow]]:
    """Open, actionable tasks held by `assignee` (directly or as delegator), oldest first."""
    q = (
        select(TaskRow, RequestRow)
        .join(RequestRow, col(RequestRow.id) == col(TaskRow.request_id))
        .where(col(TaskRow.status) == TaskStatus.PENDING.value)
        .where((col(TaskRow.assignee) == assignee) | (col(TaskRow.acting_for) == assignee))
        .order_by(col(TaskRow.activated_at), col(TaskRow.id))
    )
    return [(t, r) for t, r in (await session.execute(q)).all()]


async def all_request_ids(session: AsyncSession) -> list[str]:
    return list(
        (await session.execute(select(col(RequestRow.id)).order_by(col(RequestRow.id)))).scalars().all()
    )


async def count_requests(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(RequestRow))).scalar_one())


# -- idempotency ----------------------------------------------------------------------------
IDEMPOTENCY_KEY_MAX = 200  # the column's length; longer keys are stored by fit_key


async def idempotent_response(session: AsyncSession, *, key: str) -> dict[str, Any] | None:
    row = await session.get(IdempotencyRow, fit_key(key, IDEMPOTENCY_KEY_MAX))
    return dict(row.response) if row else None


async def remember_response(
    session: AsyncSession, *, key: str, request_id: str | None, response: dict[str, Any], now: datetime
) -> None:
    stored = fit_key(key, IDEMPOTENCY_KEY_MAX)
    session.add(
        IdempotencyRow(key=stored, request_id=request_id, response=_jsonable(response), created_at=now)
    )
    try:
        await session.flush()
    except IntegrityError as exc:
        raise IdempotencyConflict(key) from exc


# -- delegations ----------------------------------------------------------------------------
def delegation_from_row(r: DelegationRow) -> Delegation:
    return Delegation(
        id=r.id,
        delegator=r.delegator,
        delegate=r.delegate,
        starts_at=r.starts_at,
        ends_at=r.ends_at,
        templates=tuple(r.templates or ()),
        move_pending=r.move_pending,
        reason=r.reason,
        created_at=r.created_at,
        cancelled_at=r.cancelled_at,
        source_request=r.source_request,
    )


async def active_delegations(session: AsyncSession, *, now: datetime) -> list[Delegation]:
    rows = (
        (
            await session.execute(
                select(DelegationRow)
                .where(col(DelegationRow.cancelled_at).is_(None))
                .where(col(DelegationRow.ends_at) > now)
            )
        )
        .scalars()
        .all()
    )
    return [delegation_from_row(r) for r in rows]


async def list_delegations(
    session: AsyncSession, *, user: str | None = None, include_past: bool = False, now: datetime
) -> list[Delegation]:
    q = select(DelegationRow)
    if user:
        q = q.where((col(DelegationRow.delegator) == user) | (col(DelegationRow.delegate) == user))
    if not include_past:
        q = q.where(col(DelegationRow.cancelled_at).is_(None)).where(col(DelegationRow.ends_at) > now)
    q = q.order_by(col(DelegationRow.starts_at))
    return [delegation_from_row(r) for r in (await session.execute(q)).scalars().all()]


async def insert_delegation(session: AsyncSession, *, delegation: Delegation) -> None:
    d = delegation
    session.add(
        DelegationRow(
            id=d.id,
            delegator=d.delegator,
            delegate=d.delegate,
            starts_at=d.starts_at,
            ends_at=d.ends_at,
            templates=list(d.templates),
            move_pending=d.move_pending,
            reason=d.reason,
            source_request=d.source_request,
            created_at=d.created_at or d.starts_at,
        )
    )
    await session.flush()


async def cancel_delegation(session: AsyncSession, *, delegation_id: str, now: datetime) -> Delegation | None:
    row = await session.get(DelegationRow, delegation_id)
    if row is None:
        return None
    if row.cancelled_at is None:
        row.cancelled_at = now
        await session.flush()
    return delegation_from_row(row)


async def requests_with_open_tasks_of(
    session: AsyncSession, *, user: str, acting_too: bool = False
) -> list[str]:
    """Requests where `user` holds an open task of their own (`acting_too`: or for someone else)."""
    q = select(col(TaskRow.request_id)).where(col(TaskRow.assignee) == user)
    if not acting_too:
        q = q.where(col(TaskRow.acting_for).is_(None))
    q = q.where(col(TaskRow.status).in_([TaskStatus.PENDING.value, TaskStatus.QUEUED.value])).distinct()
    return list((await session.execute(q)).scalars().all())


async def open_task_count(session: AsyncSession, *, user: str) -> int:
    """Open tasks (pending or queued) `user` holds, for themself or for someone else."""
    q = (
        select(func.count())
        .select_from(TaskRow)
        .where(col(TaskRow.assignee) == user)
        .where(col(TaskRow.status).in_([TaskStatus.PENDING.value, TaskStatus.QUEUED.value]))
    )
    return int((await session.execute(q)).scalar_one())
