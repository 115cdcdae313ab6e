"""Signed personal links: a URL token bound to one person, one path on this site and an expiry.

Every card and message link carries one, so a tap from a card opens the right page as the right
person even before a platform sign-in is set up. A token is `<payload>.<signature>`, both
base64url without padding: the payload is the JSON array `[user, path, expires_at]` (Unix
seconds), the signature HMAC-SHA256 over it with the server's link secret and a domain prefix
of its own (so a check-in link can never pass for one of these, or the other way round). The
signature is checked before the expiry, so an altered link is never reported as merely expired.

Pure: no I/O, no clock (`now` comes in).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from org.errors import Category, DomainError

MAX_TOKEN_LEN = 2048
_DOMAIN = b"oabot-personal-link-v1."


class LinkRefused(DomainError):
    code = "personal_link_invalid"
    category = Category.FORBIDDEN


class PersonalLinkInvalid(LinkRefused):
    """Altered, truncated or not ours."""

    code = "personal_link_invalid"


class PersonalLinkExpired(LinkRefused):
    code = "personal_link_expired"
    category = Category.GONE


@dataclass(frozen=True)
class LinkTarget:
    user: str
    path: str  # a path on this site, starting with "/"
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, payload: str) -> bytes:
    return hmac.new(secret, _DOMAIN + payload.encode("ascii"), hashlib.sha256).digest()


def token_digest(token: str) -> str:
    """What logs may carry instead of a token: a short hash."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:12]


def sign(secret: bytes, target: LinkTarget) -> str:
    if len(secret) < 16:
        raise ValueError("the link secret is too short")
    if not target.path.startswith("/") or target.path.startswith("//"):
        raise ValueError("a personal link points at a path on this site")
    data = [target.user, target.path, int(target.expires_at.timestamp())]
    payload = _b64(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{payload}.{_b64(_signature(secret, payload))}"


def read(secret: bytes, token: str, *, now: datetime) -> LinkTarget:
    """The target of a genuine, unexpired token; PersonalLinkInvalid / PersonalLinkExpired otherwise."""
    invalid = PersonalLinkInvalid()
    if not token or len(token) > MAX_TOKEN_LEN or token.count(".") != 1:
        raise invalid
    payload, signature = token.split(".")
    try:
        given = _unb64(signature)
        expected = _signature(secret, payload)
        ok = hmac.compare_digest(given, expected)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise invalid from None
    if not ok:
        raise invalid
    try:
        user, path, expires = json.loads(_unb64(payload))
    except (binascii.Error, ValueError, TypeError):
        raise invalid from None
    if not (
        isinstance(user, str) and isinstance(path, str) and path.startswith("/") and isinstance(expires, int)
    ):
        raise invalid
    target = LinkTarget(user=user, path=path, expires_at=datetime.fromtimestamp(expires, UTC))
    if now >= target.expires_at:
        raise PersonalLinkExpired()
    return target
