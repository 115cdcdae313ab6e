"""Geodesy of check-ins: distances, WGS-84 ⇄ GCJ-02 with known point pairs, on-site allowance."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkins.geo import (
    GCJ02,
    MAX_ACCURACY_ALLOWANCE_M,
    WGS84,
    LatLng,
    accuracy_allowance_m,
    format_distance,
    gcj02_to_wgs84,
    haversine_m,
    in_china,
    map_url,
    to_gcj02,
    to_wgs84,
    wgs84_to_gcj02,
    within,
)

# (WGS-84 lat, lng) -> (GCJ-02 lat, lng): the reference pairs published with the public transform.
KNOWN_PAIRS = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing
]


@pytest.mark.parametrize(("wgs", "gcj"), KNOWN_PAIRS)
def test_wgs84_to_gcj02_matches_known_pairs(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    got = wgs84_to_gcj02(LatLng(*wgs))
    assert got.lat == pytest.approx(gcj[0], abs=1e-9)
    assert got.lng == pytest.approx(gcj[1], abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), KNOWN_PAIRS)
def test_gcj02_to_wgs84_recovers_known_pairs_to_the_millimetre(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    got = gcj02_to_wgs84(LatLng(*gcj))
    assert haversine_m(got, LatLng(*wgs)) < 0.001


def test_the_mars_offset_in_shanghai_is_hundreds_of_metres() -> None:
    # Mixing the two systems up would put a person on the wrong street: that is why sites declare theirs.
    wgs = LatLng(31.2215, 121.5440)
    shift = haversine_m(wgs, wgs84_to_gcj02(wgs))
    assert 300 < shift < 800


@pytest.mark.parametrize(
    "point",
    [
        LatLng(51.5074, -0.1278),
        LatLng(40.7128, -74.0060),
        LatLng(-33.8688, 151.2093),
        LatLng(35.6762, 139.6503),
    ],
)
def test_outside_china_gcj02_is_wgs84(point: LatLng) -> None:
    assert not in_china(point)
    assert wgs84_to_gcj02(point) == point
    assert gcj02_to_wgs84(point) == point


@given(st.floats(min_value=18.0, max_value=53.0), st.floats(min_value=74.0, max_value=134.0))
def test_round_trip_through_gcj02_is_exact_enough(lat: float, lng: float) -> None:
    p = LatLng(lat, lng)
    back = gcj02_to_wgs84(wgs84_to_gcj02(p))
    assert haversine_m(p, back) < 0.001


def test_to_wgs84_and_to_gcj02_follow_the_declared_system() -> None:
    gcj = LatLng(*KNOWN_PAIRS[0][1])
    wgs = LatLng(*KNOWN_PAIRS[0][0])
    assert haversine_m(to_wgs84(gcj, GCJ02), wgs) < 0.001
    assert to_wgs84(wgs, WGS84) == wgs
    assert to_gcj02(gcj, GCJ02) == gcj
    assert haversine_m(to_gcj02(wgs, WGS84), gcj) < 0.001
    with pytest.raises(ValueError, match="unknown coordinate system"):
        to_wgs84(wgs, "bd09")


def test_haversine_distances() -> None:
    one_degree = 2 * math.pi * 6_371_008.8 / 360
    assert haversine_m(LatLng(0, 0), LatLng(1, 0)) == pytest.approx(one_degree)
    assert haversine_m(LatLng(0, 0), LatLng(0, 1)) == pytest.approx(one_degree)
    assert haversine_m(LatLng(10, 20), LatLng(10, 20)) == 0
    # Tiananmen to People's Square, Shanghai: about 1068 km
    assert 1_060_000 < haversine_m(LatLng(39.9087, 116.3975), LatLng(31.2304, 121.4737)) < 1_075_000
    # antipodes do not blow up
    assert haversine_m(LatLng(0, 0), LatLng(0, 180)) == pytest.approx(math.pi * 6_371_008.8)


def test_accuracy_counts_in_favour_up_to_a_cap() -> None:
    assert within(290, 300, None)
    assert not within(350, 300, None)
    assert within(350, 300, 80)  # the fix's circle reaches the site
    assert not within(600, 300, 5000)  # a ±5 km fix may not claim every site within 5 km
    assert within(300 + MAX_ACCURACY_ALLOWANCE_M, 300, 5000)
    assert accuracy_allowance_m(None) == 0
    assert accuracy_allowance_m(-3) == 0
    assert accuracy_allowance_m(float("nan")) == 0
    assert accuracy_allowance_m(50) == 50


def test_map_url_points_at_the_gcj02_position() -> None:
    wgs = LatLng(*KNOWN_PAIRS[0][0])
    url = map_url(wgs, "浦东项目现场")
    assert "121.531542,31.175304" in url
    assert "name=%E6%B5%A6" in url


def test_distances_read_naturally() -> None:
    assert format_distance(42.4) == "42 米"
    assert format_distance(1234) == "1.2 公里"
    assert format_distance(1_067_311) == "1067 公里"
