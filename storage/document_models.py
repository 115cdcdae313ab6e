"""Documents 公文: the number counters, the numbers issued, and who first opened a request.

`doc_number_counters` holds the last sequence given per (prefix, year); a registration raises it
under the row's lock in its own transaction, so numbers are gap-free. `doc_numbers` holds each
document's number, unique per (prefix, year, seq) as the backstop, `issued` or `void` (the
document was withdrawn or ended: the number stays taken). `request_opens` records the first time
each person opened a request (its page, or a card they acted on), which a recall 收回 checks.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Integer, PrimaryKeyConstraint, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.base import UTCDateTime


class DocNumberCounterRow(SQLModel, table=True):
    __tablename__ = "doc_number_counters"
    __table_args__ = (PrimaryKeyConstraint("prefix", "year", name="pk_doc_number_counters"),)

    prefix: str = Field(sa_column=Column(String(40), nullable=False))
    year: int = Field(sa_column=Column(Integer, nullable=False))
    last_seq: int = Field(sa_column=Column(Integer, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class DocNumberRow(SQLModel, table=True):
    __tablename__ = "doc_numbers"
    __table_args__ = (UniqueConstraint("prefix", "year", "seq", name="uq_doc_number_seq"),)

    request_id: str = Field(sa_column=Column(String(64), primary_key=True))
    template_key: str = Field(sa_column=Column(String(64), nullable=False))
    prefix: str = Field(sa_column=Column(String(40), nullable=False))
    year: int = Field(sa_column=Column(Integer, nullable=False))
    seq: int = Field(sa_column=Column(Integer, nullable=False))
    number: str = Field(sa_column=Column(String(200), nullable=False, index=True))
    status: str = Field(sa_column=Column(String(16), nullable=False))  # issued | void
    issued_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    voided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class RequestOpenRow(SQLModel, table=True):
    __tablename__ = "request_opens"
    __table_args__ = (PrimaryKeyConstraint("request_id", "person", name="pk_request_opens"),)

    request_id: str = Field(sa_column=Column(String(64), nullable=False))
    person: str = Field(sa_column=Column(String(64), nullable=False))
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    channel: str = Field(sa_column=Column(String(16), nullable=False))  # page | wecom | dingtalk | ...
