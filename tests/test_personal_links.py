"""Signed personal links: bound to a person, a path and an expiry; tampering is refused first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from org.signed_links import LinkTarget, PersonalLinkExpired, PersonalLinkInvalid, read, sign
from services.links import PersonalLinks
from storage.db import Database

SECRET = b"s" * 32
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def _token(user: str = "u_sun", path: str = "/m/r/20261130-abc", hours: int = 2) -> str:
    return sign(SECRET, LinkTarget(user=user, path=path, expires_at=NOW + timedelta(hours=hours)))


def test_a_link_opens_its_path_as_its_person():
    target = read(SECRET, _token(), now=NOW)
    assert (target.user, target.path) == ("u_sun", "/m/r/20261130-abc")


@pytest.mark.parametrize("change", ["payload", "signature", "secret", "truncate"])
def test_a_tampered_link_is_refused_as_invalid_even_when_expired(change: str):
    token = _token(hours=-1)
    payload, signature = token.split(".")
    secret = SECRET
    if change == "payload":
        other = _token(user="u_zhang", hours=-1).split(".")[0]
        token = f"{other}.{signature}"
    elif change == "signature":
        token = f"{payload}.{signature[:-2]}AA"
    elif change == "secret":
        secret = b"t" * 32
    else:
        token = token[:-5]
    with pytest.raises(PersonalLinkInvalid):
        read(secret, token, now=NOW)


def test_an_expired_link_says_so():
    with pytest.raises(PersonalLinkExpired):
        read(SECRET, _token(hours=-1), now=NOW)


def test_a_link_never_points_off_site():
    with pytest.raises(ValueError):
        sign(SECRET, LinkTarget(user="u_sun", path="//evil.example/x", expires_at=NOW))
    with pytest.raises(ValueError):
        sign(SECRET, LinkTarget(user="u_sun", path="https://evil.example/x", expires_at=NOW))


async def test_service_links_are_absolute_and_read_back(db: Database):
    links = PersonalLinks(db, secret=None, public_url="https://oa.example.com/", now=lambda: NOW)
    url = await links.url("u_li", "/m/r/r1")
    assert url.startswith("https://oa.example.com/m/l/")
    target = await links.read(url.rsplit("/", 1)[1])
    assert (target.user, target.path) == ("u_li", "/m/r/r1")
