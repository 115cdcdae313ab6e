"""Tables shared by the platform adapters: the durable inbox of chat events and the handles
of cards sent to people (WeCom response codes, DingTalk out-track ids) for in-place updates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.base import UTCDateTime


class InboxRow(SQLModel, table=True):
    """A verified chat event, stored before the platform is answered; processed afterwards."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("platform", "event_id", name="uq_inbox_platform_event"),
        Index("ix_inbox_status_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    platform: str = Field(sa_column=Column(String(16), nullable=False))
    event_id: str = Field(sa_column=Column(String(200), nullable=False))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))  # pending | working | done | dead
    attempts: int = Field(sa_column=Column(Integer, nullable=False))
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    processed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class CardRefRow(SQLModel, table=True):
    """Where a task's card went on a platform, so it can be updated in place later."""

    __tablename__ = "platform_cards"
    __table_args__ = (UniqueConstraint("platform", "task_id", "user_id", name="uq_platform_card"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    platform: str = Field(sa_column=Column(String(16), nullable=False))
    task_id: str = Field(sa_column=Column(String(48), nullable=False, index=True))
    user_id: str = Field(sa_column=Column(String(64), nullable=False))
    account: str = Field(sa_column=Column(String(64), nullable=False))
    card_id: str = Field(sa_column=Column(String(128), nullable=False))  # WeCom task_id / DingTalk outTrackId
    handle: str | None = Field(
        default=None, sa_column=Column(String(256), nullable=True)
    )  # latest response_code
    handle_used: bool = Field(default=False)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
