"""Notice rows in and out: keyword-only functions taking the caller's session.

Rows become `notices.model` objects here and back; nothing here decides a rule. Receipt changes
are conditional updates (`WHERE state IN (...)`), so of two writers racing for the same receipt
(a tap and the default timer, two taps) exactly one changes it; the caller passes the states the
move is allowed from (`notices.rules.move_from`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notices.model import (
    Audience,
    Confidentiality,
    Meeting,
    Notice,
    NoticeEvent,
    NoticeEventKind,
    NoticeKind,
    NoticeStatus,
    Poll,
    Receipt,
    ReceiptState,
)
from storage.notice_models import NoticeEventRow, NoticeReceiptRow, NoticeRow, NoticeViewRow


@dataclass(frozen=True)
class StoredNotice:
    notice: Notice
    password_hash: str | None
    channel: str


# -- conversions --------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def notice_of(row: NoticeRow, recipients: Sequence[str] = ()) -> Notice:
    return Notice(
        id=row.id,
        kind=NoticeKind(row.kind),
        title=row.title,
        body=row.body,
        author=row.author,
        audience=Audience.from_json(row.audience),
        recipients=tuple(recipients),
        confidentiality=Confidentiality(row.confidentiality),
        named_only=row.named_only,
        has_password=row.password_hash is not None,
        status=NoticeStatus(row.status),
        created_at=row.created_at,
        published_at=row.published_at,
        ack_deadline=row.ack_deadline,
        pinned_until=row.pinned_until,
        recalled_at=row.recalled_at,
        meeting=Meeting.from_json(row.meeting) if row.meeting else None,
        poll=Poll.from_json(row.poll) if row.poll else None,
        urged_at=row.urged_at,
        approval_request=row.approval_request,
        reject_reason=row.reject_reason,
        version=row.version,
    )


def receipt_of(row: NoticeReceiptRow) -> Receipt:
    return Receipt(
        notice_id=row.notice_id,
        person=row.person,
        state=ReceiptState(row.state),
        card_no=row.card_no,
        opened_at=row.opened_at,
        opened_via=row.opened_via,
        acknowledged_at=row.acknowledged_at,
        acknowledged_via=row.acknowledged_via,
        defaulted_at=row.defaulted_at,
        added_by=row.added_by,
        version=row.version,
    )


def event_of(row: NoticeEventRow) -> NoticeEvent:
    return NoticeEvent(
        notice_id=row.notice_id,
        at=row.at,
        kind=NoticeEventKind(row.kind),
        actor=row.actor,
        channel=row.channel,
        data=dict(row.data or {}),
    )


# -- notices ------------------------------------------------------------------------------------


async def insert_notice(
    session: AsyncSession, *, notice: Notice, password_hash: str | None, channel: str, now: datetime
) -> None:
    session.add(
        NoticeRow(
            id=notice.id,
            kind=notice.kind.value,
            title=notice.title,
            body=notice.body,
            author=notice.author,
            audience=notice.audience.to_json(),
            confidentiality=notice.confidentiality.value,
            named_only=notice.named_only,
            password_hash=password_hash,
            status=notice.status.value,
            version=notice.version,
            channel=channel[:16],
            created_at=notice.created_at,
            updated_at=now,
            published_at=notice.published_at,
            ack_deadline=notice.ack_deadline,
            pinned_until=notice.pinned_until,
            recalled_at=notice.recalled_at,
            urged_at=notice.urged_at,
            approval_request=notice.approval_request,
            reject_reason=notice.reject_reason,
            meeting=notice.meeting.to_json() if notice.meeting else None,
            poll=notice.poll.to_json() if notice.poll else None,
        )
    )
    await session.flush()


async def load_notice(
    session: AsyncSession, *, notice_id: str, for_update: bool = False
) -> StoredNotice | None:
    """The notice with its recipients (card order); `for_update` locks its row (PostgreSQL)."""
    q = select(NoticeRow).where(col(NoticeRow.id) == notice_id)
    if for_update:
        q = q.with_for_update()
    row = (await session.execute(q)).scalar_one_or_none()
    if row is None:
        return None
    people = (
        await session.execute(
            select(col(NoticeReceiptRow.person))
            .where(col(NoticeReceiptRow.notice_id) == notice_id)
            .order_by(col(NoticeReceiptRow.card_no))
        )
    ).scalars()
    return StoredNotice(
        notice=notice_of(row, list(people)), password_hash=row.password_hash, channel=row.channel
    )


async def notice_status(session: AsyncSession, *, notice_id: str) -> str | None:
    """The notice's status as committed now (a fresh statement: PostgreSQL's read committed
    sees a recall that committed while this transaction waited)."""
    return (
        await session.execute(select(col(NoticeRow.status)).where(col(NoticeRow.id) == notice_id))
    ).scalar_one_or_none()


async def notice_by_request(session: AsyncSession, *, request_id: str) -> NoticeRow | None:
    """The notice a `notice_publish` approval request is about."""
    return (
        await session.execute(select(NoticeRow).where(col(NoticeRow.approval_request) == request_id))
    ).scalar_one_or_none()


async def update_notice(
    session: AsyncSession, *, notice_id: str, version: int, now: datetime, **values: Any
) -> bool:
    """Change a notice if it is still at `version` (and bump it). False: someone changed it first."""
    result = await session.execute(
        update(NoticeRow)
        .where(col(NoticeRow.id) == notice_id, col(NoticeRow.version) == version)
        .values(version=version + 1, updated_at=now, **values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# -- receipts -------------------------------------------------------------------------------------


async def insert_receipts(
    session: AsyncSession,
    *,
    notice_id: str,
    people: Sequence[str],
    now: datetime,
    added_by: str | None = None,
) -> list[Receipt]:
    """One `sent` receipt per person, numbered after the notice's last card."""
    last = (
        await session.execute(
            select(func.max(NoticeReceiptRow.card_no)).where(col(NoticeReceiptRow.notice_id) == notice_id)
        )
    ).scalar_one_or_none() or 0
    rows = [
        NoticeReceiptRow(
            notice_id=notice_id,
            person=person,
            card_no=last + n,
            state=ReceiptState.SENT.value,
            version=1,
            created_at=now,
            added_by=added_by,
            password_failures=0,
        )
        for n, person in enumerate(people, 1)
    ]
    session.add_all(rows)
    await session.flush()
    return [receipt_of(r) for r in rows]


async def receipts_of(session: AsyncSession, *, notice_id: str) -> list[Receipt]:
    rows = (
        await session.execute(
            select(NoticeReceiptRow)
            .where(col(NoticeReceiptRow.notice_id) == notice_id)
            .order_by(col(NoticeReceiptRow.card_no))
        )
    ).scalars()
    return [receipt_of(r) for r in rows]


async def receipt_row(
    session: AsyncSession, *, notice_id: str, person: str, for_update: bool = False
) -> NoticeReceiptRow | None:
    """One person's receipt; `for_update` locks its row (PostgreSQL), as a count kept on it needs."""
    q = select(NoticeReceiptRow).where(
        col(NoticeReceiptRow.notice_id) == notice_id, col(NoticeReceiptRow.person) == person
    )
    if for_update:
        q = q.with_for_update()
    return (await session.execute(q)).scalar_one_or_none()


async def move_receipt(
    session: AsyncSession,
    *,
    notice_id: str,
    person: str,
    from_states: Collection[ReceiptState],
    values: dict[str, Any],
) -> bool:
    """Change one receipt if it is in one of `from_states`; False: it was not (nothing changed)."""
    result = await session.execute(
        update(NoticeReceiptRow)
        .where(
            col(NoticeReceiptRow.notice_id) == notice_id,
            col(NoticeReceiptRow.person) == person,
            col(NoticeReceiptRow.state).in_([s.value for s in from_states]),
        )
        .values(version=NoticeReceiptRow.version + 1, **values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def move_all(
    session: AsyncSession,
    *,
    notice_id: str,
    from_states: Collection[ReceiptState],
    values: dict[str, Any],
) -> list[str]:
    """Change every receipt of the notice in one of `from_states`; the people changed."""
    result = await session.execute(
        update(NoticeReceiptRow)
        .where(
            col(NoticeReceiptRow.notice_id) == notice_id,
            col(NoticeReceiptRow.state).in_([s.value for s in from_states]),
        )
        .values(version=NoticeReceiptRow.version + 1, **values)
        .returning(col(NoticeReceiptRow.person))
    )
    return sorted(str(p) for p in result.scalars())


async def set_password_state(
    session: AsyncSession, *, notice_id: str, person: str, failures: int, locked_until: datetime | None
) -> None:
    await session.execute(
        update(NoticeReceiptRow)
        .where(col(NoticeReceiptRow.notice_id) == notice_id, col(NoticeReceiptRow.person) == person)
        .values(password_failures=failures, locked_until=locked_until)
    )


async def touch_receipts(session: AsyncSession, *, notice_id: str, states: Collection[ReceiptState]) -> int:
    """Bump the version of every receipt in `states` (locks them on PostgreSQL); how many."""
    result = await session.execute(
        update(NoticeReceiptRow)
        .where(
            col(NoticeReceiptRow.notice_id) == notice_id,
            col(NoticeReceiptRow.state).in_([s.value for s in states]),
        )
        .values(version=NoticeReceiptRow.version + 1)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# -- the trail and views ------------------------------------------------------------------------


async def add_event(session: AsyncSession, *, event: NoticeEvent) -> None:
    session.add(
        NoticeEventRow(
            notice_id=event.notice_id,
            at=event.at,
            actor=event.actor,
            kind=event.kind.value,
            channel=event.channel[:16],
            data=_jsonable(event.data),
        )
    )


async def events_of(session: AsyncSession, *, notice_id: str) -> list[NoticeEvent]:
    rows = (
        await session.execute(
            select(NoticeEventRow)
            .where(col(NoticeEventRow.notice_id) == notice_id)
            .order_by(col(NoticeEventRow.id))
        )
    ).scalars()
    return [event_of(r) for r in rows]


async def add_view(session: AsyncSession, *, notice_id: str, person: str, at: datetime, channel: str) -> None:
    session.add(NoticeViewRow(notice_id=notice_id, person=person, at=at, channel=channel[:16]))


async def views_of(session: AsyncSession, *, notice_id: str) -> list[NoticeViewRow]:
    return list(
        (
            await session.execute(
                select(NoticeViewRow)
                .where(col(NoticeViewRow.notice_id) == notice_id)
                .order_by(col(NoticeViewRow.id))
            )
        ).scalars()
    )


# -- lists --------------------------------------------------------------------------------------


async def notices_for(
    session: AsyncSession,
    *,
    person: str,
    states: Collection[ReceiptState] | None = None,
    statuses: Collection[NoticeStatus] = (NoticeStatus.PUBLISHED,),
    limit: int = 50,
) -> list[tuple[NoticeRow, NoticeReceiptRow]]:
    """The notices addressed to `person` with their receipt, newest first."""
    q = (
        select(NoticeRow, NoticeReceiptRow)
        .join(NoticeReceiptRow, col(NoticeReceiptRow.notice_id) == col(NoticeRow.id))
        .where(col(NoticeReceiptRow.person) == person, col(NoticeRow.status).in_([s.value for s in statuses]))
    )
    if states is not None:
        q = q.where(col(NoticeReceiptRow.state).in_([s.value for s in states]))
    q = q.order_by(col(NoticeRow.published_at).desc(), col(NoticeRow.id).desc()).limit(limit)
    return [(n, r) for n, r in (await session.execute(q)).all()]


async def notices_by(session: AsyncSession, *, author: str, limit: int = 50) -> list[NoticeRow]:
    q = (
        select(NoticeRow)
        .where(col(NoticeRow.author) == author)
        .order_by(col(NoticeRow.created_at).desc(), col(NoticeRow.id).desc())
        .limit(limit)
    )
    return list((await session.execute(q)).scalars())


async def count_notices(session: AsyncSession) -> int:
    """How many notices are stored (any status)."""
    return int((await session.execute(select(func.count()).select_from(NoticeRow))).scalar_one())


async def progress_of(session: AsyncSession, *, notice_ids: Collection[str]) -> dict[str, dict[str, int]]:
    """Per notice: how many receipts are in each state."""
    if not notice_ids:
        return {}
    rows = (
        await session.execute(
            select(col(NoticeReceiptRow.notice_id), col(NoticeReceiptRow.state), func.count())
            .where(col(NoticeReceiptRow.notice_id).in_(list(notice_ids)))
            .group_by(col(NoticeReceiptRow.notice_id), col(NoticeReceiptRow.state))
        )
    ).all()
    out: dict[str, dict[str, int]] = {}
    for notice_id, state, count in rows:
        out.setdefault(str(notice_id), {})[str(state)] = int(count)
    return out


async def unanswered(
    session: AsyncSession, *, people: Collection[str] | None = None
) -> list[tuple[NoticeRow, NoticeReceiptRow]]:
    """Every unanswered receipt (sent or opened) of a published notice, by person then deadline;
    only `people`'s when given."""
    q = (
        select(NoticeRow, NoticeReceiptRow)
        .join(NoticeReceiptRow, col(NoticeReceiptRow.notice_id) == col(NoticeRow.id))
        .where(
            col(NoticeRow.status) == NoticeStatus.PUBLISHED.value,
            col(NoticeReceiptRow.state).in_([ReceiptState.SENT.value, ReceiptState.OPENED.value]),
        )
    )
    if people is not None:
        q = q.where(col(NoticeReceiptRow.person).in_(list(people)))
    q = q.order_by(col(NoticeReceiptRow.person), col(NoticeRow.ack_deadline), col(NoticeRow.id))
    return [(n, r) for n, r in (await session.execute(q)).all()]
