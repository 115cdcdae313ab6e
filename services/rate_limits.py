"""Rate limits over the key-value store, so every replica sharing Redis shares the counts.

A fixed window per (bucket, who): the first request of a window creates a counter that expires
with the window (the store's atomic `incr`), each request adds one, and a request that takes the
count past the limit is refused until the counter expires. `who` (an address, a token name, a
person) is only ever stored as a short hash. When the store cannot be reached the request is let
through: a Redis outage must not lock the office out (it is logged by the store and /readyz).
Decides nothing about which routes are limited; the web edge does.
"""

from __future__ import annotations

import hashlib
import math

from storage.kv import KeyValueStore, KVUnavailable

_KEY = "ratelimit:"


class RateLimiter:
    """Counts requests per (bucket, who) in fixed windows of the store."""

    def __init__(self, kv: KeyValueStore) -> None:
        self._kv = kv

    async def hit(self, bucket: str, who: str, *, count: int, window_s: int) -> int | None:
        """Count one request; None while within `count` per `window_s`, else the whole seconds
        until the window ends (for Retry-After, at least 1)."""
        digest = hashlib.sha256(who.encode("utf-8", "replace")).hexdigest()[:24]
        key = f"{_KEY}{bucket}:{digest}"
        try:
            used = await self._kv.incr(key, window_s)
            if used <= count:
                return None
            remaining = await self._kv.ttl(key)
        except KVUnavailable:
            return None
        return max(1, math.ceil(remaining if remaining is not None else window_s))
