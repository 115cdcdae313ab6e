"""The WeCom JS-SDK's `wx.config` for pages opened inside WeCom (the check-in page calls
`wx.getLocation` with it).

`wx.config` is signed with the enterprise's jsapi_ticket (`GET /cgi-bin/get_jsapi_ticket`, valid
for `expires_in` seconds, 7200 by default, and rate-limited by WeCom): the signature is the SHA-1
hex digest of `jsapi_ticket=<ticket>&noncestr=<nonce>&timestamp=<seconds>&url=<page url>`, the
fields in that order, the URL exactly as the browser loaded it, without its `#fragment`.

The ticket is cached in the key-value store with `TokenCache`, like the access token: fetched
once per expiry across replicas (single flight under a short lock), kept in process memory when
the store is down.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from bot.platforms.tokens import TokenCache
from bot.platforms.wecom.client import WeComApiError, WeComClient
from storage.kv import KeyValueStore

TICKET_PATH = "/cgi-bin/get_jsapi_ticket"


def jsapi_signature(*, ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    plain = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url.split('#')[0]}"
    return hashlib.sha1(plain.encode("utf-8")).hexdigest()  # noqa: S324 - WeCom's signature scheme


@dataclass(frozen=True)
class JsConfig:
    """What the page passes to `wx.config` (besides `jsApiList`)."""

    app_id: str
    timestamp: int
    nonce: str
    signature: str


class JsApiTickets:
    def __init__(self, client: WeComClient, kv: KeyValueStore, *, corp_id: str) -> None:
        self._client = client
        self._corp_id = corp_id
        self.tickets = TokenCache(kv, f"wecom-jsapi:{corp_id}:{client.agent_id}", self._fetch)

    async def _fetch(self) -> tuple[str, float]:
        data = await self._client.call("GET", TICKET_PATH)
        ticket = data.get("ticket")
        if not isinstance(ticket, str) or not ticket:
            raise WeComApiError(
                "get_jsapi_ticket answered without a ticket", path=TICKET_PATH, retryable=True
            )
        return ticket, float(data.get("expires_in") or 7200)

    async def config(self, url: str, *, timestamp: int) -> JsConfig:
        """`wx.config` for the page at `url`; raises WeComApiError when no ticket can be had."""
        ticket = await self.tickets.get()
        nonce = secrets.token_hex(8)
        return JsConfig(
            app_id=self._corp_id,
            timestamp=timestamp,
            nonce=nonce,
            signature=jsapi_signature(ticket=ticket, noncestr=nonce, timestamp=timestamp, url=url),
        )
