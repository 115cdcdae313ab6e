"""Geodesy for check-ins: great-circle distance, WGS-84 ⇄ GCJ-02, and "is this fix at the site".

Two coordinate systems meet here:

- **WGS-84** is what GPS and the browser Geolocation API report.
- **GCJ-02** (国测局坐标, "Mars coordinates") is what Chinese map SDKs report and what most
  site lists are copied from (AMap/高德, Tencent Maps, the WeCom location picker). Inside
  mainland China it is WGS-84 shifted by a published, deterministic but non-linear offset of
  a few hundred metres; outside China it *is* WGS-84.

Everything is compared in WGS-84: a fix and a site are each converted from the system they
declare, then measured with the haversine formula. `wgs84_to_gcj02` is the public forward
transform (Krasovsky ellipsoid parameters and the trigonometric offset series); the inverse
has no closed form and is found by fixed-point iteration to well under a millimetre.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import quote

WGS84 = "wgs84"
GCJ02 = "gcj02"
COORD_SYSTEMS = (WGS84, GCJ02)

EARTH_MEAN_RADIUS_M = 6_371_008.8  # IUGG mean radius; the haversine error is < 0.5 %
# The forward GCJ-02 transform is defined on the Krasovsky 1940 ellipsoid.
_KRASOVSKY_A = 6_378_245.0
_KRASOVSKY_EE = 0.00669342162296594323  # first eccentricity squared

# The rough rectangle the public transform treats as China; outside it GCJ-02 = WGS-84.
_CHINA_LAT = (0.8293, 55.8271)
_CHINA_LNG = (72.004, 137.8347)

# How much of a fix's reported accuracy may count in its favour (see `within`): a fix claiming
# ±3 km must not be "on site" everywhere within 3 km.
MAX_ACCURACY_ALLOWANCE_M = 200.0


@dataclass(frozen=True)
class LatLng:
    lat: float
    lng: float


def haversine_m(a: LatLng, b: LatLng) -> float:
    """Great-circle distance in metres on a sphere of the Earth's mean radius."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi = phi2 - phi1
    dlmb = math.radians(b.lng - a.lng)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_MEAN_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def in_china(p: LatLng) -> bool:
    """Inside the rectangle where GCJ-02 differs from WGS-84 (as the public transform draws it)."""
    return _CHINA_LAT[0] <= p.lat <= _CHINA_LAT[1] and _CHINA_LNG[0] <= p.lng <= _CHINA_LNG[1]


def _offset_lat(x: float, y: float) -> float:
    s = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    s += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    s += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    s += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return s


def _offset_lng(x: float, y: float) -> float:
    s = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    s += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    s += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    s += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return s


def _gcj_shift(p: LatLng) -> tuple[float, float]:
    """(dlat, dlng) in degrees to add to a WGS-84 point inside China."""
    x, y = p.lng - 105.0, p.lat - 35.0
    dlat, dlng = _offset_lat(x, y), _offset_lng(x, y)
    rad = math.radians(p.lat)
    w = 1.0 - _KRASOVSKY_EE * math.sin(rad) ** 2
    sw = math.sqrt(w)
    # offsets are in metres-ish units on the ellipsoid: turn them into degrees at this latitude
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (w * sw) * math.pi)
    dlng = (dlng * 180.0) / (_KRASOVSKY_A / sw * math.cos(rad) * math.pi)
    return dlat, dlng


def wgs84_to_gcj02(p: LatLng) -> LatLng:
    if not in_china(p):
        return p
    dlat, dlng = _gcj_shift(p)
    return LatLng(p.lat + dlat, p.lng + dlng)


def gcj02_to_wgs84(p: LatLng, *, tolerance_deg: float = 1e-10, max_rounds: int = 30) -> LatLng:
    """The WGS-84 point whose GCJ-02 image is `p` (iterated to `tolerance_deg`, ~0.01 mm)."""
    if not in_china(p):
        return p
    guess = p
    for _ in range(max_rounds):
        image = wgs84_to_gcj02(guess)
        err_lat, err_lng = p.lat - image.lat, p.lng - image.lng
        guess = LatLng(guess.lat + err_lat, guess.lng + err_lng)
        if abs(err_lat) < tolerance_deg and abs(err_lng) < tolerance_deg:
            break
    return guess


def to_wgs84(p: LatLng, system: str) -> LatLng:
    if system == WGS84:
        return p
    if system == GCJ02:
        return gcj02_to_wgs84(p)
    raise ValueError(f"unknown coordinate system {system!r}; expected one of {', '.join(COORD_SYSTEMS)}")


def to_gcj02(p: LatLng, system: str) -> LatLng:
    if system == GCJ02:
        return p
    if system == WGS84:
        return wgs84_to_gcj02(p)
    raise ValueError(f"unknown coordinate system {system!r}; expected one of {', '.join(COORD_SYSTEMS)}")


def accuracy_allowance_m(accuracy_m: float | None) -> float:
    """The part of a fix's reported accuracy that counts in its favour: all of it, up to a cap."""
    if accuracy_m is None or not math.isfinite(accuracy_m) or accuracy_m <= 0:
        return 0.0
    return min(accuracy_m, MAX_ACCURACY_ALLOWANCE_M)


def within(distance_m: float, radius_m: float, accuracy_m: float | None) -> bool:
    """On site: the fix's circle of uncertainty (capped) reaches into the site's circle."""
    return distance_m - accuracy_allowance_m(accuracy_m) <= radius_m


def map_url(p_wgs84: LatLng, name: str = "") -> str:
    """A map link a manager can tap (AMap/高德 takes GCJ-02; outside China that is WGS-84)."""
    g = wgs84_to_gcj02(p_wgs84)
    url = f"https://uri.amap.com/marker?position={g.lng:.6f},{g.lat:.6f}&coordinate=gaode"
    if name:
        url += "&name=" + quote(name)
    return url


def format_distance(meters: float) -> str:
    """420 米 / 1.3 公里 / 1200 公里, as people read it in chat."""
    if meters < 1000:
        return f"{round(meters)} 米"
    if meters < 100_000:
        return f"{meters / 1000:.1f} 公里"
    return f"{round(meters / 1000)} 公里"
