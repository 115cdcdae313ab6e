"""Which requests are rate limited, and by what: sign-in routes per client address, sign-ins per
person, /api/ per bearer token, platform callbacks per client address (limits in `EdgeSettings`).

Over a limit the answer is 429 JSON with Retry-After (raised as aiohttp's HTTPTooManyRequests,
which the error middleware turns into the usual JSON error). The counting is
`services.rate_limits`'s, in the shared key-value store. Behind a reverse proxy listed in
OABOT_TRUSTED_PROXIES the client address comes from X-Forwarded-For: the nearest hop that is not
one of the proxies.
"""

from __future__ import annotations

import ipaddress
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


async def enforce(request: web.Request, bucket: str, who: str, limit: RateLimit | None) -> None:
    """Count this request against `limit`; HTTPTooManyRequests (Retry-After) when over it."""
    if limit is None:
        return
    limiter = RateLimiter(request.config_dict[KV])
    retry_after = await limiter.hit(bucket, who, count=limit.count, window_s=limit.window_s)
    if retry_after is not None:
        raise web.HTTPTooManyRequests(
            headers={"Retry-After": str(retry_after)},
            text=f"请求过于频繁，请 {retry_after} 秒后再试。",
        )


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
        await enforce(request, "callbacks_ip", client_address(request), limits.callbacks_per_ip)
    elif path.startswith(API_PREFIX) and (principal := request.get(PRINCIPAL)) is not None:
        await enforce(request, "api_token", principal.name, limits.api_per_token)
    return await handler(request)
