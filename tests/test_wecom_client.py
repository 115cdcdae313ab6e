"""The WeCom API client against respx: token caching and refresh, retries with backoff on 5xx,
busy and rate-limit answers and network errors, and errors that carry WeCom's errcode."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import respx

from bot.platforms.wecom.client import WECOM_RETRY, WeComApiError, WeComClient
from bot.settings import WeComSettings
from storage.kv_memory import MemoryStore

BASE = "https://qyapi.example.test"
SETTINGS = WeComSettings(
    corp_id="ww1", agent_id=1000002, secret="s3cret", token="t", aes_key="a" * 43, api_base=BASE
)
OK = {"errcode": 0, "errmsg": "ok"}


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(http: httpx.AsyncClient, sleeps: Sleeps) -> WeComClient:
    return WeComClient(http, SETTINGS, MemoryStore(), retry=replace(WECOM_RETRY, sleep=sleeps))


def token_route(mock: respx.MockRouter, *tokens: str) -> respx.Route:
    return mock.get(f"{BASE}/cgi-bin/gettoken", params={"corpid": "ww1", "corpsecret": "s3cret"}).mock(
        side_effect=[httpx.Response(200, json={**OK, "access_token": t, "expires_in": 7200}) for t in tokens]
    )


@respx.mock
async def test_token_is_fetched_once_for_many_calls(client: WeComClient) -> None:
    tokens = token_route(respx.mock, "tok-1")
    send = respx.post(f"{BASE}/cgi-bin/message/send").mock(
        return_value=httpx.Response(200, json={**OK, "msgid": "m"})
    )

    for _ in range(5):
        await client.send_message(
            {"touser": "a", "msgtype": "text", "agentid": 1000002, "text": {"content": "hi"}}
        )

    assert tokens.call_count == 1
    assert send.call_count == 5
    assert all(c.request.url.params["access_token"] == "tok-1" for c in send.calls)


@respx.mock
async def test_concurrent_calls_fetch_the_token_once(client: WeComClient) -> None:
    tokens = token_route(respx.mock, "tok-1", "tok-2")
    respx.post(f"{BASE}/cgi-bin/message/send").mock(return_value=httpx.Response(200, json=OK))

    await asyncio.gather(*(client.send_message({}) for _ in range(10)))

    assert tokens.call_count == 1


@pytest.mark.parametrize("errcode", [42001, 40014, 40001])
@respx.mock
async def test_a_stale_token_is_refreshed_once_and_the_call_repeated(
    client: WeComClient, errcode: int
) -> None:
    tokens = token_route(respx.mock, "tok-1", "tok-2")
    send = respx.post(f"{BASE}/cgi-bin/message/send").mock(
        side_effect=[
            httpx.Response(200, json={"errcode": errcode, "errmsg": "stale"}),
            httpx.Response(200, json={**OK, "msgid": "m2"}),
        ]
    )

    answer = await client.send_message({})

    assert answer["msgid"] == "m2"
    assert tokens.call_count == 2
    assert [c.request.url.params["access_token"] for c in send.calls] == ["tok-1", "tok-2"]


@respx.mock
async def test_a_token_refused_twice_is_an_error_not_a_loop(client: WeComClient) -> None:
    tokens = token_route(respx.mock, "tok-1", "tok-2", "tok-3")
    respx.post(f"{BASE}/cgi-bin/message/send").mock(
        return_value=httpx.Response(200, json={"errcode": 42001, "errmsg": "expired"})
    )

    with pytest.raises(WeComApiError) as err:
        await client.send_message({})

    assert err.value.errcode == 42001
    assert tokens.call_count == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(502, text="bad gateway"),
        httpx.Response(200, json={"errcode": -1, "errmsg": "system busy"}),
        httpx.Response(200, json={"errcode": 45009, "errmsg": "api freq out of limit"}),
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
    ],
    ids=["http_502", "busy", "rate_limited", "connect_error", "read_timeout"],
)
@respx.mock
async def test_transient_failures_are_retried_with_backoff(
    client: WeComClient, sleeps: Sleeps, failure: httpx.Response | Exception
) -> None:
    token_route(respx.mock, "tok-1")
    send = respx.post(f"{BASE}/cgi-bin/message/send").mock(
        side_effect=[failure, failure, httpx.Response(200, json={**OK, "msgid": "m"})]
    )

    assert (await client.send_message({}))["msgid"] == "m"

    assert send.call_count == 3
    assert len(sleeps.delays) == 2
    assert all(0 <= d <= 2.0 for d in sleeps.delays)


@respx.mock
async def test_retries_give_up_with_a_retryable_error(client: WeComClient, sleeps: Sleeps) -> None:
    token_route(respx.mock, "tok-1")
    send = respx.post(f"{BASE}/cgi-bin/message/send").mock(return_value=httpx.Response(503))

    with pytest.raises(WeComApiError) as err:
        await client.send_message({})

    assert err.value.retryable and err.value.status == 503 and err.value.errcode is None
    assert send.call_count == 4 and len(sleeps.delays) == 3


@respx.mock
async def test_other_errcodes_fail_at_once_and_carry_the_errcode(client: WeComClient, sleeps: Sleeps) -> None:
    token_route(respx.mock, "tok-1")
    send = respx.post(f"{BASE}/cgi-bin/message/update_template_card").mock(
        return_value=httpx.Response(200, json={"errcode": 40058, "errmsg": "invalid response_code"})
    )

    with pytest.raises(WeComApiError) as err:
        await client.update_template_card({"response_code": "used"})

    assert err.value.errcode == 40058 and not err.value.retryable
    assert err.value.path == "/cgi-bin/message/update_template_card"
    assert send.call_count == 1 and sleeps.delays == []


@respx.mock
async def test_a_wrong_secret_fails_without_calling_the_api(client: WeComClient) -> None:
    respx.get(f"{BASE}/cgi-bin/gettoken").mock(
        return_value=httpx.Response(200, json={"errcode": 40001, "errmsg": "invalid credential"})
    )
    send = respx.post(f"{BASE}/cgi-bin/message/send")

    with pytest.raises(WeComApiError) as err:
        await client.send_message({})

    assert err.value.errcode == 40001
    assert send.call_count == 0


@respx.mock
async def test_user_lookup_sends_the_userid(client: WeComClient) -> None:
    token_route(respx.mock, "tok-1")
    route = respx.get(f"{BASE}/cgi-bin/user/get", params={"userid": "wangfang"}).mock(
        return_value=httpx.Response(200, json={**OK, "userid": "wangfang", "name": "王芳"})
    )

    assert (await client.get_user("wangfang"))["name"] == "王芳"
    assert route.call_count == 1


@respx.mock
async def test_message_bodies_are_posted_as_json(client: WeComClient) -> None:
    token_route(respx.mock, "tok-1")
    send = respx.post(f"{BASE}/cgi-bin/message/send").mock(return_value=httpx.Response(200, json=OK))
    body = {"touser": "lina", "msgtype": "text", "agentid": 1000002, "text": {"content": "已通过"}}

    await client.send_message(body)

    assert json.loads(send.calls[0].request.content) == body
