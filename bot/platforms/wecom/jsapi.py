"""The WeCom JS-SDK's `wx.config` for pages opened inside WeCom (the check-in page calls
`wx.getLocation` with it).

`wx.config` is signed with the enterprise's jsapi_ticket (`GET /cgi-bin/get_jsapi_ticket`, valid
for `expires_in` seconds, 7200 by default, and rate-limited by WeCom) as `bot.platforms.jsapi`
says.

The ticket is cached in the key-value store with `TokenCache`, like the access token: fetched
once per expiry across replicas (single flight under a short lock), kept in process memory when
the store is down.
"""

from __future__ import annotations

from bot.platforms.jsapi import JsConfig, sign_config
from bot.platforms.tokens import TokenCache
from bot.platforms.wecom.client import WeComApiError, WeComClient
from storage.kv import KeyValueStore

TICKET_PATH = "/cgi-bin/get_jsapi_ticket"


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
        return sign_config(app_id=self._corp_id, ticket=ticket, url=url, timestamp=timestamp)
