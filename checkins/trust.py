"""How far a check-in can be believed: a score from 0 to 100 and the reasons that lowered it.

Signals (each one a `TrustReason` with a stable code, a penalty and a sentence for the manager):

- `coarse_fix`: the reported accuracy is very coarse (cell towers, IP geolocation);
- `no_accuracy`: no accuracy was reported at all (some location messages carry none);
- `impossible_travel`: reaching this place from the previous check-in would need a speed no
  traveller has (the two fixes' accuracies are given in their favour first);
- `repeated_coordinates`: exactly the same coordinates as a check-in on another day, which real
  fixes almost never produce and location-faking apps do;
- `clock_skew`: the device's clock differs from the server's by more than a few minutes;
- `api_source`: reported by an integration through the API rather than by the person's device
  (chat-platform locations and the browser check-in page carry no penalty; the source is always
  recorded);
- `made_up`: a 补卡 made up through an approved request (no penalty: the approval vouches).

Nothing is refused or dropped for a low score: the check-in is recorded, the manager sees the
score and the reasons. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from checkins.geo import LatLng, format_distance, haversine_m


class Source(StrEnum):
    PLATFORM = "platform"  # a location message or LOCATION event from WeCom / DingTalk / the console
    BROWSER = "browser"  # the signed check-in page, through the browser's Geolocation API
    API = "api"  # POST /api/v1/checkins
    FIX = "fix"  # 补卡: made up through an approved checkin_fix request


class TrustLevel(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class TrustPolicy:
    coarse_accuracy_m: float = 500.0
    max_speed_kmh: float = 800.0  # faster than any door-to-door journey, scheduled flights included
    min_travel_m: float = 1000.0  # below this, "speed" between two fixes is GPS jitter
    max_clock_skew: timedelta = timedelta(minutes=5)
    penalty_coarse: int = 30
    penalty_no_accuracy: int = 10
    penalty_travel: int = 40
    penalty_repeated: int = 30
    penalty_skew: int = 20
    penalty_api: int = 15
    high_from: int = 80
    medium_from: int = 50


DEFAULT_POLICY = TrustPolicy()


@dataclass(frozen=True)
class TrustReason:
    code: str
    penalty: int
    message: str


@dataclass(frozen=True)
class Trust:
    score: int
    reasons: tuple[TrustReason, ...] = ()
    level: TrustLevel = TrustLevel.HIGH

    @property
    def flags(self) -> list[str]:
        return [r.code for r in self.reasons]


@dataclass(frozen=True)
class Observation:
    """What is known about the fix being scored."""

    point: LatLng  # WGS-84
    raw: LatLng  # as reported, in its own system (exact repeats are compared on this)
    accuracy_m: float | None
    source: Source
    at: datetime  # the check-in time: the device's when it sent one, else the server's
    received_at: datetime
    device_at: datetime | None = None


@dataclass(frozen=True)
class PriorFix:
    """An earlier check-in of the same person."""

    point: LatLng  # WGS-84
    raw: LatLng
    at: datetime
    accuracy_m: float | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)


def level_of(score: int, policy: TrustPolicy = DEFAULT_POLICY) -> TrustLevel:
    if score >= policy.high_from:
        return TrustLevel.HIGH
    if score >= policy.medium_from:
        return TrustLevel.MEDIUM
    return TrustLevel.LOW


def _score(reasons: list[TrustReason], policy: TrustPolicy) -> Trust:
    score = max(0, 100 - sum(r.penalty for r in reasons))
    return Trust(score=score, reasons=tuple(reasons), level=level_of(score, policy))


def made_up(request_id: str) -> Trust:
    return Trust(
        score=100, reasons=(TrustReason("made_up", 0, f"补卡，审批单 {request_id}"),), level=TrustLevel.HIGH
    )


def assess(
    obs: Observation,
    *,
    previous: PriorFix | None,
    same_spot: Sequence[PriorFix] = (),
    tz: tzinfo,
    policy: TrustPolicy = DEFAULT_POLICY,
) -> Trust:
    """Score one fix. `previous`: the person's latest earlier check-in (made-up ones excluded);
    `same_spot`: their earlier check-ins at exactly the same reported coordinates."""
    reasons: list[TrustReason] = []
    if obs.accuracy_m is None:
        reasons.append(TrustReason("no_accuracy", policy.penalty_no_accuracy, "未报告定位精度"))
    elif obs.accuracy_m >= policy.coarse_accuracy_m:
        reasons.append(
            TrustReason(
                "coarse_fix", policy.penalty_coarse, f"定位精度很差（±{format_distance(obs.accuracy_m)}）"
            )
        )
    travel = _travel_reason(obs, previous, policy)
    if travel is not None:
        reasons.append(travel)
    today = obs.at.astimezone(tz).date()
    other_days = sorted({p.at.astimezone(tz).date() for p in same_spot if p.raw == obs.raw} - {today})
    if other_days:
        when = "、".join(d.isoformat() for d in other_days[-3:])
        reasons.append(
            TrustReason(
                "repeated_coordinates", policy.penalty_repeated, f"坐标与 {when} 的打卡完全相同，疑似模拟定位"
            )
        )
    if obs.device_at is not None:
        skew = abs((obs.device_at - obs.received_at).total_seconds())
        if skew > policy.max_clock_skew.total_seconds():
            reasons.append(
                TrustReason("clock_skew", policy.penalty_skew, f"设备时间与服务器相差 {_duration(skew)}")
            )
    if obs.source == Source.API:
        reasons.append(TrustReason("api_source", policy.penalty_api, "由接口上报，不是本人设备的定位"))
    return _score(reasons, policy)


def _travel_reason(obs: Observation, previous: PriorFix | None, policy: TrustPolicy) -> TrustReason | None:
    if previous is None:
        return None
    distance = haversine_m(previous.point, obs.point)
    # Give both fixes the benefit of their stated accuracy before calling the trip impossible.
    slack = (previous.accuracy_m or 0.0) + (obs.accuracy_m or 0.0)
    effective = distance - slack
    if effective < policy.min_travel_m:
        return None
    seconds = (obs.at - previous.at).total_seconds()
    if seconds <= 0:
        return TrustReason(
            "impossible_travel",
            policy.penalty_travel,
            f"与上次打卡同时或更早，却相距 {format_distance(distance)}",
        )
    speed_kmh = effective / seconds * 3.6
    if speed_kmh <= policy.max_speed_kmh:
        return None
    return TrustReason(
        "impossible_travel",
        policy.penalty_travel,
        f"距上次打卡 {format_distance(distance)}、仅隔 {_duration(seconds)}，相当于时速 {round(speed_kmh)} 公里，无法到达",
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{round(seconds)} 秒"
    if seconds < 2 * 3600:
        return f"{round(seconds / 60)} 分钟"
    return f"{seconds / 3600:.1f} 小时"
