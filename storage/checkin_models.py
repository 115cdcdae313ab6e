"""Tables of field check-ins: trips, check-ins and the per-database link secret. Rows only; the
meaning lives in `checkins.core`, the conversions in `storage.checkin_store`. The timers of the
missing-check-in ladder and the daily summary are rows of the timer table (`storage.timer_models`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Float, Index, Integer, String
from sqlmodel import Field, SQLModel

from storage.base import UTCDateTime


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class TripRow(SQLModel, table=True):
    """One traveller's trip, made when an outing or vehicle dispatch request is approved."""

    __tablename__ = "checkin_trips"
    __table_args__ = (Index("ix_checkin_trips_traveller_starts", "traveller", "starts_at"),)

    id: str = Field(sa_column=Column(String(48), primary_key=True))
    request_id: str = Field(sa_column=Column(String(40), nullable=False, index=True))
    template_key: str = Field(sa_column=Column(String(64), nullable=False))
    traveller: str = Field(sa_column=Column(String(64), nullable=False))
    title: str = Field(default="", sa_column=Column(String(200), nullable=False))
    dest_name: str = Field(default="", sa_column=Column(String(200), nullable=False))
    dest_site: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    # WGS-84; empty when the destination has no coordinates (a vehicle trip to a place name)
    dest_lat: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    dest_lng: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    dest_radius_m: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    starts_at: datetime = _ts()
    ends_at: datetime = _ts(index=True)
    status: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: datetime = _ts()


class CheckinRow(SQLModel, table=True):
    """One check-in, as reported and as judged. Never updated; never deleted."""

    __tablename__ = "checkins"
    __table_args__ = (
        Index("ix_checkins_user_at", "user_id", "at"),
        Index("ix_checkins_user_spot", "user_id", "lat", "lng"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    user_id: str = Field(sa_column=Column(String(64), nullable=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    at: datetime = _ts(index=True)  # the device's time when it sent one, else the server's
    received_at: datetime = _ts()
    device_at: datetime | None = _ts(nullable=True)
    lat: float = Field(sa_column=Column(Float, nullable=False))  # as reported, in coord_system
    lng: float = Field(sa_column=Column(Float, nullable=False))
    coord_system: str = Field(sa_column=Column(String(8), nullable=False))
    wgs_lat: float = Field(sa_column=Column(Float, nullable=False))
    wgs_lng: float = Field(sa_column=Column(Float, nullable=False))
    accuracy_m: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    source: str = Field(sa_column=Column(String(16), nullable=False))
    channel: str = Field(default="", sa_column=Column(String(16), nullable=False))
    label: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    verdict: str = Field(sa_column=Column(String(16), nullable=False))
    distance_m: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    target_site: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    target_name: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    radius_m: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    trip_id: str | None = Field(default=None, sa_column=Column(String(48), nullable=True, index=True))
    request_id: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    trust_score: int = Field(sa_column=Column(Integer, nullable=False))
    # {"schema_version": 1, "level": "high", "reasons": [{"code", "penalty", "message"}]}
    trust: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    made_up: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    fix_request_id: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    # platform:event id, page:nonce, api:user:key — a retried delivery records nothing new
    dedupe_key: str | None = Field(default=None, sa_column=Column(String(200), nullable=True, unique=True))


class LinkSecretRow(SQLModel, table=True):
    """The secret signing check-in links when OABOT_LINK_SECRET is unset: made once per database
    so every replica signs and checks with the same one."""

    __tablename__ = "checkin_link_secrets"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    secret: str = Field(sa_column=Column(String(128), nullable=False))
    created_at: datetime = _ts()
