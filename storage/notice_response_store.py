"""Meeting RSVPs and poll votes in and out, on the notice tables (`storage.notice_models`):
keyword-only functions taking the caller's session; nothing here decides a rule.

An answer is one row per person (RSVP) or per person and question (vote); answering again
replaces the row in place (an upsert on its key), so a changed vote is stored, and counted, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notices.meetings import Rsvp
from notices.model import RsvpAnswer
from notices.polls import Answer, Vote
from storage.notice_models import NoticeRsvpRow, NoticeVoteRow


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def rsvps_of(session: AsyncSession, *, notice_id: str) -> dict[str, Rsvp]:
    rows = (
        await session.execute(select(NoticeRsvpRow).where(col(NoticeRsvpRow.notice_id) == notice_id))
    ).scalars()
    return {
        r.person: Rsvp(r.person, RsvpAnswer(r.answer), r.reason, r.delegate, r.at)
        for r in rows
        if r.answer in {a.value for a in RsvpAnswer}
    }


async def put_rsvp(session: AsyncSession, *, notice_id: str, rsvp: Rsvp) -> None:
    values = {
        "answer": rsvp.answer.value,
        "reason": rsvp.reason,
        "delegate": rsvp.delegate,
        "at": rsvp.at,
    }
    stmt = _insert(session)(NoticeRsvpRow).values(notice_id=notice_id, person=rsvp.person, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["notice_id", "person"], set_=values))


async def votes_of(session: AsyncSession, *, notice_id: str, person: str | None = None) -> list[Vote]:
    q = select(NoticeVoteRow).where(col(NoticeVoteRow.notice_id) == notice_id)
    if person is not None:
        q = q.where(col(NoticeVoteRow.person) == person)
    rows = (await session.execute(q.order_by(col(NoticeVoteRow.at), col(NoticeVoteRow.id)))).scalars()
    return [
        Vote(
            r.person,
            r.question_id,
            tuple(int(c) for c in r.choices or () if isinstance(c, int)),
            r.text,
            r.at,
        )
        for r in rows
    ]


async def put_ballot(
    session: AsyncSession, *, notice_id: str, person: str, ballot: Mapping[str, Answer], at: datetime
) -> None:
    """The person's answers replace their earlier ones, question by question; answers to
    questions no longer in the ballot are removed."""
    await session.execute(
        delete(NoticeVoteRow).where(
            col(NoticeVoteRow.notice_id) == notice_id,
            col(NoticeVoteRow.person) == person,
            col(NoticeVoteRow.question_id).not_in(list(ballot)),
        )
    )
    for question_id, answer in ballot.items():
        values = {"choices": list(answer.choices), "text": answer.text, "at": at}
        stmt = _insert(session)(NoticeVoteRow).values(
            notice_id=notice_id, person=person, question_id=question_id, **values
        )
        await session.execute(
            stmt.on_conflict_do_update(index_elements=["notice_id", "person", "question_id"], set_=values)
        )
