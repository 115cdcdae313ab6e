"""DingTalk's `dd.config` for pages opened inside DingTalk (the check-in page calls
`dd.device.geolocation.get` with it).

`dd.config` is signed with the app's jsapi_ticket (oapi `GET /get_jsapi_ticket`, valid for
`expires_in` seconds, 7200 by default) as `bot.platforms.jsapi` says, and names the corpId and
the app's agentId (`OABOT_DINGTALK_AGENT_ID`). The ticket is cached in the key-value store with
`TokenCache`, like the access token: fetched once per expiry across replicas.
"""

from __future__ import annotations

from bot.platforms.dingtalk.client import DingTalkApiError, DingTalkClient
from bot.platforms.jsapi import JsConfig, sign_config
from bot.platforms.tokens import TokenCache
from storage.kv import KeyValueStore

TICKET_PATH = "/get_jsapi_ticket"


class DingTalkJsApiTickets:
    def __init__(self, client: DingTalkClient, kv: KeyValueStore, *, corp_id: str, agent_id: str) -> None:
        self._client = client
        self._corp_id = corp_id
        self.agent_id = agent_id
        self.tickets = TokenCache(kv, f"dingtalk-jsapi:{corp_id}:{agent_id}", self._fetch)

    async def _fetch(self) -> tuple[str, float]:
        data = await self._client.oapi("GET", TICKET_PATH)
        ticket = data.get("ticket")
        if not isinstance(ticket, str) or not ticket:
            raise DingTalkApiError("get_jsapi_ticket answered without a ticket", retryable=True)
        return ticket, float(data.get("expires_in") or 7200)

    async def config(self, url: str, *, timestamp: int) -> JsConfig:
        """`dd.config` for the page at `url`; raises DingTalkApiError when no ticket can be had."""
        ticket = await self.tickets.get()
        return sign_config(app_id=self._corp_id, ticket=ticket, url=url, timestamp=timestamp)
