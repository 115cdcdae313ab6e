"""Signed check-in links: short-lived, bound to one person, one trip and one purpose.

A link token is `<payload>.<signature>`, both base64url without padding: the payload is the JSON
array `[user, trip, kind, expires_at]` (expiry in Unix seconds) and the signature is
HMAC-SHA256 over the payload with the server's link secret. Changing any part — another
person, another trip, arrival for departure, a later expiry — breaks the signature. Tokens are
checked signature first, then expiry, so an altered link is never reported as merely expired.

`kind` is `arrival` / `departure` (the check-in page for a trip) or `team` (a manager's view of
their team; `trip` then holds `*`). Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from checkins.errors import LinkExpired, LinkInvalid

LINK_KINDS = ("arrival", "departure", "team")
MAX_TOKEN_LEN = 1024
_DOMAIN = b"oabot-checkin-link-v1."  # keeps these signatures apart from any other use of the secret


@dataclass(frozen=True)
class LinkClaims:
    user: str
    trip: str
    kind: str
    expires_at: datetime

    @property
    def expires_ts(self) -> int:
        return int(self.expires_at.timestamp())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, payload: str) -> bytes:
    return hmac.new(secret, _DOMAIN + payload.encode("ascii"), hashlib.sha256).digest()


def sign_link(secret: bytes, claims: LinkClaims) -> str:
    if claims.kind not in LINK_KINDS:
        raise ValueError(f"unknown link kind {claims.kind!r}")
    if len(secret) < 16:
        raise ValueError("the link secret is too short")
    payload = _b64(
        json.dumps([claims.user, claims.trip, claims.kind, claims.expires_ts], separators=(",", ":")).encode()
    )
    return f"{payload}.{_b64(_signature(secret, payload))}"


def read_link(secret: bytes, token: str, *, now: datetime, tz: tzinfo = UTC) -> LinkClaims:
    """The claims of a genuine, unexpired token; LinkInvalid or LinkExpired otherwise."""
    invalid = LinkInvalid()
    if not token or len(token) > MAX_TOKEN_LEN or token.count(".") != 1:
        raise invalid
    payload, signature = token.split(".")
    try:
        given = _unb64(signature)
        expected = _signature(secret, payload)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise invalid from None
    if not hmac.compare_digest(given, expected):
        raise invalid
    try:
        user, trip, kind, expires = json.loads(_unb64(payload))
    except (binascii.Error, ValueError, TypeError):
        raise invalid from None
    if not (
        isinstance(user, str) and isinstance(trip, str) and kind in LINK_KINDS and isinstance(expires, int)
    ):
        raise invalid
    claims = LinkClaims(user=user, trip=trip, kind=kind, expires_at=datetime.fromtimestamp(expires, UTC))
    if now >= claims.expires_at:
        raise LinkExpired(
            shown={"expired_local": claims.expires_at.astimezone(tz)},
            expired_at=claims.expires_at,
        )
    return claims
