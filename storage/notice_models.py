"""Tables of notices 通知/公告/会议通知/调查: the notice, one receipt per recipient, meeting
回执 and poll votes, the record of every view of a restricted item, and the notice trail.

Rows only; the meaning lives in `notices.model` and `notices.rules`. `notice_events` is
append-only: a trigger refuses UPDATE and DELETE (see `NOTICE_EVENTS_APPEND_ONLY`; the migration
`e6a1c2d3f4b5_notices` creates the same triggers).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from storage.base import UTCDateTime


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _str(length: int, *, nullable: bool = False, index: bool = False, primary_key: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(String(length), nullable=nullable, index=index, primary_key=primary_key),
    )


class NoticeRow(SQLModel, table=True):
    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_status_deadline", "status", "ack_deadline"),)

    id: str = _str(40, primary_key=True)
    kind: str = _str(16)
    title: str = _str(200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    author: str = _str(64, index=True)
    # `notices.model.Audience.to_json()`
    audience: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    confidentiality: str = _str(16)
    named_only: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    # `scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>`; None: no access password
    password_hash: str | None = _str(255, nullable=True)
    status: str = _str(20, index=True)
    version: int = Field(sa_column=Column(Integer, nullable=False))
    channel: str = _str(16)
    created_at: datetime = _ts(index=True)
    updated_at: datetime | None = _ts(nullable=True)
    published_at: datetime | None = _ts(nullable=True, index=True)
    ack_deadline: datetime | None = _ts(nullable=True)
    pinned_until: datetime | None = _ts(nullable=True)
    recalled_at: datetime | None = _ts(nullable=True)
    urged_at: datetime | None = _ts(nullable=True)
    approval_request: str | None = _str(40, nullable=True, index=True)
    reject_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # `notices.model.Meeting.to_json()` / `Poll.to_json()`, each with its schema_version
    meeting: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    poll: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class NoticeReceiptRow(SQLModel, table=True):
    """One per recipient, written at publish (a 委派 delegate's later). `version` goes up with
    every change; changes are conditional updates on `state` (see `storage.notice_store`)."""

    __tablename__ = "notice_receipts"
    __table_args__ = (
        Index("ix_notice_receipts_person_state", "person", "state"),
        UniqueConstraint("notice_id", "card_no", name="uq_notice_receipts_card"),
    )

    notice_id: str = _str(40, primary_key=True)
    person: str = _str(64, primary_key=True)
    card_no: int = Field(sa_column=Column(Integer, nullable=False))
    state: str = _str(16)
    version: int = Field(sa_column=Column(Integer, nullable=False))
    created_at: datetime = _ts()
    opened_at: datetime | None = _ts(nullable=True)
    opened_via: str | None = _str(16, nullable=True)
    acknowledged_at: datetime | None = _ts(nullable=True)
    acknowledged_via: str | None = _str(16, nullable=True)
    defaulted_at: datetime | None = _ts(nullable=True)
    added_by: str | None = _str(64, nullable=True)
    # the access password: wrong tries in a row, and the end of a lock-out
    password_failures: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    locked_until: datetime | None = _ts(nullable=True)


class NoticeRsvpRow(SQLModel, table=True):
    """A meeting 回执: the person's current answer (every answer is also in `notice_events`)."""

    __tablename__ = "notice_rsvps"

    notice_id: str = _str(40, primary_key=True)
    person: str = _str(64, primary_key=True)
    answer: str = _str(16)  # attend | decline | leave | delegate
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    delegate: str | None = _str(64, nullable=True)
    at: datetime = _ts()


class NoticeVoteRow(SQLModel, table=True):
    """A person's answer to one poll question; a changed vote replaces it (counted once)."""

    __tablename__ = "notice_votes"
    __table_args__ = (UniqueConstraint("notice_id", "person", "question_id", name="uq_notice_votes_answer"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    notice_id: str = _str(40, index=True)
    person: str = _str(64)
    question_id: str = _str(40)
    choices: list[Any] = Field(sa_column=Column(JSON, nullable=False))
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    at: datetime = _ts()


class NoticeViewRow(SQLModel, table=True):
    """Every view of a restricted item (who, when, channel)."""

    __tablename__ = "notice_views"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    notice_id: str = _str(40, index=True)
    person: str = _str(64)
    at: datetime = _ts()
    channel: str = _str(16)


class NoticeEventRow(SQLModel, table=True):
    """The notice trail, append-only: published, opened, acknowledged, defaulted, recalled,
    urged, viewed, unlock_failed, locked, rsvp, voted... Ordered by `id`."""

    __tablename__ = "notice_events"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    notice_id: str = _str(40, index=True)
    at: datetime = _ts()
    actor: str | None = _str(64, nullable=True)
    kind: str = _str(24)
    channel: str = _str(16)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


NOTICE_EVENTS_APPEND_ONLY: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "CREATE TRIGGER notice_events_no_update BEFORE UPDATE ON notice_events "
        "BEGIN SELECT RAISE(ABORT, 'notice_events is append-only: UPDATE refused'); END",
        "CREATE TRIGGER notice_events_no_delete BEFORE DELETE ON notice_events "
        "BEGIN SELECT RAISE(ABORT, 'notice_events is append-only: DELETE refused'); END",
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION notice_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'notice_events is append-only: % refused', TG_OP "
        "USING ERRCODE = 'insufficient_privilege'; END $$",
        "CREATE TRIGGER notice_events_no_change BEFORE UPDATE OR DELETE ON notice_events "
        "FOR EACH ROW EXECUTE FUNCTION notice_events_append_only()",
    ),
}


def _append_only(target: Table, connection: Connection, **_: Any) -> None:
    for statement in NOTICE_EVENTS_APPEND_ONLY.get(connection.dialect.name, ()):
        connection.execute(text(statement))


event.listen(NoticeEventRow.__table__, "after_create", _append_only)  # type: ignore[attr-defined]
