"""The rules of field check-ins 外勤签到: trips, check-ins, and judging one against the other.

- A **trip** comes from an approved `outing` (外出) or `vehicle_dispatch` (派车) request: who
  travels, where to (a site from the org file, an address with coordinates, or for vehicles
  often just a place name), and from when to when. One trip per traveller (outing companions
  get their own).
- A **check-in** is one fix (where, how precise, from which source, device and server time)
  recorded as an arrival or departure of a trip, or as a free check-in when there is no trip
  and the person's role allows field work without one. It is judged against the destination:
  within the site radius (allowing for the fix's accuracy, capped) → on site, otherwise off site
  with the distance, and the manager is told. A destination without coordinates is recorded as
  such and never flagged. Every check-in carries a trust score (`checkins.trust`).
- The **missing-check-in ladder**: no arrival by the trip start + grace → reminder to the
  traveller; still none after another grace → ping to the manager. The departure has the same
  ladder from the trip end.
- **补卡** (`checkin_fix` requests): at most `quota` per person per month of the missed check-in;
  once approved the check-in is recorded as made up, with the approval linked.

Pure: no I/O, no clock; `now` and the organisation's timezone come in as arguments. It holds
no words people read: `notifications.checkin_wording` says the replies, reminders and reports
from the check-ins and problems it returns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from checkins.errors import (
    FixInvalid,
    FixProblem,
    FixQuotaExceeded,
    FreeCheckinNotAllowed,
    NotYourTrip,
    TripNotApproved,
)
from checkins.geo import COORD_SYSTEMS, GCJ02, LatLng, haversine_m, to_wgs84, within
from checkins.trust import DEFAULT_POLICY, Observation, PriorFix, Source, Trust, TrustPolicy, assess, made_up
from org.model import Site

TRIP_TEMPLATES = ("outing", "vehicle_dispatch")
FIX_TEMPLATE = "checkin_fix"
FREE_FIELD_ROLE = "field_staff"  # the role that may check in without a trip (besides settings)
ADDRESS_RADIUS_M = 500.0  # an address typed into a form gets this radius
DEFAULT_GRACE = timedelta(minutes=30)
DEFAULT_FIX_QUOTA = 3
REPEAT_WINDOW = timedelta(minutes=10)  # a second share within this is the same check-in again
STALE_RUNG = timedelta(hours=24)  # a rung more than this late (service down) is not sent any more
# 补卡 requests that count against the quota: still open, or approved.
QUOTA_STATUSES = ("running", "returned", "approved")


class CheckinKind(StrEnum):
    ARRIVAL = "arrival"
    DEPARTURE = "departure"
    FREE = "free"  # no trip: a free field check-in


FIX_KINDS = {"到达": CheckinKind.ARRIVAL, "离开": CheckinKind.DEPARTURE}


class Verdict(StrEnum):
    ON_SITE = "on_site"
    OFF_SITE = "off_site"
    NO_DESTINATION = "no_destination"  # the destination has no coordinates: recorded, not judged


class TripStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class Rung(StrEnum):
    REMIND = "remind"  # to the traveller
    ESCALATE = "escalate"  # to the traveller's manager


@dataclass(frozen=True)
class Destination:
    name: str
    site_id: str | None = None
    point: LatLng | None = None  # WGS-84
    radius_m: float | None = None

    @property
    def has_coordinates(self) -> bool:
        return self.point is not None and self.radius_m is not None


@dataclass(frozen=True)
class Trip:
    id: str
    request_id: str
    template_key: str
    traveller: str
    destination: Destination
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    status: TripStatus = TripStatus.ACTIVE
    title: str = ""

    def days(self, tz: tzinfo) -> tuple[date, date]:
        return self.starts_at.astimezone(tz).date(), self.ends_at.astimezone(tz).date()

    def covers_day(self, day: date, tz: tzinfo) -> bool:
        first, last = self.days(tz)
        return first <= day <= last


@dataclass(frozen=True)
class Fix:
    """One reported position, checked (`make_fix`)."""

    lat: float
    lng: float
    coord_system: str
    accuracy_m: float | None
    source: Source
    received_at: datetime  # the server's clock
    device_at: datetime | None = None  # the device's clock, when it sent one
    channel: str = ""  # wecom | dingtalk | console | api | page
    label: str | None = None  # a place name the platform attached

    @property
    def raw(self) -> LatLng:
        return LatLng(self.lat, self.lng)

    @property
    def point(self) -> LatLng:
        return to_wgs84(self.raw, self.coord_system)

    @property
    def at(self) -> datetime:
        """The check-in time: the device's when it reported one (the rule), else the server's."""
        return self.device_at or self.received_at


@dataclass(frozen=True)
class Checkin:
    user: str
    kind: CheckinKind
    at: datetime
    received_at: datetime
    lat: float  # as reported
    lng: float
    coord_system: str
    point: LatLng  # WGS-84
    accuracy_m: float | None
    source: Source
    verdict: Verdict
    trust: Trust
    distance_m: float | None = None
    target_site: str | None = None  # the trip's site, or the nearest site of a free check-in
    target_name: str | None = None
    radius_m: float | None = None
    trip_id: str | None = None
    request_id: str | None = None
    channel: str = ""
    label: str | None = None
    device_at: datetime | None = None
    made_up: bool = False
    fix_request_id: str | None = None

    @property
    def tell_manager(self) -> bool:
        """Off site on a trip: the manager is told at once (made-up ones were approved already)."""
        return self.verdict == Verdict.OFF_SITE and self.trip_id is not None and not self.made_up


@dataclass(frozen=True)
class MissingRung:
    trip_id: str
    kind: CheckinKind
    rung: Rung
    due_at: datetime

    @property
    def key(self) -> str:
        return f"{self.trip_id}:{self.kind.value}:{self.rung.value}"


# -- checking what comes in -----------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def make_fix(
    lat: Any,
    lng: Any,
    *,
    accuracy_m: Any = None,
    coord_system: Any = GCJ02,
    source: Source,
    received_at: datetime,
    device_at: datetime | None = None,
    channel: str = "",
    label: str | None = None,
) -> Fix:
    """A checked fix, or FixInvalid naming every problem (out of range, NaN, negative accuracy)."""
    problems: list[FixProblem] = []
    la, ln = _number(lat), _number(lng)
    if la is None or not math.isfinite(la) or abs(la) > 90:
        problems.append(FixProblem.LATITUDE)
    if ln is None or not math.isfinite(ln) or abs(ln) > 180:
        problems.append(FixProblem.LONGITUDE)
    acc: float | None = None
    if accuracy_m is not None and accuracy_m != "":
        acc = _number(accuracy_m)
        if acc is None or not math.isfinite(acc) or acc < 0:
            problems.append(FixProblem.ACCURACY)
            acc = None
    if coord_system not in COORD_SYSTEMS:
        problems.append(FixProblem.COORD_SYSTEM)
    if device_at is not None and device_at.tzinfo is None:
        problems.append(FixProblem.DEVICE_TIME)
    if problems:
        raise FixInvalid(shown={"problems": tuple(problems)}, lat=lat, lng=lng, accuracy_m=accuracy_m)
    assert la is not None and ln is not None
    return Fix(
        lat=la,
        lng=ln,
        coord_system=str(coord_system),
        accuracy_m=acc,
        source=source,
        received_at=received_at,
        device_at=device_at,
        channel=channel,
        label=(label or "").strip()[:200] or None,
    )


# -- trips ----------------------------------------------------------------------------------------
def _site_destination(site: Site) -> Destination:
    return Destination(
        name=site.name,
        site_id=site.id,
        point=to_wgs84(LatLng(site.lat, site.lng), site.coord_system),
        radius_m=site.radius_m,
    )


def destination_of(location: Any, sites: Mapping[str, Site]) -> Destination:
    """A normalised `location` form value → a destination.

    Coordinates typed with an address are taken as GCJ-02: that is what the map pickers people
    copy them from (AMap, Tencent Maps, WeCom) report. A plain text destination has none, unless
    it is exactly the name of an active site (a 派车 to 浦东项目现场): then it is that site.
    """
    if isinstance(location, Mapping):
        if location.get("site"):
            site_id = str(location["site"])
            site = sites.get(site_id)
            return _site_destination(site) if site is not None else Destination(name=site_id, site_id=site_id)
        if location.get("lat") is not None and location.get("lng") is not None:
            point = to_wgs84(LatLng(float(location["lat"]), float(location["lng"])), GCJ02)
            return Destination(
                name=str(location.get("address") or ""), point=point, radius_m=ADDRESS_RADIUS_M
            )
        return Destination(name=str(location.get("address") or ""))
    text = str(location or "").strip()
    named = next((site for site in sites.values() if site.active and site.name == text), None)
    return _site_destination(named) if named is not None and text else Destination(name=text)


def trips_for_request(
    *,
    request_id: str,
    template_key: str,
    title: str,
    form: Mapping[str, Any],
    initiator: str,
    sites: Mapping[str, Site],
    now: datetime,
) -> list[Trip]:
    """The trips an approved outing / vehicle dispatch request makes (none for other templates)."""
    if template_key == "outing":
        travellers = [initiator] + [c for c in form.get("companions") or [] if c != initiator]
        destination = destination_of(form.get("destination"), sites)
        start, end = form.get("start"), form.get("end")
    elif template_key == "vehicle_dispatch":
        travellers = [initiator]
        destination = destination_of(form.get("destination"), sites)
        start, end = form.get("depart_at"), form.get("return_at")
    else:
        return []
    if not isinstance(start, str) or not isinstance(end, str):
        return []
    starts_at, ends_at = datetime.fromisoformat(start), datetime.fromisoformat(end)
    return [
        Trip(
            id=f"{request_id}-{n}",
            request_id=request_id,
            template_key=template_key,
            traveller=person,
            destination=destination,
            starts_at=starts_at,
            ends_at=ends_at,
            created_at=now,
            title=title,
        )
        for n, person in enumerate(dict.fromkeys(travellers))
    ]


def pick_trip(trips: Iterable[Trip], now: datetime, tz: tzinfo) -> Trip | None:
    """The person's trip for a check-in now: an active trip covering today, the one under way
    first, else the one nearest in time."""
    today = now.astimezone(tz).date()
    candidates = [t for t in trips if t.status == TripStatus.ACTIVE and t.covers_day(today, tz)]

    def distance(t: Trip) -> tuple[float, datetime]:
        if t.starts_at <= now <= t.ends_at:
            return 0.0, t.starts_at
        gap = (t.starts_at - now) if now < t.starts_at else (now - t.ends_at)
        return gap.total_seconds(), t.starts_at

    return min(candidates, key=distance) if candidates else None


def infer_kind(done: Sequence[tuple[CheckinKind, datetime]], now: datetime) -> CheckinKind:
    """What a plain location share means on a trip: the arrival until there is one; a share
    within minutes of the last check-in repeats it; after that it is the departure."""
    if not any(kind == CheckinKind.ARRIVAL for kind, _ in done):
        return CheckinKind.ARRIVAL
    last_kind, last_at = max(done, key=lambda d: d[1])
    if now - last_at < REPEAT_WINDOW:
        return last_kind
    return CheckinKind.DEPARTURE


def free_checkin_allowed(roles: Iterable[str], free_roles: Iterable[str]) -> bool:
    allowed = set(free_roles)
    return "*" in allowed or bool(allowed & set(roles))


# -- judging --------------------------------------------------------------------------------------
def _judged(
    fix: Fix,
    *,
    user: str,
    kind: CheckinKind,
    trust: Trust,
    target: Destination | None,
    trip: Trip | None,
) -> Checkin:
    point = fix.point
    distance: float | None = None
    verdict = Verdict.NO_DESTINATION
    if target is not None and target.point is not None and target.radius_m is not None:
        distance = haversine_m(point, target.point)
        verdict = Verdict.ON_SITE if within(distance, target.radius_m, fix.accuracy_m) else Verdict.OFF_SITE
    return Checkin(
        user=user,
        kind=kind,
        at=fix.at,
        received_at=fix.received_at,
        lat=fix.lat,
        lng=fix.lng,
        coord_system=fix.coord_system,
        point=point,
        accuracy_m=fix.accuracy_m,
        source=fix.source,
        verdict=verdict,
        trust=trust,
        distance_m=distance,
        target_site=target.site_id if target else None,
        target_name=target.name if target else None,
        radius_m=target.radius_m if target else None,
        trip_id=trip.id if trip else None,
        request_id=trip.request_id if trip else None,
        channel=fix.channel,
        label=fix.label,
        device_at=fix.device_at,
    )


def _trust(
    fix: Fix, previous: PriorFix | None, same_spot: Sequence[PriorFix], tz: tzinfo, policy: TrustPolicy
) -> Trust:
    obs = Observation(
        point=fix.point,
        raw=fix.raw,
        accuracy_m=fix.accuracy_m,
        source=fix.source,
        at=fix.at,
        received_at=fix.received_at,
        device_at=fix.device_at,
    )
    return assess(obs, previous=previous, same_spot=same_spot, tz=tz, policy=policy)


def judge_trip_checkin(
    trip: Trip,
    kind: CheckinKind,
    fix: Fix,
    *,
    user: str,
    previous: PriorFix | None,
    same_spot: Sequence[PriorFix] = (),
    tz: tzinfo,
    policy: TrustPolicy = DEFAULT_POLICY,
) -> Checkin:
    """An arrival or departure of `trip`, judged against its destination."""
    if user != trip.traveller:
        raise NotYourTrip(trip_id=trip.id, user=user)
    if trip.status != TripStatus.ACTIVE:
        raise TripNotApproved("trip_not_approved.cancelled", trip_id=trip.id, status=trip.status.value)
    if kind not in (CheckinKind.ARRIVAL, CheckinKind.DEPARTURE):
        raise FixInvalid("fix_invalid.trip_kind", kind=kind.value)
    trust = _trust(fix, previous, same_spot, tz, policy)
    return _judged(fix, user=user, kind=kind, trust=trust, target=trip.destination, trip=trip)


def nearest_site(point: LatLng, sites: Iterable[Site]) -> tuple[Destination, float] | None:
    best: tuple[Destination, float] | None = None
    for site in sites:
        if not site.active:
            continue
        d = _site_destination(site)
        assert d.point is not None
        distance = haversine_m(point, d.point)
        if best is None or distance < best[1]:
            best = (d, distance)
    return best


def judge_free_checkin(
    fix: Fix,
    *,
    user: str,
    roles: Iterable[str],
    free_roles: Iterable[str],
    sites: Iterable[Site],
    previous: PriorFix | None,
    same_spot: Sequence[PriorFix] = (),
    tz: tzinfo,
    policy: TrustPolicy = DEFAULT_POLICY,
) -> Checkin:
    """A check-in without a trip: recorded with the nearest site and the distance to it."""
    if not free_checkin_allowed(roles, free_roles):
        raise FreeCheckinNotAllowed(user=user)
    near = nearest_site(fix.point, sites)
    trust = _trust(fix, previous, same_spot, tz, policy)
    return _judged(
        fix, user=user, kind=CheckinKind.FREE, trust=trust, target=near[0] if near else None, trip=None
    )


def trip_for_missed(trips: Iterable[Trip], missed_at: datetime, tz: tzinfo) -> Trip | None:
    """The trip a 补卡 belongs to: the person's active trip on the day of the missed check-in."""
    day = missed_at.astimezone(tz).date()
    candidates = [t for t in trips if t.status == TripStatus.ACTIVE and t.covers_day(day, tz)]

    def gap(t: Trip) -> float:
        if t.starts_at <= missed_at <= t.ends_at:
            return 0.0
        return min(
            abs((t.starts_at - missed_at).total_seconds()), abs((t.ends_at - missed_at).total_seconds())
        )

    return min(candidates, key=gap) if candidates else None


def made_up_checkin(
    *,
    request_id: str,
    initiator: str,
    form: Mapping[str, Any],
    trip: Trip | None,
    sites: Mapping[str, Site],
    now: datetime,
) -> Checkin:
    """The check-in an approved 补卡 request makes: at the stated time and place, marked made up."""
    kind = FIX_KINDS.get(str(form.get("kind")), CheckinKind.ARRIVAL)
    missed_at = datetime.fromisoformat(str(form["missed_at"]))
    place = destination_of(form.get("location"), sites)
    site = sites.get(place.site_id) if place.site_id else None
    raw = LatLng(site.lat, site.lng) if site else None
    system = site.coord_system if site else GCJ02
    location = form.get("location")
    if raw is None and isinstance(location, Mapping) and location.get("lat") is not None:
        raw = LatLng(float(location["lat"]), float(location["lng"]))
    point = place.point or (to_wgs84(raw, system) if raw else LatLng(0.0, 0.0))
    fix = Fix(
        lat=raw.lat if raw else point.lat,
        lng=raw.lng if raw else point.lng,
        coord_system=system if raw else "wgs84",
        accuracy_m=None,
        source=Source.FIX,
        received_at=now,
        device_at=missed_at,
        channel="approval",
        label=place.name or None,
    )
    target: Destination | None
    if trip is not None:
        target = trip.destination
    else:
        near = nearest_site(point, sites.values())
        target = near[0] if near else None
        kind = CheckinKind.FREE if target is None else kind
    checkin = _judged(fix, user=initiator, kind=kind, trust=made_up(request_id), target=target, trip=trip)
    return replace(checkin, made_up=True, fix_request_id=request_id)


# -- the missing-check-in ladder ----------------------------------------------------------------
def planned_rungs(trip: Trip, *, grace: timedelta = DEFAULT_GRACE) -> list[MissingRung]:
    """Every rung of a trip's ladder: for the arrival (at its start) and the departure (at its
    end), a reminder to the traveller one grace later and the manager two graces later."""
    return [
        MissingRung(trip.id, kind, rung, anchor + grace * n)
        for kind, anchor in ((CheckinKind.ARRIVAL, trip.starts_at), (CheckinKind.DEPARTURE, trip.ends_at))
        for n, rung in enumerate((Rung.REMIND, Rung.ESCALATE), start=1)
    ]


def due_rungs(
    trip: Trip,
    done: Iterable[CheckinKind],
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
) -> list[MissingRung]:
    """The rungs due now for a trip's missing check-ins (whether already sent is the caller's)."""
    if trip.status != TripStatus.ACTIVE:
        return []
    have = set(done)
    return [
        r
        for r in planned_rungs(trip, grace=grace)
        if r.kind not in have and r.due_at <= now < r.due_at + STALE_RUNG
    ]


# -- 补卡 quota -------------------------------------------------------------------------------------
def month_of(moment: datetime, tz: tzinfo) -> tuple[int, int]:
    local = moment.astimezone(tz)
    return local.year, local.month


def month_bounds(year: int, month: int, tz: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(date(year, month, 1), time(0), tzinfo=tz)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return start, datetime.combine(nxt, time(0), tzinfo=tz)


def check_fix_quota(*, used: int, quota: int, month: tuple[int, int]) -> None:
    """Refuse a 补卡 when the person already has `quota` of them (open or approved) that month."""
    if used >= quota:
        year, mon = month
        raise FixQuotaExceeded(
            shown={"year": year, "mon": mon},
            used=used,
            quota=quota,
            month=f"{year}-{mon:02d}",
        )


# -- the day's summary for a manager ----------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    user: str
    trip_id: str | None
    kind: CheckinKind
    problem: str  # missing | off_site
    place: str  # missing: the trip's destination (or title); off_site: the site it was judged against
    at: datetime | None = None  # missing: when it was due; off_site: when it was made
    distance_m: float | None = None  # off_site: how far from the site


def day_problems(
    trips: Iterable[Trip],
    checkins: Iterable[Checkin],
    *,
    day: date,
    now: datetime,
    tz: tzinfo,
    grace: timedelta = DEFAULT_GRACE,
) -> list[Problem]:
    """Missing check-ins of trips on `day` (once past their grace) and off-site ones that day."""
    out: list[Problem] = []
    by_trip: dict[str, set[CheckinKind]] = {}
    all_checkins = list(checkins)
    for c in all_checkins:
        if c.trip_id:
            by_trip.setdefault(c.trip_id, set()).add(c.kind)
    for t in trips:
        if t.status != TripStatus.ACTIVE:
            continue
        done = by_trip.get(t.id, set())
        for kind, anchor in ((CheckinKind.ARRIVAL, t.starts_at), (CheckinKind.DEPARTURE, t.ends_at)):
            if anchor.astimezone(tz).date() != day or kind in done or anchor + grace > now:
                continue
            out.append(Problem(t.traveller, t.id, kind, "missing", t.destination.name or t.title, anchor))
    for c in all_checkins:
        if c.trip_id and c.verdict == Verdict.OFF_SITE and c.at.astimezone(tz).date() == day:
            out.append(
                Problem(c.user, c.trip_id, c.kind, "off_site", c.target_name or "", c.at, c.distance_m or 0)
            )
    out.sort(key=lambda p: (p.user, p.at or now))
    return out
