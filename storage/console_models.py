"""The console's chat history: what each demo user's simulated phone has received."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Integer, String, Text
from sqlmodel import Field, SQLModel

from storage.base import UTCDateTime


class ConsoleMessageRow(SQLModel, table=True):
    __tablename__ = "console_messages"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    user_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    # unique: handing the same outbox row over twice shows one message
    outbox_id: int | None = Field(default=None, sa_column=Column(Integer, nullable=True, unique=True))
    direction: str = Field(sa_column=Column(String(8), nullable=False))  # in | out
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    request_id: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    task_id: str | None = Field(default=None, sa_column=Column(String(48), nullable=True, index=True))
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    closed: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    outcome: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
