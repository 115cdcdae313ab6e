"""Persistence of field check-ins: rows in, `checkins.core` objects out, and back.

Queries are keyword-only functions taking the caller's session, so a check-in, its outbox rows
and its timers commit together. Once-only writes (a retried delivery, the link secret made by
the first replica) use INSERT .. ON CONFLICT DO NOTHING on a unique key: the database decides
who was first, on SQLite and PostgreSQL alike. The missing-check-in ladder is kept in the timer
table (`deadlines.timers`), not here.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import and_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from checkins.core import (
    FIX_TEMPLATE,
    QUOTA_STATUSES,
    Checkin,
    CheckinKind,
    Destination,
    Trip,
    TripStatus,
    Verdict,
    month_of,
)
from checkins.geo import LatLng
from checkins.trust import PriorFix, Source, Trust, TrustLevel, TrustReason
from storage.approval_models import RequestRow
from storage.base import fit_key
from storage.checkin_models import CheckinRow, LinkSecretRow, TripRow

TRUST_SCHEMA_VERSION = 1
LINK_SECRET_ID = 1
SAME_SPOT_LIMIT = 20


async def _insert_ignoring_conflict(
    session: AsyncSession, model: Any, values: dict[str, Any], key: str
) -> bool:
    """INSERT unless a row with the same unique `key` exists; True if this call inserted it."""
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(model).values(**values).on_conflict_do_nothing(index_elements=[key])
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


# -- trips ------------------------------------------------------------------------------------------
def trip_from_row(r: TripRow) -> Trip:
    point = LatLng(r.dest_lat, r.dest_lng) if r.dest_lat is not None and r.dest_lng is not None else None
    return Trip(
        id=r.id,
        request_id=r.request_id,
        template_key=r.template_key,
        traveller=r.traveller,
        destination=Destination(name=r.dest_name, site_id=r.dest_site, point=point, radius_m=r.dest_radius_m),
        starts_at=r.starts_at,
        ends_at=r.ends_at,
        created_at=r.created_at,
        status=TripStatus(r.status),
        title=r.title,
    )


def _trip_values(t: Trip) -> dict[str, Any]:
    d = t.destination
    return {
        "id": t.id,
        "request_id": t.request_id,
        "template_key": t.template_key,
        "traveller": t.traveller,
        "title": t.title[:200],
        "dest_name": d.name[:200],
        "dest_site": d.site_id,
        "dest_lat": d.point.lat if d.point else None,
        "dest_lng": d.point.lng if d.point else None,
        "dest_radius_m": d.radius_m,
        "starts_at": t.starts_at,
        "ends_at": t.ends_at,
        "status": t.status.value,
        "created_at": t.created_at,
    }


async def insert_trips(session: AsyncSession, *, trips: Sequence[Trip]) -> list[Trip]:
    """Insert the trips not stored yet (by id); the ones inserted by this call."""
    return [t for t in trips if await _insert_ignoring_conflict(session, TripRow, _trip_values(t), "id")]


async def load_trip(session: AsyncSession, *, trip_id: str) -> Trip | None:
    row = await session.get(TripRow, trip_id)
    return trip_from_row(row) if row else None


async def trips_of_request(session: AsyncSession, *, request_id: str) -> list[Trip]:
    q = select(TripRow).where(TripRow.request_id == request_id).order_by(TripRow.id)  # type: ignore[arg-type]
    return [trip_from_row(r) for r in (await session.execute(q)).scalars().all()]


async def cancel_trips(session: AsyncSession, *, request_id: str) -> list[Trip]:
    """Mark the request's active trips cancelled; the trips this call cancelled (a second call,
    or a concurrent one that lost the race, cancels nothing)."""
    cancelled: list[Trip] = []
    for trip in await trips_of_request(session, request_id=request_id):
        if trip.status != TripStatus.ACTIVE:
            continue
        result = await session.execute(
            update(TripRow)
            .where(TripRow.id == trip.id)  # type: ignore[arg-type]
            .where(TripRow.status == TripStatus.ACTIVE.value)  # type: ignore[arg-type]
            .values(status=TripStatus.CANCELLED.value)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            cancelled.append(replace(trip, status=TripStatus.CANCELLED))
    return cancelled


async def trips_overlapping(
    session: AsyncSession, *, start: datetime, end: datetime, users: Iterable[str] | None = None
) -> list[Trip]:
    """Trips that overlap [start, end), of `users` if given, earliest first."""
    q = select(TripRow).where(and_(TripRow.starts_at < end, TripRow.ends_at >= start))  # type: ignore[arg-type]
    if users is not None:
        q = q.where(TripRow.traveller.in_(list(users)))  # type: ignore[attr-defined]
    q = q.order_by(TripRow.starts_at, TripRow.id)  # type: ignore[arg-type]
    return [trip_from_row(r) for r in (await session.execute(q)).scalars().all()]


async def trips_to_watch(session: AsyncSession, *, since: datetime) -> list[Trip]:
    """Active trips that end after `since`: those whose missing-check-in ladder may still ping."""
    q = (
        select(TripRow)
        .where(TripRow.status == TripStatus.ACTIVE.value)  # type: ignore[arg-type]
        .where(TripRow.ends_at >= since)  # type: ignore[arg-type]
        .order_by(TripRow.starts_at, TripRow.id)  # type: ignore[arg-type]
    )
    return [trip_from_row(r) for r in (await session.execute(q)).scalars().all()]


async def done_kinds(session: AsyncSession, *, trip_ids: Sequence[str]) -> dict[str, set[CheckinKind]]:
    """For each trip, the kinds of check-in it has (made-up ones included)."""
    if not trip_ids:
        return {}
    q = select(CheckinRow.trip_id, CheckinRow.kind).where(CheckinRow.trip_id.in_(list(trip_ids))).distinct()  # type: ignore[call-overload,union-attr]
    out: dict[str, set[CheckinKind]] = {}
    for trip_id, kind in (await session.execute(q)).all():
        out.setdefault(trip_id, set()).add(CheckinKind(kind))
    return out


async def trip_history(session: AsyncSession, *, trip_id: str) -> list[tuple[CheckinKind, datetime]]:
    q = select(CheckinRow.kind, CheckinRow.at).where(CheckinRow.trip_id == trip_id).order_by(CheckinRow.at)  # type: ignore[call-overload]
    return [(CheckinKind(k), at) for k, at in (await session.execute(q)).all()]


# -- check-ins --------------------------------------------------------------------------------------
def _trust_json(t: Trust) -> dict[str, Any]:
    return {
        "schema_version": TRUST_SCHEMA_VERSION,
        "level": t.level.value,
        "reasons": [{"code": r.code, "penalty": r.penalty, "message": r.message} for r in t.reasons],
    }


def _trust_from_json(score: int, data: dict[str, Any]) -> Trust:
    reasons = tuple(
        TrustReason(str(r["code"]), int(r["penalty"]), str(r["message"])) for r in data.get("reasons", [])
    )
    return Trust(score=score, reasons=reasons, level=TrustLevel(data.get("level", TrustLevel.HIGH.value)))


def checkin_from_row(r: CheckinRow) -> Checkin:
    return Checkin(
        user=r.user_id,
        kind=CheckinKind(r.kind),
        at=r.at,
        received_at=r.received_at,
        lat=r.lat,
        lng=r.lng,
        coord_system=r.coord_system,
        point=LatLng(r.wgs_lat, r.wgs_lng),
        accuracy_m=r.accuracy_m,
        source=Source(r.source),
        verdict=Verdict(r.verdict),
        trust=_trust_from_json(r.trust_score, r.trust or {}),
        distance_m=r.distance_m,
        target_site=r.target_site,
        target_name=r.target_name,
        radius_m=r.radius_m,
        trip_id=r.trip_id,
        request_id=r.request_id,
        channel=r.channel,
        label=r.label,
        device_at=r.device_at,
        made_up=r.made_up,
        fix_request_id=r.fix_request_id,
    )


def _checkin_values(c: Checkin, dedupe_key: str | None) -> dict[str, Any]:
    return {
        "user_id": c.user,
        "kind": c.kind.value,
        "at": c.at,
        "received_at": c.received_at,
        "device_at": c.device_at,
        "lat": c.lat,
        "lng": c.lng,
        "coord_system": c.coord_system,
        "wgs_lat": c.point.lat,
        "wgs_lng": c.point.lng,
        "accuracy_m": c.accuracy_m,
        "source": c.source.value,
        "channel": c.channel[:16],
        "label": c.label,
        "verdict": c.verdict.value,
        "distance_m": c.distance_m,
        "target_site": c.target_site,
        "target_name": (c.target_name or "")[:200] or None,
        "radius_m": c.radius_m,
        "trip_id": c.trip_id,
        "request_id": c.request_id,
        "trust_score": c.trust.score,
        "trust": _trust_json(c.trust),
        "made_up": c.made_up,
        "fix_request_id": c.fix_request_id,
        "dedupe_key": fit_key(dedupe_key, 200) if dedupe_key else None,
    }


async def insert_checkin(
    session: AsyncSession, *, checkin: Checkin, dedupe_key: str | None
) -> tuple[int, Checkin, bool]:
    """Record a check-in: (row id, the stored check-in, True) — or, when `dedupe_key` was seen
    before (a retried delivery), the earlier one with False and nothing written."""
    values = _checkin_values(checkin, dedupe_key)
    if dedupe_key is None:
        row = CheckinRow(**values)
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id, checkin, True
    inserted = await _insert_ignoring_conflict(session, CheckinRow, values, "dedupe_key")
    existing = (
        await session.execute(select(CheckinRow).where(CheckinRow.dedupe_key == values["dedupe_key"]))
    ).scalar_one()
    assert existing.id is not None
    return existing.id, checkin_from_row(existing) if not inserted else checkin, inserted


async def checkin_by_key(session: AsyncSession, *, dedupe_key: str) -> Checkin | None:
    """The check-in recorded under `dedupe_key`, if any."""
    row = (
        await session.execute(select(CheckinRow).where(CheckinRow.dedupe_key == dedupe_key[:200]))  # type: ignore[arg-type]
    ).scalar_one_or_none()
    return checkin_from_row(row) if row is not None else None


async def has_made_up(session: AsyncSession, *, fix_request_id: str) -> bool:
    q = select(CheckinRow.id).where(CheckinRow.fix_request_id == fix_request_id).limit(1)  # type: ignore[call-overload]
    return (await session.execute(q)).first() is not None


def _prior(r: CheckinRow) -> PriorFix:
    return PriorFix(
        point=LatLng(r.wgs_lat, r.wgs_lng), raw=LatLng(r.lat, r.lng), at=r.at, accuracy_m=r.accuracy_m
    )


async def previous_fix(session: AsyncSession, *, user: str) -> PriorFix | None:
    """The person's latest device check-in (made-up ones are not fixes)."""
    q = (
        select(CheckinRow)
        .where(CheckinRow.user_id == user)  # type: ignore[arg-type]
        .where(CheckinRow.made_up.is_(False))  # type: ignore[attr-defined]
        .order_by(CheckinRow.at.desc(), CheckinRow.id.desc())  # type: ignore[attr-defined,union-attr]
        .limit(1)
    )
    row = (await session.execute(q)).scalar_one_or_none()
    return _prior(row) if row else None


async def same_spot(session: AsyncSession, *, user: str, lat: float, lng: float) -> list[PriorFix]:
    """The person's earlier device check-ins at exactly these reported coordinates."""
    q = (
        select(CheckinRow)
        .where(CheckinRow.user_id == user)  # type: ignore[arg-type]
        .where(CheckinRow.lat == lat)  # type: ignore[arg-type]
        .where(CheckinRow.lng == lng)  # type: ignore[arg-type]
        .where(CheckinRow.made_up.is_(False))  # type: ignore[attr-defined]
        .order_by(CheckinRow.at.desc())  # type: ignore[attr-defined]
        .limit(SAME_SPOT_LIMIT)
    )
    return [_prior(r) for r in (await session.execute(q)).scalars().all()]


async def list_checkins(
    session: AsyncSession, *, start: datetime, end: datetime, users: Iterable[str] | None = None
) -> list[tuple[int, Checkin]]:
    """Check-ins with `at` in [start, end), of `users` if given, in time order."""
    q = select(CheckinRow).where(and_(CheckinRow.at >= start, CheckinRow.at < end))  # type: ignore[arg-type]
    if users is not None:
        q = q.where(CheckinRow.user_id.in_(list(users)))  # type: ignore[attr-defined]
    q = q.order_by(CheckinRow.at, CheckinRow.id)  # type: ignore[arg-type]
    rows = (await session.execute(q)).scalars().all()
    return [(r.id, checkin_from_row(r)) for r in rows if r.id is not None]


async def checkins_of_trips(session: AsyncSession, *, trip_ids: Sequence[str]) -> list[Checkin]:
    if not trip_ids:
        return []
    q = select(CheckinRow).where(CheckinRow.trip_id.in_(list(trip_ids))).order_by(CheckinRow.at)  # type: ignore[union-attr,arg-type]
    return [checkin_from_row(r) for r in (await session.execute(q)).scalars().all()]


# -- the link secret ------------------------------------------------------------------------------
async def stored_link_secret(session: AsyncSession, *, now: datetime) -> bytes:
    """This database's link secret, made on first use (the first replica to ask wins)."""
    await _insert_ignoring_conflict(
        session,
        LinkSecretRow,
        {"id": LINK_SECRET_ID, "secret": secrets.token_urlsafe(48), "created_at": now},
        "id",
    )
    q = select(LinkSecretRow.secret).where(LinkSecretRow.id == LINK_SECRET_ID)  # type: ignore[call-overload]
    return str((await session.execute(q)).scalar_one()).encode()


# -- 补卡 quota -------------------------------------------------------------------------------------
async def lock_fix_quota(session: AsyncSession, *, initiator: str, month: tuple[int, int]) -> None:
    """Serialise the 补卡 quota check of one person and month until the transaction ends, so two
    submissions racing for the last place cannot both count the same free place. PostgreSQL: a
    transaction-scoped advisory lock on the (person, month) key; SQLite: every transaction
    already holds the write lock from its start (BEGIN IMMEDIATE), so nothing to add."""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"checkin_fix_quota:{initiator}:{month[0]}-{month[1]:02d}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def fixes_in_month(
    session: AsyncSession, *, initiator: str, month: tuple[int, int], tz: tzinfo, exclude: str | None = None
) -> int:
    """The person's 补卡 requests (open or approved) whose missed check-in falls in `month`."""
    q = (
        select(RequestRow.id, RequestRow.form)  # type: ignore[call-overload]
        .where(RequestRow.template_key == FIX_TEMPLATE)
        .where(RequestRow.initiator == initiator)
        .where(RequestRow.status.in_(QUOTA_STATUSES))  # type: ignore[attr-defined]
    )
    count = 0
    for request_id, form in (await session.execute(q)).all():
        if request_id == exclude:
            continue
        raw = (form or {}).get("missed_at")
        try:
            missed = datetime.fromisoformat(str(raw))
        except ValueError:
            continue
        if missed.tzinfo is not None and month_of(missed, tz) == month:
            count += 1
    return count
