"""A small async client for the DingTalk server APIs oabot calls, on the app's shared httpx client.

- `api()` calls the new APIs (api.dingtalk.com, header `x-acs-dingtalk-access-token`), whose
  errors are non-2xx answers with `{"code", "message"}`: HTTP 401 means the token is no longer
  good, so it is dropped from the cache and the call is made once more with a fresh one.
- `oapi()` calls the old APIs (oapi.dingtalk.com, `?access_token=`), whose errors are HTTP 200
  with a non-zero `errcode`: 40001/40014/42001/33001 mean the token is no longer good.
- 5xx answers, 429, "busy" and rate-limit codes and network errors are retried
  (`bot.platforms.http_retry`: up to 4 tries, backoff from 0.25 s up to 4 s, half of it random); what is still failing is raised as a retryable
  `DingTalkApiError`, so the outbox tries again later. Any other 4xx is not retryable.

Tokens come from `bot.platforms.tokens.TokenCache` (shared by every replica through the
key-value store, one fetch at a time). This module knows URLs and error shapes, nothing about
approvals or cards.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bot.platforms.http_retry import RetryPolicy, call_with_retries
from bot.platforms.tokens import TokenCache
from bot.settings import DingTalkSettings
from storage.kv import KeyValueStore

logger = logging.getLogger(__name__)

TOKEN_HEADER = "x-acs-dingtalk-access-token"
# oapi errcodes meaning "this access token is invalid or expired": fetch a new one at once.
OAPI_TOKEN_ERRCODES = frozenset({40001, 40014, 42001, 33001})
# oapi errcodes worth retrying: -1 system busy, 90018 rate limited [recalled, not verified], 90002
# all apps together over the API's limit (developer community answer).
OAPI_RETRY_ERRCODES = frozenset({-1, 90018, 90002})
# Fragments of new-API error codes that mean "slow down / try again", e.g. Forbidden.AccessDenied.QpsLimitForApi.
_RETRY_CODE_HINTS = ("qpslimit", "throttl", "busy", "ratelimit", "serviceunavailable", "timeout")


class DingTalkApiError(Exception):
    """A DingTalk API call failed. `retryable` says whether trying later may help."""

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, retryable: bool
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retryable = retryable


DINGTALK_RETRY = RetryPolicy(attempts=4, base_delay_s=0.25, max_delay_s=4.0, jitter=0.5)


class _TokenRefused(Exception):
    """DingTalk called the access token no longer good; `error` is what it means if it happens
    again right after a refresh."""

    def __init__(self, error: DingTalkApiError) -> None:
        super().__init__(str(error))
        self.error = error


class _NoToken(Exception):
    """No token to call with: the fetch, already retried on its own, failed with `error`."""

    def __init__(self, error: DingTalkApiError) -> None:
        super().__init__(str(error))
        self.error = error


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, DingTalkApiError) and exc.retryable


def _error_code(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("code") or body.get("errcode") or "")
    return ""


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _http_error(what: str, resp: httpx.Response, data: Any) -> DingTalkApiError:
    code = _error_code(data)
    message = (data.get("message") or data.get("errmsg")) if isinstance(data, dict) else None
    retryable = (
        resp.status_code >= 500
        or resp.status_code in (401, 408, 429)
        or any(hint in code.lower() for hint in _RETRY_CODE_HINTS)
    )
    return DingTalkApiError(
        f"{what}: HTTP {resp.status_code} {code} {message or ''}".rstrip(),
        status=resp.status_code,
        code=code or None,
        retryable=retryable,
    )


def _api_answer(what: str, resp: httpx.Response) -> dict[str, Any]:
    """A new-API answer: 2xx is the JSON body; 401 means the token; anything else an error."""
    data = _json(resp)
    if 200 <= resp.status_code < 300:
        return data if isinstance(data, dict) else {}
    error = _http_error(what, resp, data)
    if resp.status_code == 401:
        raise _TokenRefused(error)
    raise error


def _oapi_answer(what: str, resp: httpx.Response) -> dict[str, Any]:
    """An old-API answer: HTTP 200 with errcode 0 is the JSON body; token errcodes mean the token."""
    data = _json(resp)
    if resp.status_code != 200:
        raise _http_error(what, resp, data)
    if not isinstance(data, dict):
        raise DingTalkApiError(f"{what}: answer is not JSON", status=200, retryable=True)
    errcode = int(data.get("errcode") or 0)
    if errcode == 0:
        return data
    error = DingTalkApiError(
        f"{what}: errcode {errcode} {data.get('errmsg', '')}",
        status=200,
        code=str(errcode),
        retryable=errcode in OAPI_RETRY_ERRCODES or errcode in OAPI_TOKEN_ERRCODES,
    )
    if errcode in OAPI_TOKEN_ERRCODES:
        raise _TokenRefused(error)
    raise error


async def _sent(what: str, request: Awaitable[httpx.Response]) -> httpx.Response:
    """The response, or a network failure as a retryable DingTalkApiError."""
    try:
        return await request
    except httpx.HTTPError as exc:
        raise DingTalkApiError(f"{what}: {type(exc).__name__}: {exc}", retryable=True) from exc


class DingTalkClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        kv: KeyValueStore,
        settings: DingTalkSettings,
        *,
        retry: RetryPolicy = DINGTALK_RETRY,
    ) -> None:
        self._http = http
        self._settings = settings
        self._retry = retry
        self.tokens = TokenCache(kv, f"dingtalk:{settings.app_key}", self._fetch_token)

    @property
    def robot_code(self) -> str:
        """An internal app's robot is addressed by the app's AppKey."""
        return self._settings.app_key

    async def _fetch_token(self) -> tuple[str, float]:
        what = "POST /v1.0/oauth2/accessToken"
        url = f"{self._settings.api_base}/v1.0/oauth2/accessToken"
        body = {"appKey": self._settings.app_key, "appSecret": self._settings.app_secret}

        async def fetch() -> tuple[str, float]:
            resp = await _sent(what, self._http.post(url, json=body))
            data = _json(resp)
            if resp.status_code == 200 and isinstance(data, dict) and data.get("accessToken"):
                return str(data["accessToken"]), float(data.get("expireIn") or 7200)
            raise _http_error(what, resp, data)

        return await call_with_retries(
            fetch, policy=self._retry, retryable=_retryable, what=f"dingtalk {what}"
        )

    async def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call api.dingtalk.com; the decoded JSON answer, or raise DingTalkApiError."""
        url = f"{self._settings.api_base}{path}"
        return await self._call(
            f"{method} {path}",
            lambda token: self._http.request(method, url, json=body, headers={TOKEN_HEADER: token}),
            _api_answer,
        )

    async def oapi(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call oapi.dingtalk.com; the decoded JSON answer (errcode 0), or raise DingTalkApiError."""
        url = f"{self._settings.oapi_base}{path}"
        return await self._call(
            f"{method} {path}",
            lambda token: self._http.request(
                method, url, params={**(params or {}), "access_token": token}, json=body
            ),
            _oapi_answer,
        )

    async def _call(
        self,
        what: str,
        send: Callable[[str], Awaitable[httpx.Response]],
        answer: Callable[[str, httpx.Response], dict[str, Any]],
    ) -> dict[str, Any]:
        """`send` with the cached token, retried; a refused token is dropped and the same try made
        again at once with a fresh one (once per call, not counted as a try)."""
        refreshed = False

        async def one_try() -> dict[str, Any]:
            nonlocal refreshed
            while True:
                try:
                    token = await self.tokens.get()
                except DingTalkApiError as exc:
                    raise _NoToken(exc) from exc
                try:
                    return answer(what, await _sent(what, send(token)))
                except _TokenRefused as refused:
                    if refreshed:
                        raise refused.error from None
                    logger.info(
                        "dingtalk token refused; refreshing", extra={"api": what, "error": str(refused)}
                    )
                    await self.tokens.invalidate(token)
                    refreshed = True

        try:
            return await call_with_retries(
                one_try, policy=self._retry, retryable=_retryable, what=f"dingtalk {what}"
            )
        except _NoToken as exc:
            raise exc.error from None
