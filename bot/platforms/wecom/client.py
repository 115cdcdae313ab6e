"""The few WeCom server APIs oabot calls: gettoken, message/send, message/update_template_card,
user/get. Tokens come from the shared `TokenCache` (one fetch per expiry across replicas).

Every answer is JSON with `errcode` (0 = ok), usually with HTTP 200 even for errors. Calls are
retried (`bot.platforms.http_retry`, up to 4 tries, full-jitter backoff up to 2 s) on network
errors, HTTP 5xx and 429, `-1` (system busy), `45009` (rate limit) and `45033` (too many at once); when WeCom calls the
token invalid or expired (40001, 40014, 42001) the token is dropped and the call is made once
more with a fresh one. Anything else is an
`WeComApiError` carrying the errcode; deciding what it means for a message is the delivery's job.

URLs are never logged whole: they carry the access token or the app secret.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bot.platforms.http_retry import RetryPolicy, call_with_retries
from bot.platforms.tokens import TokenCache
from bot.settings import WeComSettings
from storage.kv import KeyValueStore

logger = logging.getLogger(__name__)

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential, invalid token, token expired
# Frequency limits (errcode 45009 API calls over the limit, 45011 calls too frequent, 45033 too
# many concurrent calls): the caller waits and tries again later rather than giving up.
FREQUENCY_ERRCODES = frozenset({45009, 45011, 45033})
BUSY_ERRCODES = frozenset({-1}) | FREQUENCY_ERRCODES  # system busy, or a frequency limit


class WeComApiError(Exception):
    """A WeCom API call failed. `errcode` is WeCom's code (None for HTTP/network failures);
    `retryable` says whether trying again later may succeed."""

    def __init__(
        self,
        message: str,
        *,
        path: str,
        errcode: int | None = None,
        status: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.errcode = errcode
        self.status = status
        self.retryable = retryable


WECOM_RETRY = RetryPolicy(attempts=4, base_delay_s=0.25, max_delay_s=2.0)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, WeComApiError) and exc.retryable


class WeComClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: WeComSettings,
        kv: KeyValueStore,
        *,
        retry: RetryPolicy = WECOM_RETRY,
    ) -> None:
        self._http = http
        self._settings = settings
        self._base = settings.api_base.rstrip("/")
        self._retry = retry
        self.tokens = TokenCache(kv, f"wecom:{settings.corp_id}:{settings.agent_id}", self.fetch_token)

    @property
    def agent_id(self) -> int:
        return self._settings.agent_id

    # -- the APIs ----------------------------------------------------------------------------
    async def fetch_token(self) -> tuple[str, float]:
        """GET /cgi-bin/gettoken: (access_token, expires_in seconds). Used by the token cache."""
        params = {"corpid": self._settings.corp_id, "corpsecret": self._settings.secret}
        data = await self._request("GET", "/cgi-bin/gettoken", params=params)
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeComApiError(
                "gettoken answered without an access_token", path="/cgi-bin/gettoken", retryable=True
            )
        return token, float(data.get("expires_in") or 7200)

    async def send_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /cgi-bin/message/send; the answer has msgid and, for interactive cards, response_code."""
        return await self.call("POST", "/cgi-bin/message/send", json=body)

    async def update_template_card(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /cgi-bin/message/update_template_card (response_code: single use)."""
        return await self.call("POST", "/cgi-bin/message/update_template_card", json=body)

    async def get_user(self, userid: str) -> dict[str, Any]:
        """GET /cgi-bin/user/get: a member's directory entry (name, department...)."""
        return await self.call("GET", "/cgi-bin/user/get", params={"userid": userid})

    # -- plumbing ----------------------------------------------------------------------------
    async def call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """One API call with the cached token, refreshed once if WeCom says it is stale."""
        refreshed = False
        while True:
            token = await self.tokens.get()
            try:
                return await self._request(
                    method, path, params={**(params or {}), "access_token": token}, json=json
                )
            except WeComApiError as exc:
                if exc.errcode in TOKEN_ERRCODES and not refreshed:
                    logger.info(
                        "wecom token rejected; fetching a fresh one",
                        extra={"path": path, "errcode": exc.errcode},
                    )
                    await self.tokens.invalidate(token)
                    refreshed = True
                    continue
                raise

    async def _request(
        self, method: str, path: str, *, params: dict[str, str], json: Any = None
    ) -> dict[str, Any]:
        return await call_with_retries(
            lambda: self._once(method, path, params=params, json=json),
            policy=self._retry,
            retryable=_retryable,
            what=f"wecom {method} {path}",
        )

    async def _once(self, method: str, path: str, *, params: dict[str, str], json: Any) -> dict[str, Any]:
        try:
            resp = await self._http.request(method, self._base + path, params=params, json=json)
        except httpx.HTTPError as exc:
            # Connection refused/reset or a timeout: try again (a card's task_id makes a resend safe;
            # WeCom refuses a task_id it has already seen).
            raise WeComApiError(f"{type(exc).__name__}: {exc}", path=path, retryable=True) from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            raise WeComApiError(
                f"HTTP {resp.status_code}", path=path, status=resp.status_code, retryable=True
            )
        try:
            data = resp.json()
        except ValueError as exc:
            raise WeComApiError(
                f"HTTP {resp.status_code} with a body that is not JSON",
                path=path,
                status=resp.status_code,
                retryable=resp.status_code >= 500,
            ) from exc
        if not isinstance(data, dict):
            raise WeComApiError("answer is not a JSON object", path=path, status=resp.status_code)
        errcode = data.get("errcode", 0)
        if not isinstance(errcode, int):
            raise WeComApiError(f"errcode {errcode!r} is not a number", path=path, status=resp.status_code)
        if errcode != 0:
            raise WeComApiError(
                f"errcode {errcode}: {data.get('errmsg', '')}",
                path=path,
                errcode=errcode,
                status=resp.status_code,
                retryable=errcode in BUSY_ERRCODES,
            )
        if resp.status_code >= 400:
            raise WeComApiError(f"HTTP {resp.status_code}", path=path, status=resp.status_code)
        return data
