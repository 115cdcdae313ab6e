"""Signing the in-app JS APIs' config (WeCom `wx.config`, DingTalk `dd.config`): pure, no I/O.

Both platforms use the same scheme: the SHA-1 hex digest of
`jsapi_ticket=<ticket>&noncestr=<nonce>&timestamp=<seconds>&url=<page url>`, the fields in that
order, the URL exactly as the browser loaded it, without its `#fragment`. The tickets come from
each platform's API and are cached like access tokens (`bot.platforms.tokens.TokenCache`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass


def jsapi_signature(*, ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    plain = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url.split('#')[0]}"
    return hashlib.sha1(plain.encode("utf-8")).hexdigest()  # noqa: S324 - the platforms' signature scheme


@dataclass(frozen=True)
class JsConfig:
    """What the page passes to `wx.config` / `dd.config` (besides the API list)."""

    app_id: str  # WeCom: the corp id; DingTalk: the corp id too (agentId goes alongside)
    timestamp: int
    nonce: str
    signature: str


def sign_config(*, app_id: str, ticket: str, url: str, timestamp: int) -> JsConfig:
    nonce = secrets.token_hex(8)
    signature = jsapi_signature(ticket=ticket, noncestr=nonce, timestamp=timestamp, url=url)
    return JsConfig(app_id=app_id, timestamp=timestamp, nonce=nonce, signature=signature)
