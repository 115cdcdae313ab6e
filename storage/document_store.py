"""Queries of the document tables (`storage.document_models`): the number counter, the numbers
issued and voided, and the first opens of requests. Keyword-only functions taking the session;
the caller's transaction holds everything together (a number is given in the transaction of the
registrar's decision, so a decision that does not commit gives no number and leaves no gap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.document_models import DocNumberCounterRow, DocNumberRow, RequestOpenRow


def _insert(session: AsyncSession, model: Any) -> Any:
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return dialect_insert(model)


# -- numbers --------------------------------------------------------------------------------------
async def next_seq(session: AsyncSession, *, prefix: str, year: int, now: datetime) -> int:
    """The next sequence of (prefix, year), taken in one statement: the counter row is created at
    1 or raised by one under its row lock (held until the caller's transaction ends), so racing
    registrations queue on it and a rolled-back one gives its number back."""
    table = DocNumberCounterRow.__table__  # type: ignore[attr-defined]
    stmt = (
        _insert(session, DocNumberCounterRow)
        .values(prefix=prefix, year=year, last_seq=1, updated_at=now)
        .on_conflict_do_update(
            index_elements=["prefix", "year"],
            set_={"last_seq": table.c.last_seq + 1, "updated_at": now},
        )
        .returning(table.c.last_seq)
    )
    return int((await session.execute(stmt)).scalar_one())


@dataclass(frozen=True)
class IssuedNumber:
    request_id: str
    number: str
    prefix: str
    year: int
    seq: int
    status: str  # issued | void
    issued_at: datetime
    voided_at: datetime | None


def _issued(row: DocNumberRow) -> IssuedNumber:
    return IssuedNumber(
        request_id=row.request_id,
        number=row.number,
        prefix=row.prefix,
        year=row.year,
        seq=row.seq,
        status=row.status,
        issued_at=row.issued_at,
        voided_at=row.voided_at,
    )


async def insert_number(
    session: AsyncSession,
    *,
    request_id: str,
    template_key: str,
    prefix: str,
    year: int,
    seq: int,
    number: str,
    now: datetime,
) -> IssuedNumber:
    row = DocNumberRow(
        request_id=request_id,
        template_key=template_key,
        prefix=prefix,
        year=year,
        seq=seq,
        number=number,
        status="issued",
        issued_at=now,
    )
    session.add(row)
    await session.flush()  # the unique key (prefix, year, seq) is the backstop: refused here
    return _issued(row)


async def number_of(session: AsyncSession, *, request_id: str) -> IssuedNumber | None:
    row = await session.get(DocNumberRow, request_id)
    return _issued(row) if row is not None else None


async def numbers_of(session: AsyncSession, *, request_ids: Sequence[str]) -> dict[str, IssuedNumber]:
    if not request_ids:
        return {}
    rows = (
        (await session.execute(select(DocNumberRow).where(col(DocNumberRow.request_id).in_(request_ids))))
        .scalars()
        .all()
    )
    return {r.request_id: _issued(r) for r in rows}


async def void_number(session: AsyncSession, *, request_id: str, now: datetime) -> bool:
    """Mark an issued number void (it stays taken); False when there was none issued."""
    result = await session.execute(
        update(DocNumberRow)
        .where(col(DocNumberRow.request_id) == request_id, col(DocNumberRow.status) == "issued")
        .values(status="void", voided_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# -- opens ------------------------------------------------------------------------------------------
async def record_open(
    session: AsyncSession, *, request_id: str, person: str, at: datetime, channel: str
) -> None:
    """Record `person`'s first open of a request; a later open changes nothing."""
    stmt = (
        _insert(session, RequestOpenRow)
        .values(request_id=request_id, person=person, opened_at=at, channel=channel)
        .on_conflict_do_nothing(index_elements=["request_id", "person"])
    )
    await session.execute(stmt)


async def has_opened(session: AsyncSession, *, request_id: str, person: str) -> bool:
    return await session.get(RequestOpenRow, (request_id, person)) is not None


@dataclass(frozen=True)
class FirstOpen:
    person: str
    at: datetime
    channel: str


async def first_opens(session: AsyncSession, *, request_id: str) -> dict[str, FirstOpen]:
    rows = (
        (
            await session.execute(
                select(RequestOpenRow)
                .where(col(RequestOpenRow.request_id) == request_id)
                .order_by(col(RequestOpenRow.opened_at))
            )
        )
        .scalars()
        .all()
    )
    return {r.person: FirstOpen(r.person, r.opened_at, r.channel) for r in rows}
