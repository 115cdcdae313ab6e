"""What the outbox dispatcher knows it already handed to a platform, kept in the database the
outbox rows live in, so a restored backup and its markers always describe the same moment.

A marker was kept in the key-value store (keyed by outbox id alone) before: after a restore that
kept Redis, rows the backup still had as pending found a marker from the lost future and were
skipped as "already sent". A row here exists from the moment a delivery succeeded on one channel.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.base import UTCDateTime


class OutboxSendRow(SQLModel, table=True):
    """One outbox message delivered on one channel (wecom, dingtalk, console)."""

    __tablename__ = "outbox_sends"
    __table_args__ = (UniqueConstraint("outbox_id", "channel", name="uq_outbox_sends_row_channel"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    outbox_id: int = Field(sa_column=Column(Integer, nullable=False))
    channel: str = Field(sa_column=Column(String(16), nullable=False))
    sent_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
