"""Published statistics 统计发布: one row per publication of a period, holding the numbers as
they were when published (the page's JSON), never updated. Publishing the same period again adds
a row with the next version; a later correction of the data changes no published row.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Date, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.base import UTCDateTime


class StatsPublicationRow(SQLModel, table=True):
    __tablename__ = "stats_publications"
    __table_args__ = (UniqueConstraint("period_from", "period_to", "version", name="uq_stats_publication"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    period_from: date = Field(sa_column=Column(Date, nullable=False))
    period_to: date = Field(sa_column=Column(Date, nullable=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    numbers: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    published_by: str = Field(sa_column=Column(String(64), nullable=False))
    published_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    recipients: int = Field(sa_column=Column(Integer, nullable=False))
