"""A small async client for the DingTalk server APIs oabot calls, on the app's shared httpx client.

- `api()` calls the new APIs (api.dingtalk.com, header `x-acs-dingtalk-access-token`), whose
  errors are non-2xx answers with `{"code", "message"}`: HTTP 401 means the token is no longer
  good, so it is dropped from the cache and the call is made once more with a fresh one.
- `oapi()` calls the old APIs (oapi.dingtalk.com, `?access_token=`), whose errors are HTTP 200
  with a non-zero `errcode`: 40001/40014/42001/33001 mean the token is no longer good.
- 5xx answers, 429, "busy" and rate-limit codes and network errors are retried a few times
  with exponential backoff and jitter; what is still failing is raised as a retryable
  `DingTalkApiError`, so the outbox tries again later. Any other 4xx is not retryable.

Tokens come from `bot.platforms.tokens.TokenCache` (shared by every replica through the
key-value store, one fetch at a time). This module knows URLs and error shapes, nothing about
approvals or cards.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import httpx

from bot.platforms.tokens import TokenCache
from bot.settings import DingTalkSettings
from storage.kv import KeyValueStore

logger = logging.getLogger(__name__)

TOKEN_HEADER = "x-acs-dingtalk-access-token"
# oapi errcodes meaning "this access token is invalid or expired": fetch a new one at once.
OAPI_TOKEN_ERRCODES = frozenset({40001, 40014, 42001, 33001})
# oapi errcodes worth retrying: -1 system busy, 90018 rate limited [recalled, not verified].
OAPI_RETRY_ERRCODES = frozenset({-1, 90018})
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


def _error_code(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("code") or body.get("errcode") or "")
    return ""


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


class DingTalkClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        kv: KeyValueStore,
        settings: DingTalkSettings,
        *,
        max_attempts: int = 4,
        backoff_s: float = 0.25,
        max_backoff_s: float = 4.0,
    ) -> None:
        self._http = http
        self._settings = settings
        self._max_attempts = max_attempts
        self._backoff = backoff_s
        self._max_backoff = max_backoff_s
        self.tokens = TokenCache(kv, f"dingtalk:{settings.app_key}", self._fetch_token)

    @property
    def robot_code(self) -> str:
        """An internal app's robot is addressed by the app's AppKey."""
        return self._settings.app_key

    async def _fetch_token(self) -> tuple[str, float]:
        url = f"{self._settings.api_base}/v1.0/oauth2/accessToken"
        body = {"appKey": self._settings.app_key, "appSecret": self._settings.app_secret}
        for attempt in range(1, self._max_attempts + 1):
            try:
                resp = await self._http.post(url, json=body)
            except httpx.HTTPError as exc:
                error = DingTalkApiError(f"token request failed: {type(exc).__name__}", retryable=True)
            else:
                data = _json(resp)
                if resp.status_code == 200 and isinstance(data, dict) and data.get("accessToken"):
                    return str(data["accessToken"]), float(data.get("expireIn") or 7200)
                error = self._http_error("POST /v1.0/oauth2/accessToken", resp, data)
            if not error.retryable or attempt == self._max_attempts:
                raise error
            await self._sleep(attempt, error)
        raise AssertionError("unreachable")

    async def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call api.dingtalk.com; the decoded JSON answer, or raise DingTalkApiError."""
        what = f"{method} {path}"
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            token = await self.tokens.get()
            try:
                resp = await self._http.request(
                    method, f"{self._settings.api_base}{path}", json=body, headers={TOKEN_HEADER: token}
                )
            except httpx.HTTPError as exc:
                error = DingTalkApiError(f"{what}: {type(exc).__name__}: {exc}", retryable=True)
            else:
                data = _json(resp)
                if resp.status_code == 401 and not refreshed:
                    # The token expired or was revoked: drop it and go again at once.
                    logger.info("dingtalk token refused; refreshing", extra={"api": what})
                    await self.tokens.invalidate(token)
                    refreshed = True
                    attempt -= 1
                    continue
                if 200 <= resp.status_code < 300:
                    return data if isinstance(data, dict) else {}
                error = self._http_error(what, resp, data)
            if not error.retryable or attempt >= self._max_attempts:
                raise error
            await self._sleep(attempt, error)

    async def oapi(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call oapi.dingtalk.com; the decoded JSON answer (errcode 0), or raise DingTalkApiError."""
        what = f"{method} {path}"
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            token = await self.tokens.get()
            try:
                resp = await self._http.request(
                    method,
                    f"{self._settings.oapi_base}{path}",
                    params={**(params or {}), "access_token": token},
                    json=body,
                )
            except httpx.HTTPError as exc:
                error = DingTalkApiError(f"{what}: {type(exc).__name__}: {exc}", retryable=True)
            else:
                data = _json(resp)
                if resp.status_code != 200:
                    error = self._http_error(what, resp, data)
                elif not isinstance(data, dict):
                    error = DingTalkApiError(f"{what}: answer is not JSON", status=200, retryable=True)
                else:
                    errcode = int(data.get("errcode") or 0)
                    if errcode == 0:
                        return data
                    if errcode in OAPI_TOKEN_ERRCODES and not refreshed:
                        logger.info(
                            "dingtalk token refused; refreshing", extra={"api": what, "errcode": errcode}
                        )
                        await self.tokens.invalidate(token)
                        refreshed = True
                        attempt -= 1
                        continue
                    error = DingTalkApiError(
                        f"{what}: errcode {errcode} {data.get('errmsg', '')}",
                        status=200,
                        code=str(errcode),
                        retryable=errcode in OAPI_RETRY_ERRCODES or errcode in OAPI_TOKEN_ERRCODES,
                    )
            if not error.retryable or attempt >= self._max_attempts:
                raise error
            await self._sleep(attempt, error)

    @staticmethod
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

    async def _sleep(self, attempt: int, error: DingTalkApiError) -> None:
        delay = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
        delay *= 0.5 + random.random() / 2  # jitter, so replicas do not retry in step
        logger.warning(
            "dingtalk call failed; retrying", extra={"error": str(error), "retry_in_s": round(delay, 2)}
        )
        await asyncio.sleep(delay)
