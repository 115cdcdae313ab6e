"""Which requests are rate limited, and by what: sign-in routes per client address, sign-ins per
person, /api/ per bearer token, platform callbacks per client address (limits in `EdgeSettings`).

Platform callbacks are counted after their handler has run, and only those that did not verify:
a correctly signed, fresh callback (the handler calls `mark_signed` once the platform's signature
checked out) is the platform's own traffic, which must never be refused and costs no key-value
round trip. Everything else (unsigned, forged, stale, replayed, malformed) is counted in the shared
store as before; once an address is over its limit, this process also remembers that until the
window ends (`CallbackBlocks`) and answers its next callbacks 429 before reading them, so junk from
a flooding address still costs nothing but a dictionary look-up.

Over a limit the answer is 429 JSON with Retry-After (raised as aiohttp's HTTPTooManyRequests,
which the error middleware turns into the usual JSON error). The counting is
`services.rate_limits`'s, in the shared key-value store. Behind a reverse proxy listed in
OABOT_TRUSTED_PROXIES the client address comes from X-Forwarded-For: the nearest hop that is not
one of the proxies.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Awaitable, Callable
from functools import cache

from aiohttp import web

from bot.keys import KV, PRINCIPAL, SETTINGS
from bot.settings import RateLimit
from services.rate_limits import RateLimiter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SIGN_IN_PREFIXES = ("/m/sign-in", "/m/l/")
CALLBACK_PREFIX = "/callbacks/"
API_PREFIX = "/api/"
# Set by a callback handler once the platform's signature (and freshness) checked out.
CALLBACK_SIGNED = web.RequestKey("callback_signed", bool)


class CallbackBlocks:
    """Addresses this process knows to be over the callback limit, until when (monotonic)."""

    MAX_ADDRESSES = 10_000

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._until: dict[str, float] = {}
        self._now = now

    def retry_after(self, who: str) -> int | None:
        """Whole seconds `who` must still wait, or None when it is not blocked here."""
        until = self._until.get(who)
        if until is None:
            return None
        left = until - self._now()
        if left <= 0:
            del self._until[who]
            return None
        return max(1, math.ceil(left))

    def block(self, who: str, seconds: int) -> None:
        if len(self._until) >= self.MAX_ADDRESSES:
            now = self._now()
            self._until = {k: v for k, v in self._until.items() if v > now}
            if len(self._until) >= self.MAX_ADDRESSES:  # still full: forget the oldest half
                self._until = dict(list(self._until.items())[self.MAX_ADDRESSES // 2 :])
        self._until[who] = self._now() + seconds


CALLBACK_BLOCKS = web.AppKey("callback_blocks", CallbackBlocks)


def setup_rate_limits(app: web.Application) -> None:
    app[CALLBACK_BLOCKS] = CallbackBlocks()


def mark_signed(request: web.Request) -> None:
    """Say that this callback is the platform's: correctly signed and fresh (not rate limited)."""
    request[CALLBACK_SIGNED] = True


@cache
def _networks(given: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in given)


def _is_in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: web.Request) -> str:
    """The visitor's address: the peer, or behind a trusted proxy the hop it forwarded for."""
    peer = request.remote or ""
    proxies = _networks(request.config_dict[SETTINGS].edge.trusted_proxies)
    if not proxies or not _is_in(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    hops = [h for h in hops if h]
    for hop in reversed(hops):
        if not _is_in(hop, proxies):
            return hop
    return hops[0] if hops else peer


def _too_many(retry_after: int) -> web.HTTPTooManyRequests:
    return web.HTTPTooManyRequests(
        headers={"Retry-After": str(retry_after)},
        text=f"请求过于频繁，请 {retry_after} 秒后再试。",
    )


async def _count(request: web.Request, bucket: str, who: str, limit: RateLimit) -> int | None:
    limiter = RateLimiter(request.config_dict[KV])
    return await limiter.hit(bucket, who, count=limit.count, window_s=limit.window_s)


async def enforce(request: web.Request, bucket: str, who: str, limit: RateLimit | None) -> None:
    """Count this request against `limit`; HTTPTooManyRequests (Retry-After) when over it."""
    if limit is None:
        return
    retry_after = await _count(request, bucket, who, limit)
    if retry_after is not None:
        raise _too_many(retry_after)


async def _limit_callback(
    request: web.Request, handler: Handler, limit: RateLimit | None
) -> web.StreamResponse:
    """A platform callback: refused at once when this address is known to be over the limit,
    else handled, then counted unless the handler found it correctly signed (module docstring)."""
    if limit is None:
        return await handler(request)
    who = client_address(request)
    blocks = request.config_dict[CALLBACK_BLOCKS]
    if (known := blocks.retry_after(who)) is not None:
        raise _too_many(known)
    try:
        response = await handler(request)
    except web.HTTPException:
        await _count_unsigned(request, who, limit, blocks)
        raise
    await _count_unsigned(request, who, limit, blocks)
    return response


async def _count_unsigned(request: web.Request, who: str, limit: RateLimit, blocks: CallbackBlocks) -> None:
    if request.get(CALLBACK_SIGNED):
        return
    retry_after = await _count(request, "callbacks_ip", who, limit)
    if retry_after is not None:
        blocks.block(who, retry_after)
        raise _too_many(retry_after)


async def enforce_sign_in_account(request: web.Request, user: str) -> None:
    """Before a session is started for `user`: the per-person sign-in limit."""
    await enforce(request, "sign_in_account", user, request.config_dict[SETTINGS].edge.sign_in_per_account)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Runs after the API auth middleware, so an /api/ request is counted for its token."""
    limits = request.config_dict[SETTINGS].edge
    path = request.path
    if path.startswith(SIGN_IN_PREFIXES):
        await enforce(request, "sign_in_ip", client_address(request), limits.sign_in_per_ip)
    elif path.startswith(CALLBACK_PREFIX):
        return await _limit_callback(request, handler, limits.callbacks_per_ip)
    elif path.startswith(API_PREFIX) and (principal := request.get(PRINCIPAL)) is not None:
        await enforce(request, "api_token", principal.name, limits.api_per_token)
    return await handler(request)
