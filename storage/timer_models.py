"""Timer rows: every future moment the service must act at (a reminder rung of a task, a
digest slot, the start of a delegation) is one row here, written in the same transaction as
the change that made it necessary.

Rows only. What a timer means lives in `deadlines.ladder`; writing, cancelling and claiming
them lives in `deadlines.timers`. There is never one scheduler job per timer: one periodic scan
claims the rows that are due.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from storage.base import UTCDateTime


class TimerRow(SQLModel, table=True):
    """One timer. `status`: pending -> firing (claimed, leased) -> done | cancelled | failed.

    `key` is set for timers that must exist at most once whatever the number of replicas
    scheduling them (a digest slot, a delegation's start); task rungs leave it empty.
    """

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_status_due", "status", "due_at"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    kind: str = Field(sa_column=Column(String(24), nullable=False))
    status: str = Field(sa_column=Column(String(12), nullable=False))
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    request_id: str | None = Field(default=None, sa_column=Column(String(40), nullable=True, index=True))
    task_id: str | None = Field(default=None, sa_column=Column(String(48), nullable=True))
    ref: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    key: str | None = Field(default=None, sa_column=Column(String(120), nullable=True, unique=True))
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    claim_token: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    fired_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
