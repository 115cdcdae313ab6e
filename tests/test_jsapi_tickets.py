"""The JS-SDK config the check-in page gets: signed as the platforms publish (the WeChat JS-SDK's
own example pair), with a jsapi_ticket that two replicas sharing one key-value store (in-process
or Redis) fetch once between them from the fake WeCom, until it expires."""

from __future__ import annotations

import asyncio
import hashlib

import httpx

from bot.platforms.jsapi import jsapi_signature
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.jsapi import JsApiTickets
from bot.settings import WeComSettings
from storage.kv import KeyValueStore
from tests.fake_wecom import FakeWeCom


def test_signature_matches_the_published_example() -> None:
    # The example in the WeChat JS-SDK documentation (appendix 1), the scheme WeCom uses too.
    ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    signed = jsapi_signature(
        ticket=ticket,
        noncestr="Wm3WZYTPz0wzccnW",
        timestamp=1414587457,
        url="http://mp.weixin.qq.com?params=value",
    )
    assert signed == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    # the fragment is not part of the signed address
    with_fragment = jsapi_signature(
        ticket=ticket,
        noncestr="Wm3WZYTPz0wzccnW",
        timestamp=1414587457,
        url="http://mp.weixin.qq.com?params=value#x",
    )
    assert with_fragment == signed


async def test_two_replicas_fetch_the_ticket_once_and_sign_with_it(kv: KeyValueStore) -> None:
    fake = await FakeWeCom(corp_id="ww-jsapi", secret="s", agent_id=1000002).start()
    settings = WeComSettings(
        corp_id="ww-jsapi", agent_id=1000002, secret="s", token="t", aes_key="a" * 43, api_base=fake.base_url
    )
    try:
        async with httpx.AsyncClient() as http:
            replicas = [
                JsApiTickets(WeComClient(http, settings, kv), kv, corp_id="ww-jsapi") for _ in range(2)
            ]
            url = "https://oa.example.cn/checkin/abc.def?as=u_wu"
            configs = await asyncio.gather(*(r.config(url, timestamp=1_800_000_000) for r in replicas * 4))
    finally:
        await fake.stop()
    (ticket,) = fake.jsapi_tickets
    for cfg in configs:
        plain = f"jsapi_ticket={ticket}&noncestr={cfg.nonce}&timestamp=1800000000&url={url}"
        assert cfg.app_id == "ww-jsapi" and cfg.signature == hashlib.sha1(plain.encode()).hexdigest()
    assert len({cfg.nonce for cfg in configs}) == len(configs)  # a fresh nonce per page
