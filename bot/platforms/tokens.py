"""Access tokens cached in the key-value store, fetched once per expiry across replicas.

`TokenCache.get()` returns the cached token or takes a short lock (single flight), checks the
cache again, and only then asks the platform. `invalidate(token)` drops a token the platform
called expired, so the next `get()` fetches a fresh one. If the store is down, tokens are
fetched directly and kept in process memory until they expire.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from storage.kv import KeyValueStore, KVUnavailable, LockNotAcquired

logger = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[tuple[str, float]]]  # -> (token, expires_in seconds)


class TokenCache:
    def __init__(self, kv: KeyValueStore, key: str, fetch: Fetch, *, margin_s: float = 300.0) -> None:
        self._kv = kv
        self._key = f"token:{key}"
        self._fetch = fetch
        self._margin = margin_s
        self._local: tuple[str, float] | None = None  # fallback when the store is down

    async def get(self) -> str:
        try:
            cached = await self._kv.get(self._key)
            if cached:
                return cached
            try:
                async with self._kv.lock(f"lock:{self._key}", ttl_s=15, wait_s=15):
                    cached = await self._kv.get(self._key)
                    if cached:
                        return cached
                    token, expires_in = await self._fetch_now()
                    await self._kv.set(self._key, token, ttl_s=max(30.0, expires_in - self._margin))
                    return token
            except LockNotAcquired:
                logger.warning("token lock wait timed out; fetching directly", extra={"token_key": self._key})
                token, _ = await self._fetch_now()
                return token
        except KVUnavailable:
            if self._local and self._local[1] > time.monotonic():
                return self._local[0]
            token, expires_in = await self._fetch_now()
            self._local = (token, time.monotonic() + max(30.0, expires_in - self._margin))
            return token

    async def _fetch_now(self) -> tuple[str, float]:
        token, expires_in = await self._fetch()
        logger.info("access token fetched", extra={"token_key": self._key, "expires_in": expires_in})
        return token, expires_in

    async def invalidate(self, token: str) -> None:
        self._local = None
        try:
            if await self._kv.get(self._key) == token:
                await self._kv.delete(self._key)
        except KVUnavailable:
            pass
