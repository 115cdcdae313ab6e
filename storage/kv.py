"""The key-value store contract: what oabot needs Redis for, and nothing more.

Two implementations pass one contract test suite: `storage.kv_redis.RedisStore` and
`storage.kv_memory.MemoryStore` (the embedded default, one process only).
Keys are plain strings; implementations add their own prefix. Values, counters and locks share
one key space. TTLs are seconds (float) and must be positive: ValueError otherwise.
Every method except `ping` and `close` raises KVUnavailable when the store cannot be reached.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KVUnavailable(Exception):
    """The store could not be reached; callers degrade instead of crashing."""


class LockNotAcquired(Exception):
    """`lock()` gave up waiting for a lock someone else holds."""


class KeyValueStore(ABC):
    @abstractmethod
    async def set_if_absent(self, key: str, value: str, ttl_s: float) -> bool:
        """Set `key` only if it does not exist; True if this call set it (dedupe)."""

    @abstractmethod
    async def get(self, key: str) -> str | None:
        """The value, or None when absent or expired."""

    @abstractmethod
    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None:
        """Set a (cached) value, optionally expiring after `ttl_s` seconds.

        Without `ttl_s` the key no longer expires, even if it had an expiry before.
        """

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove `key`; nothing happens when it is absent."""

    @abstractmethod
    async def incr(self, key: str, ttl_s: float) -> int:
        """Increment a counter and return the new count (rate limits).

        The TTL starts when the counter is created: later calls do not extend it, and once it
        expires the next call starts again at 1. A counter found without an expiry gets `ttl_s`.
        Raises ValueError when `key` holds something that is not an integer.
        """

    @abstractmethod
    async def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires; None when absent or without expiry."""

    @abstractmethod
    async def acquire_lock(self, key: str, ttl_s: float) -> str | None:
        """Take a short lock that expires by itself after `ttl_s`; returns a token to release it
        with, or None if someone holds it."""

    @abstractmethod
    async def release_lock(self, key: str, token: str) -> bool:
        """Release only if we still hold it (token matches); True if released."""

    @abstractmethod
    async def ping(self) -> bool:
        """True when the store answers."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    @asynccontextmanager
    async def lock(self, key: str, ttl_s: float = 10.0, wait_s: float = 5.0) -> AsyncIterator[None]:
        """Hold a short lock for the block, waiting up to `wait_s`; raises LockNotAcquired."""
        deadline = asyncio.get_running_loop().time() + wait_s
        delay = 0.01
        while True:
            token = await self.acquire_lock(key, ttl_s)
            if token is not None:
                break
            if asyncio.get_running_loop().time() >= deadline:
                raise LockNotAcquired(key)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        try:
            yield
        finally:
            await self.release_lock(key, token)
