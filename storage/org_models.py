"""SQLModel tables of the organisation directory: org_meta, departments, org_users,
user_accounts and sites, and org_syncs (the record of directory syncs).

Rows only; `storage.org_repo` turns them into an `org.model.Org` and back. Nothing here is ever
deleted by an import: people, departments and sites that leave the org file are marked
inactive, so approval trails keep showing their names. Column sizes come from `org.model`,
whose limits the loader enforces, so a validated file always fits. Alembic owns the schema:
keep types explicit (String(n), JSON, UTCDateTime) and defaults client-side.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Float, Integer, String
from sqlmodel import Field, SQLModel

from org.model import (
    ACCOUNT_MAX_LEN,
    ID_MAX_LEN,
    NAME_MAX_LEN,
    PLATFORM_MAX_LEN,
    TIMEZONE_MAX_LEN,
)
from storage.base import UTCDateTime

ORG_META_ID = 1  # org_meta holds exactly one row
COORD_SYSTEM_MAX_LEN = 8


class OrgMetaRow(SQLModel, table=True):
    """The organisation itself and when its directory was last imported."""

    __tablename__ = "org_meta"

    id: int = Field(default=ORG_META_ID, primary_key=True)
    name: str = Field(sa_type=String(NAME_MAX_LEN))
    timezone: str = Field(sa_type=String(TIMEZONE_MAX_LEN))
    imported_at: datetime = Field(sa_type=UTCDateTime)
    # Bumped by every import that changes something, so cached snapshots know they are stale.
    version: int = Field(default=1)


class DepartmentRow(SQLModel, table=True):
    __tablename__ = "departments"

    id: str = Field(sa_type=String(ID_MAX_LEN), primary_key=True)
    name: str = Field(sa_type=String(NAME_MAX_LEN))
    parent_id: str | None = Field(default=None, sa_type=String(ID_MAX_LEN))
    leader_id: str | None = Field(default=None, sa_type=String(ID_MAX_LEN))
    deputy_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    active: bool = Field(default=True)
    position: int = Field(default=0)  # order in the org file, for listings
    updated_at: datetime = Field(sa_type=UTCDateTime)


class OrgUserRow(SQLModel, table=True):
    """A person. `active` is False once they are gone from the org file (their account is locked)."""

    __tablename__ = "org_users"

    id: str = Field(sa_type=String(ID_MAX_LEN), primary_key=True)
    name: str = Field(sa_type=String(NAME_MAX_LEN))
    department_id: str = Field(sa_type=String(ID_MAX_LEN), index=True)
    title: str = Field(default="", sa_type=String(NAME_MAX_LEN))
    manager_id: str | None = Field(default=None, sa_type=String(ID_MAX_LEN))
    roles: list[str] = Field(default_factory=list, sa_type=JSON)
    level: int | None = Field(default=None)
    active: bool = Field(default=True)
    position: int = Field(default=0)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    deactivated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserAccountRow(SQLModel, table=True):
    """A platform account (WeCom userid, DingTalk userid, ...) and the person it belongs to."""

    __tablename__ = "user_accounts"

    platform: str = Field(sa_type=String(PLATFORM_MAX_LEN), primary_key=True)
    account: str = Field(sa_type=String(ACCOUNT_MAX_LEN), primary_key=True)
    user_id: str = Field(sa_type=String(ID_MAX_LEN), foreign_key="org_users.id", index=True)


class SiteRow(SQLModel, table=True):
    """A place where field staff check in (外勤签到)."""

    __tablename__ = "sites"

    id: str = Field(sa_type=String(ID_MAX_LEN), primary_key=True)
    name: str = Field(sa_type=String(NAME_MAX_LEN))
    lat: float = Field(sa_type=Float)
    lng: float = Field(sa_type=Float)
    radius_m: float = Field(sa_type=Float)
    coord_system: str = Field(default="gcj02", sa_type=String(COORD_SYSTEM_MAX_LEN))
    active: bool = Field(default=True)
    position: int = Field(default=0)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class OrgSyncRow(SQLModel, table=True):
    """One directory sync from WeCom or DingTalk (`oabot org history`): who or what ran it, when,
    how it ended, and the difference it made (or would have made, when it was refused)."""

    __tablename__ = "org_syncs"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    platform: str = Field(sa_column=Column(String(PLATFORM_MAX_LEN), nullable=False))
    # cli:<os user>, schedule, event:<event name>:<account or department id>
    trigger: str = Field(sa_column=Column(String(128), nullable=False))
    scope: str = Field(sa_column=Column(String(16), nullable=False))  # all | person | department
    status: str = Field(
        sa_column=Column(String(16), nullable=False)
    )  # applied | unchanged | refused | failed
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    finished_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    summary: str = Field(default="", sa_column=Column(String(512), nullable=False))
    diff: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    problems: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    handed_over: int = Field(default=0, sa_column=Column(Integer, nullable=False))
