"""The organisation's own calendar overrides: extra days off and extra working days.

They win over the official Chinese holiday schedule (see `deadlines.calendar`). One row per
date; a date is either an extra holiday or an extra working day, never both. Rows only; the
queries live in `storage.calendar_store`.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, String, Text
from sqlmodel import Field, SQLModel

from storage.base import UTCDateTime


class CalendarOverrideRow(SQLModel, table=True):
    __tablename__ = "calendar_overrides"

    day: date = Field(sa_column=Column(Date, primary_key=True))
    kind: str = Field(sa_column=Column(String(16), nullable=False))  # holiday | workday
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_by: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
