"""The DingTalk API client: cached tokens, refresh when the platform refuses one, retries with
backoff on 5xx / busy / rate limits, and nothing retried that cannot succeed (respx)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import respx

from bot.platforms.dingtalk.client import DINGTALK_RETRY, DingTalkApiError, DingTalkClient
from bot.settings import DingTalkSettings
from storage.kv_memory import MemoryStore

API = "https://api.dingtalk.test"
OAPI = "https://oapi.dingtalk.test"
SETTINGS = DingTalkSettings(app_key="dingkey", app_secret="secret", api_base=API, oapi_base=OAPI)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def client(sleeps: Sleeps) -> AsyncIterator[DingTalkClient]:
    kv = MemoryStore()
    async with httpx.AsyncClient() as http:
        yield DingTalkClient(http, kv, SETTINGS, retry=replace(DINGTALK_RETRY, sleep=sleeps))
    await kv.close()


def tokens(mock: respx.MockRouter, *names: str) -> respx.Route:
    return mock.post(f"{API}/v1.0/oauth2/accessToken").mock(
        side_effect=[httpx.Response(200, json={"accessToken": n, "expireIn": 7200}) for n in names]
    )


@respx.mock
async def test_the_token_is_fetched_once_and_sent_in_the_header(client: DingTalkClient) -> None:
    fetch = tokens(respx.mock, "tok-1")
    send = respx.post(f"{API}/v1.0/robot/oToMessages/batchSend").mock(
        return_value=httpx.Response(200, json={"processQueryKey": "q"})
    )

    for _ in range(3):
        assert await client.api("POST", "/v1.0/robot/oToMessages/batchSend", {"x": 1}) == {
            "processQueryKey": "q"
        }

    assert fetch.call_count == 1
    assert fetch.calls[0].request.content == b'{"appKey":"dingkey","appSecret":"secret"}'
    assert {c.request.headers["x-acs-dingtalk-access-token"] for c in send.calls} == {"tok-1"}


@respx.mock
async def test_a_401_drops_the_token_and_the_call_is_made_again_with_a_fresh_one(
    client: DingTalkClient,
) -> None:
    fetch = tokens(respx.mock, "old", "new")
    put = respx.put(f"{API}/v1.0/card/instances").mock(
        side_effect=[
            httpx.Response(200, json={"success": True}),
            httpx.Response(401, json={"code": "InvalidAuthentication", "message": "expired"}),
            httpx.Response(200, json={"success": True}),
        ]
    )
    await client.api("PUT", "/v1.0/card/instances", {})
    await client.api("PUT", "/v1.0/card/instances", {})

    assert [c.request.headers["x-acs-dingtalk-access-token"] for c in put.calls] == ["old", "old", "new"]
    assert fetch.call_count == 2


@respx.mock
async def test_5xx_busy_and_rate_limits_are_retried_until_it_works(
    client: DingTalkClient, sleeps: Sleeps
) -> None:
    tokens(respx.mock, "tok")
    create = respx.post(f"{API}/v1.0/card/instances/createAndDeliver").mock(
        side_effect=[
            httpx.Response(503, text="busy"),
            httpx.Response(429, json={"code": "Throttling", "message": "slow down"}),
            httpx.Response(403, json={"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "qps"}),
            httpx.Response(200, json={"success": True, "result": {}}),
        ]
    )
    assert (await client.api("POST", "/v1.0/card/instances/createAndDeliver", {}))["success"] is True
    assert create.call_count == 4
    # doubling from 0.25 s, each delay somewhere in the upper half of its step
    assert [0.5 * step <= d <= step for d, step in zip(sleeps.delays, (0.25, 0.5, 1.0), strict=True)] == [
        True
    ] * 3


@respx.mock
async def test_still_failing_after_the_retries_is_a_retryable_error(client: DingTalkClient) -> None:
    tokens(respx.mock, "tok")
    route = respx.post(f"{API}/v1.0/robot/oToMessages/batchSend").mock(
        return_value=httpx.Response(500, json={"code": "InternalError"})
    )
    with pytest.raises(DingTalkApiError) as failed:
        await client.api("POST", "/v1.0/robot/oToMessages/batchSend", {})
    assert failed.value.retryable and failed.value.status == 500
    assert route.call_count == 4


@respx.mock
async def test_network_errors_are_retried(client: DingTalkClient) -> None:
    tokens(respx.mock, "tok")
    route = respx.put(f"{API}/v1.0/card/instances").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json={})]
    )
    assert await client.api("PUT", "/v1.0/card/instances", {}) == {}
    assert route.call_count == 2


@respx.mock
async def test_a_bad_request_is_not_retried(client: DingTalkClient) -> None:
    tokens(respx.mock, "tok")
    route = respx.post(f"{API}/v1.0/card/instances/createAndDeliver").mock(
        return_value=httpx.Response(400, json={"code": "param.invalid", "message": "cardParamMap"})
    )
    with pytest.raises(DingTalkApiError) as failed:
        await client.api("POST", "/v1.0/card/instances/createAndDeliver", {})
    assert not failed.value.retryable and failed.value.code == "param.invalid"
    assert route.call_count == 1


@respx.mock
async def test_a_wrong_app_secret_fails_the_token_fetch_without_retrying(client: DingTalkClient) -> None:
    route = respx.post(f"{API}/v1.0/oauth2/accessToken").mock(
        return_value=httpx.Response(400, json={"code": "invalidClientIdOrSecret", "message": "bad"})
    )
    with pytest.raises(DingTalkApiError) as failed:
        await client.api("PUT", "/v1.0/card/instances", {})
    assert not failed.value.retryable and route.call_count == 1


@respx.mock
@pytest.mark.parametrize("errcode", [40014, 42001, 33001, 40001])
async def test_oapi_token_errcodes_refresh_the_token_at_once(client: DingTalkClient, errcode: int) -> None:
    tokens(respx.mock, "old", "new")
    route = respx.get(f"{OAPI}/topapi/v2/user/get").mock(
        side_effect=[
            httpx.Response(200, json={"errcode": errcode, "errmsg": "token"}),
            httpx.Response(200, json={"errcode": 0, "result": {"name": "孙丽"}}),
        ]
    )
    answer = await client.oapi("GET", "/topapi/v2/user/get", params={"userid": "010008"})
    assert answer["result"] == {"name": "孙丽"}
    assert [c.request.url.params["access_token"] for c in route.calls] == ["old", "new"]
    assert route.calls[0].request.url.params["userid"] == "010008"


@respx.mock
async def test_oapi_busy_is_retried_and_other_errcodes_are_final(client: DingTalkClient) -> None:
    tokens(respx.mock, "tok")
    busy = respx.post(f"{OAPI}/topapi/busy").mock(
        side_effect=[
            httpx.Response(200, json={"errcode": -1, "errmsg": "系统繁忙"}),
            httpx.Response(200, json={"errcode": 0}),
        ]
    )
    assert (await client.oapi("POST", "/topapi/busy", body={}))["errcode"] == 0
    assert busy.call_count == 2
    respx.post(f"{OAPI}/topapi/bad").mock(
        return_value=httpx.Response(200, json={"errcode": 60011, "errmsg": "no permission"})
    )
    with pytest.raises(DingTalkApiError) as failed:
        await client.oapi("POST", "/topapi/bad", body={})
    assert not failed.value.retryable and failed.value.code == "60011"


@respx.mock
async def test_a_token_endpoint_that_stays_down_is_tried_four_times_and_the_call_not_made(
    client: DingTalkClient,
) -> None:
    fetch = respx.post(f"{API}/v1.0/oauth2/accessToken").mock(return_value=httpx.Response(503))
    put = respx.put(f"{API}/v1.0/card/instances")

    with pytest.raises(DingTalkApiError) as failed:
        await client.api("PUT", "/v1.0/card/instances", {})

    assert failed.value.retryable and failed.value.status == 503
    assert fetch.call_count == 4 and put.call_count == 0
