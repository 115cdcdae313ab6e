"""The check-in core without I/O: trips from requests, judging fixes, trust flags, the ladder,
the 补卡 quota and signed links."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from checkins import core
from checkins.core import CheckinKind, Rung, Trip, TripStatus, Verdict, make_fix
from checkins.errors import (
    FixInvalid,
    FixQuotaExceeded,
    FreeCheckinNotAllowed,
    LinkExpired,
    LinkInvalid,
    NotYourTrip,
    TripNotApproved,
)
from checkins.geo import LatLng, gcj02_to_wgs84, haversine_m, wgs84_to_gcj02
from checkins.links import LinkClaims, read_link, sign_link
from checkins.trust import Observation, PriorFix, Source, TrustLevel, TrustPolicy, assess
from notifications import checkin_wording as words
from notifications.messages import message_for
from tests.helpers import TZ, demo_org

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
ORG = demo_org()
PUDONG = ORG.sites["site_pudong"]  # GCJ-02 31.2215, 121.5440, radius 500 m
PUDONG_WGS = gcj02_to_wgs84(LatLng(PUDONG.lat, PUDONG.lng))
SECRET = b"0123456789abcdef0123456789abcdef"


def outing_form(**kw: object) -> dict[str, object]:
    form: dict[str, object] = {
        "destination": {"site": "site_pudong"},
        "start": "2026-11-23T10:30:00+08:00",
        "end": "2026-11-23T16:00:00+08:00",
        "reason": "现场巡检",
    }
    form.update(kw)
    return form


def trip(**kw: object) -> Trip:
    trips = core.trips_for_request(
        request_id="20261123-aaaa0001",
        template_key="outing",
        title="外出 · 现场巡检",
        form=outing_form(**kw),
        initiator="u_wu",
        sites=ORG.sites,
        now=T0,
    )
    return trips[0]


def fix(
    lat: float,
    lng: float,
    *,
    system: str = "wgs84",
    accuracy: float | None = 20.0,
    at: datetime = T0,
    source: Source = Source.PLATFORM,
    device_at: datetime | None = None,
) -> core.Fix:
    return make_fix(
        lat, lng, accuracy_m=accuracy, coord_system=system, source=source, received_at=at, device_at=device_at
    )


def judge(
    t: Trip,
    f: core.Fix,
    kind: CheckinKind = CheckinKind.ARRIVAL,
    user: str = "u_wu",
    previous: PriorFix | None = None,
) -> core.Checkin:
    return core.judge_trip_checkin(t, kind, f, user=user, previous=previous, tz=TZ)


# -- fixes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lat", "lng", "accuracy", "system", "expected"),
    [
        (91, 121.5, 10, "wgs84", "纬度"),
        (-90.5, 121.5, 10, "wgs84", "纬度"),
        (31.2, 181, 10, "wgs84", "经度"),
        (float("nan"), 121.5, 10, "wgs84", "纬度"),
        (31.2, float("inf"), 10, "wgs84", "经度"),
        ("abc", 121.5, 10, "wgs84", "纬度"),
        (True, 121.5, 10, "wgs84", "纬度"),
        (None, 121.5, 10, "wgs84", "纬度"),
        (31.2, 121.5, -1, "wgs84", "精度"),
        (31.2, 121.5, float("nan"), "wgs84", "精度"),
        (31.2, 121.5, 10, "bd09", "坐标系"),
    ],
)
def test_bad_positions_are_refused_with_a_clear_message(
    lat: object, lng: object, accuracy: object, system: object, expected: str
) -> None:
    with pytest.raises(FixInvalid) as info:
        make_fix(lat, lng, accuracy_m=accuracy, coord_system=system, source=Source.API, received_at=T0)
    assert message_for(info.value).startswith("位置无效：") and expected in message_for(info.value)


def test_every_problem_of_a_fix_is_listed_at_once() -> None:
    with pytest.raises(FixInvalid) as info:
        make_fix(95, 200, accuracy_m=-1, source=Source.API, received_at=T0)
    assert all(word in message_for(info.value) for word in ("纬度", "经度", "精度"))


def test_numbers_as_text_and_the_device_time_are_accepted() -> None:
    f = make_fix(
        "31.2",
        "121.5",
        accuracy_m="15",
        source=Source.API,
        received_at=T0,
        device_at=T0 - timedelta(seconds=5),
    )
    assert (f.lat, f.lng, f.accuracy_m) == (31.2, 121.5, 15.0)
    assert f.at == T0 - timedelta(seconds=5)  # the device's time is the check-in time
    assert make_fix(31.2, 121.5, source=Source.PLATFORM, received_at=T0).at == T0


# -- trips ----------------------------------------------------------------------------------------
def test_outing_to_a_site_is_judged_in_wgs84() -> None:
    t = trip()
    assert t.traveller == "u_wu" and t.destination.site_id == "site_pudong"
    assert t.destination.radius_m == 500
    assert t.destination.point is not None and haversine_m(t.destination.point, PUDONG_WGS) < 0.001
    assert t.starts_at == datetime(2026, 11, 23, 2, 30, tzinfo=UTC)


def test_outing_to_an_address_takes_its_coordinates_as_gcj02() -> None:
    t = trip(destination={"address": "客户大楼", "lat": 31.2304, "lng": 121.4737})
    assert t.destination.name == "客户大楼" and t.destination.radius_m == core.ADDRESS_RADIUS_M
    assert t.destination.point is not None
    assert haversine_m(t.destination.point, gcj02_to_wgs84(LatLng(31.2304, 121.4737))) < 0.001


def test_companions_get_a_trip_each_and_vehicles_have_no_coordinates() -> None:
    trips = core.trips_for_request(
        request_id="r1",
        template_key="outing",
        title="t",
        form=outing_form(companions=["u_zheng", "u_wu"]),
        initiator="u_wu",
        sites=ORG.sites,
        now=T0,
    )
    assert [(t.id, t.traveller) for t in trips] == [("r1-0", "u_wu"), ("r1-1", "u_zheng")]
    vehicle = core.trips_for_request(
        request_id="r2",
        template_key="vehicle_dispatch",
        title="浦东机场 派车",
        form={
            "destination": "浦东机场",
            "depart_at": "2026-11-23T13:00:00+08:00",
            "return_at": "2026-11-23T18:00:00+08:00",
        },
        initiator="u_wu",
        sites=ORG.sites,
        now=T0,
    )[0]
    assert vehicle.destination.name == "浦东机场" and not vehicle.destination.has_coordinates
    assert (
        core.trips_for_request(
            request_id="r3",
            template_key="leave",
            title="",
            form={},
            initiator="u_wu",
            sites=ORG.sites,
            now=T0,
        )
        == []
    )


def test_the_trip_for_a_check_in_is_todays() -> None:
    today = trip()
    tomorrow = Trip(
        **{
            **today.__dict__,
            "id": "x-1",
            "starts_at": today.starts_at + timedelta(days=1),
            "ends_at": today.ends_at + timedelta(days=1),
        }
    )
    assert core.pick_trip([tomorrow, today], T0, TZ) == today
    assert core.pick_trip([tomorrow], T0, TZ) is None
    cancelled = Trip(**{**today.__dict__, "status": TripStatus.CANCELLED})
    assert core.pick_trip([cancelled], T0, TZ) is None


def test_a_share_is_the_arrival_then_repeats_within_minutes_then_the_departure() -> None:
    assert core.infer_kind([], T0) == CheckinKind.ARRIVAL
    done = [(CheckinKind.ARRIVAL, T0)]
    assert core.infer_kind(done, T0 + timedelta(minutes=3)) == CheckinKind.ARRIVAL
    assert core.infer_kind(done, T0 + timedelta(minutes=30)) == CheckinKind.DEPARTURE


# -- judging --------------------------------------------------------------------------------------
def test_arrival_at_the_site_is_on_site() -> None:
    c = judge(trip(), fix(PUDONG_WGS.lat, PUDONG_WGS.lng))
    assert c.verdict == Verdict.ON_SITE and c.distance_m is not None and c.distance_m < 1
    assert not c.tell_manager
    assert "在范围内" in words.checkin_reply(c, TZ)


def test_a_gcj02_fix_and_a_wgs84_fix_of_the_same_place_agree() -> None:
    t = trip()
    near = LatLng(PUDONG_WGS.lat + 0.002, PUDONG_WGS.lng)  # ~220 m north
    as_wgs = judge(t, fix(near.lat, near.lng, system="wgs84"))
    g = wgs84_to_gcj02(near)
    as_gcj = judge(t, fix(g.lat, g.lng, system="gcj02"))
    assert as_wgs.verdict == as_gcj.verdict == Verdict.ON_SITE
    assert as_wgs.distance_m == pytest.approx(as_gcj.distance_m, abs=0.01)
    # the site's GCJ-02 numbers read as WGS-84 would be hundreds of metres out
    assert judge(t, fix(PUDONG.lat, PUDONG.lng, system="wgs84")).distance_m > 300  # type: ignore[operator]


def test_far_away_is_off_site_with_the_distance_and_the_manager_is_told() -> None:
    c = judge(trip(), fix(31.2304, 121.4737, system="gcj02"))  # the head office, ~6.8 km away
    assert c.verdict == Verdict.OFF_SITE and 6500 < (c.distance_m or 0) < 7000
    assert c.tell_manager
    assert "距「浦东项目现场」6.8 公里" in words.checkin_reply(c, TZ, manager_told=True)
    assert "吴昊" in words.off_site_notice(c, "吴昊", TZ)


def test_reported_accuracy_helps_up_to_the_cap() -> None:
    t = trip()
    edge = LatLng(PUDONG_WGS.lat + 0.0059, PUDONG_WGS.lng)  # ~656 m from the centre, radius 500
    assert judge(t, fix(edge.lat, edge.lng, accuracy=10)).verdict == Verdict.OFF_SITE
    assert judge(t, fix(edge.lat, edge.lng, accuracy=180)).verdict == Verdict.ON_SITE
    further = LatLng(PUDONG_WGS.lat + 0.0068, PUDONG_WGS.lng)  # ~756 m
    assert judge(t, fix(further.lat, further.lng, accuracy=5000)).verdict == Verdict.OFF_SITE


def test_no_destination_coordinates_is_recorded_and_never_flagged() -> None:
    t = trip(destination={"address": "某客户处"})
    c = judge(t, fix(31.0, 121.0))
    assert c.verdict == Verdict.NO_DESTINATION and c.distance_m is None and not c.tell_manager
    assert "没有坐标" in words.checkin_reply(c, TZ)


def test_only_the_traveller_checks_in_on_an_active_trip() -> None:
    with pytest.raises(NotYourTrip):
        judge(trip(), fix(31.2, 121.5), user="u_zheng")
    with pytest.raises(TripNotApproved):
        judge(Trip(**{**trip().__dict__, "status": TripStatus.CANCELLED}), fix(31.2, 121.5))


def test_free_check_in_records_the_nearest_site_when_the_role_allows() -> None:
    f = fix(PUDONG_WGS.lat + 0.001, PUDONG_WGS.lng)
    c = core.judge_free_checkin(
        f,
        user="u_zheng",
        roles=("field_staff",),
        free_roles=("field_staff",),
        sites=ORG.sites.values(),
        previous=None,
        tz=TZ,
    )
    assert c.kind == CheckinKind.FREE and c.target_site == "site_pudong" and c.verdict == Verdict.ON_SITE
    assert "最近的签到点「浦东项目现场」" in words.checkin_reply(c, TZ)
    assert (
        core.judge_free_checkin(
            f, user="u_zheng", roles=(), free_roles=("*",), sites=(), previous=None, tz=TZ
        ).verdict
        == Verdict.NO_DESTINATION
    )
    with pytest.raises(FreeCheckinNotAllowed) as refused:
        core.judge_free_checkin(
            f,
            user="u_zheng",
            roles=("engineer",),
            free_roles=("field_staff",),
            sites=ORG.sites.values(),
            previous=None,
            tz=TZ,
        )
    assert "外出申请" in message_for(refused.value)


# -- trust ----------------------------------------------------------------------------------------
def observe(
    point: LatLng,
    *,
    accuracy: float | None = 15,
    at: datetime = T0,
    source: Source = Source.PLATFORM,
    device_at: datetime | None = None,
) -> Observation:
    return Observation(
        point=point,
        raw=point,
        accuracy_m=accuracy,
        source=source,
        at=device_at or at,
        received_at=at,
        device_at=device_at,
    )


HQ = LatLng(31.2304, 121.4737)


def test_a_clean_fix_is_fully_trusted() -> None:
    t = assess(observe(HQ), previous=None, tz=TZ)
    assert (t.score, t.level, t.flags) == (100, TrustLevel.HIGH, [])


def test_very_coarse_fixes_are_marked() -> None:
    t = assess(observe(HQ, accuracy=1500), previous=None, tz=TZ)
    assert t.flags == ["coarse_fix"] and t.score == 70 and "1.5 公里" in t.reasons[0].message
    assert assess(observe(HQ, accuracy=None), previous=None, tz=TZ).flags == ["no_accuracy"]


def test_impossible_travel_is_flagged_but_a_flight_is_not() -> None:
    beijing = LatLng(39.9087, 116.3975)
    previous = PriorFix(point=beijing, raw=beijing, at=T0 - timedelta(minutes=20), accuracy_m=10)
    t = assess(observe(HQ), previous=previous, tz=TZ)
    assert t.flags == ["impossible_travel"] and t.level == TrustLevel.MEDIUM
    assert "公里" in t.reasons[0].message and "20 分钟" in t.reasons[0].message
    by_plane = PriorFix(point=beijing, raw=beijing, at=T0 - timedelta(hours=3), accuracy_m=10)
    assert assess(observe(HQ), previous=by_plane, tz=TZ).flags == []
    # GPS jitter between two quick fixes is not travel
    jitter = PriorFix(
        point=LatLng(HQ.lat + 0.003, HQ.lng), raw=HQ, at=T0 - timedelta(seconds=5), accuracy_m=30
    )
    assert assess(observe(HQ), previous=jitter, tz=TZ).flags == []
    # a fix "before" a distant previous one cannot be
    later = PriorFix(point=beijing, raw=beijing, at=T0 + timedelta(minutes=1))
    assert assess(observe(HQ), previous=later, tz=TZ).flags == ["impossible_travel"]


def test_exactly_repeated_coordinates_on_another_day_are_flagged() -> None:
    spot = LatLng(31.22153318, 121.54402291)
    yesterday = PriorFix(point=spot, raw=spot, at=T0 - timedelta(days=1))
    t = assess(observe(spot), previous=None, same_spot=[yesterday], tz=TZ)
    assert t.flags == ["repeated_coordinates"] and "2026-11-22" in t.reasons[0].message
    earlier_today = PriorFix(point=spot, raw=spot, at=T0 - timedelta(hours=1))
    assert assess(observe(spot), previous=None, same_spot=[earlier_today], tz=TZ).flags == []


def test_device_clock_far_from_the_server_is_flagged() -> None:
    t = assess(observe(HQ, device_at=T0 - timedelta(minutes=42)), previous=None, tz=TZ)
    assert t.flags == ["clock_skew"] and "42 分钟" in t.reasons[0].message
    assert assess(observe(HQ, device_at=T0 - timedelta(seconds=40)), previous=None, tz=TZ).flags == []


def test_the_source_is_scored() -> None:
    assert assess(observe(HQ, source=Source.API), previous=None, tz=TZ).flags == ["api_source"]
    assert assess(observe(HQ, source=Source.BROWSER), previous=None, tz=TZ).flags == []


def test_flags_add_up_and_the_score_never_goes_below_zero() -> None:
    harsh = TrustPolicy(penalty_coarse=90, penalty_api=90)
    t = assess(observe(HQ, accuracy=5000, source=Source.API), previous=None, tz=TZ, policy=harsh)
    assert t.score == 0 and t.level == TrustLevel.LOW and set(t.flags) == {"coarse_fix", "api_source"}


# -- the ladder -----------------------------------------------------------------------------------
def test_each_rung_is_due_at_its_time_and_not_once_checked_in() -> None:
    t = trip()  # 10:30 to 16:00
    at = lambda hh, mm: datetime(2026, 11, 23, hh, mm, tzinfo=TZ)  # noqa: E731
    assert core.due_rungs(t, [], at(10, 59)) == []
    assert [(r.kind, r.rung) for r in core.due_rungs(t, [], at(11, 0))] == [
        (CheckinKind.ARRIVAL, Rung.REMIND)
    ]
    assert [(r.kind, r.rung) for r in core.due_rungs(t, [], at(11, 30))] == [
        (CheckinKind.ARRIVAL, Rung.REMIND),
        (CheckinKind.ARRIVAL, Rung.ESCALATE),
    ]
    assert core.due_rungs(t, [CheckinKind.ARRIVAL], at(11, 30)) == []
    assert [(r.kind, r.rung) for r in core.due_rungs(t, [CheckinKind.ARRIVAL], at(16, 30))] == [
        (CheckinKind.DEPARTURE, Rung.REMIND)
    ]
    due = core.due_rungs(t, [CheckinKind.ARRIVAL], at(17, 0))
    assert [r.key for r in due] == [f"{t.id}:departure:remind", f"{t.id}:departure:escalate"]
    assert core.due_rungs(t, [CheckinKind.ARRIVAL, CheckinKind.DEPARTURE], at(17, 0)) == []
    # a day late (the service was down), old rungs are not sent any more
    assert core.due_rungs(t, [CheckinKind.ARRIVAL], at(17, 0) + timedelta(days=2)) == []
    assert core.due_rungs(t, [], at(11, 10), grace=timedelta(minutes=10))[1].rung == Rung.ESCALATE


def test_day_problems_list_missing_and_off_site() -> None:
    t = trip()
    off = judge(t, fix(31.2304, 121.4737, system="gcj02", at=T0 + timedelta(hours=1)))
    problems = core.day_problems(
        [t], [off], day=date(2026, 11, 23), now=datetime(2026, 11, 23, 18, 0, tzinfo=TZ), tz=TZ
    )
    assert [(p.problem, p.kind) for p in problems] == [
        ("off_site", CheckinKind.ARRIVAL),
        ("missing", CheckinKind.DEPARTURE),
    ]
    text = words.summary_text(date(2026, 11, 23), problems, {"u_wu": "吴昊"}, TZ)
    assert "外勤日报" in text and "吴昊：未离开打卡" in text and "不在范围内" in text


# -- 补卡 -----------------------------------------------------------------------------------------
def test_fix_quota_allows_up_to_the_limit_then_refuses_clearly() -> None:
    core.check_fix_quota(used=2, quota=3, month=(2026, 11))
    with pytest.raises(FixQuotaExceeded) as info:
        core.check_fix_quota(used=3, quota=3, month=(2026, 11))
    assert "2026年11月" in message_for(info.value) and "上限" in message_for(info.value)
    with pytest.raises(FixQuotaExceeded):
        core.check_fix_quota(used=0, quota=0, month=(2026, 11))


def test_the_month_of_a_missed_check_in_is_local() -> None:
    assert core.month_of(datetime(2026, 11, 30, 17, 0, tzinfo=UTC), TZ) == (
        2026,
        12,
    )  # 01:00 on Dec 1st in Shanghai
    start, end = core.month_bounds(2026, 12, TZ)
    assert (start.isoformat(), end.isoformat()) == ("2026-12-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00")


def test_an_approved_fix_makes_a_made_up_check_in_on_its_trip() -> None:
    t = trip()
    form = {
        "kind": "离开",
        "missed_at": "2026-11-23T16:05:00+08:00",
        "location": {"site": "site_pudong"},
        "reason": "手机没电",
    }
    missed = datetime.fromisoformat(str(form["missed_at"]))
    assert core.trip_for_missed([t], missed, TZ) == t
    c = core.made_up_checkin(request_id="fix-1", initiator="u_wu", form=form, trip=t, sites=ORG.sites, now=T0)
    assert c.made_up and c.fix_request_id == "fix-1" and c.kind == CheckinKind.DEPARTURE and c.trip_id == t.id
    assert c.verdict == Verdict.ON_SITE and c.source == Source.FIX and c.at == missed
    assert c.trust.flags == ["made_up"] and c.trust.score == 100 and not c.tell_manager


# -- signed links ---------------------------------------------------------------------------------
def claims(**kw: object) -> LinkClaims:
    values: dict[str, object] = {
        "user": "u_wu",
        "trip": "r1-0",
        "kind": "arrival",
        "expires_at": T0 + timedelta(hours=2),
    }
    values.update(kw)
    return LinkClaims(**values)  # type: ignore[arg-type]


def test_a_signed_link_reads_back_until_it_expires() -> None:
    token = sign_link(SECRET, claims())
    got = read_link(SECRET, token, now=T0)
    assert (got.user, got.trip, got.kind) == ("u_wu", "r1-0", "arrival")
    with pytest.raises(LinkExpired) as info:
        read_link(SECRET, token, now=T0 + timedelta(hours=2), tz=TZ)
    assert "12:00 过期" in message_for(info.value)


def test_an_altered_link_is_invalid_not_merely_expired() -> None:
    token = sign_link(SECRET, claims())
    payload, signature = token.split(".")
    other = sign_link(SECRET, claims(user="u_zheng")).split(".")[0]
    for bad in (
        f"{other}.{signature}",
        f"{payload}.{signature[:-2]}AA",
        f"{payload}x.{signature}",
        "",
        "a.b.c",
        "no-dot",
        "é.é",
    ):
        with pytest.raises(LinkInvalid):
            read_link(SECRET, bad, now=T0)
    with pytest.raises(LinkInvalid):
        read_link(b"another-secret-of-the-same-size!", token, now=T0)
    expired_and_altered = (
        sign_link(SECRET, claims(expires_at=T0 - timedelta(hours=1))).split(".")[0] + "." + signature
    )
    with pytest.raises(LinkInvalid):
        read_link(SECRET, expired_and_altered, now=T0)


def test_links_refuse_unknown_purposes_and_short_secrets() -> None:
    with pytest.raises(ValueError):
        sign_link(SECRET, claims(kind="admin"))
    with pytest.raises(ValueError):
        sign_link(b"short", claims())
