"""Named REST API tokens: one row per token, holding a SHA-256 digest of its secret, never the secret.

`services.api_tokens` is the only module that reads or writes this table; it creates the secret,
shows it once and stores its digest here. Revoking sets `revoked_at`; rows are never deleted so
`oabot tokens list` keeps showing what existed and when it was last used.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Integer, String
from sqlmodel import Field, SQLModel

from storage.base import UTCDateTime


class ApiTokenRow(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    name: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    # hex SHA-256 of the secret the holder sends as `Authorization: Bearer <secret>`
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    scopes: str = Field(sa_column=Column(String(64), nullable=False))  # comma-separated: read,act,admin
    # a personal token acts only as this person; None: an integration token
    user_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
