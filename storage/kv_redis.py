"""The Redis key-value store, for running more than one oabot process.

Every key is stored under this store's prefix, so several deployments (or test runs) can share
one Redis database. An unreachable Redis surfaces as `KVUnavailable` within a few seconds, never
as a hang and never as a redis-py exception: callers decide how to degrade. This module decides
nothing about what the keys mean.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Awaitable
from typing import TypeVar
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from storage.kv import KeyValueStore, KVUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Bounds how long one call can take when Redis is down or unroutable.
_CONNECT_TIMEOUT_S = 2.0
_READ_TIMEOUT_S = 2.0
_PURGE_BATCH = 500

# ReadOnlyError: after a failover our connection may still point at the demoted replica.
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)

# Counts, and gives the counter its expiry when it has none, i.e. when INCR just created it.
_INCR_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
"""

# Deletes the lock only while it still holds our token, so a holder whose lock already expired
# cannot release the next holder's lock.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _ms(ttl_s: float) -> int:
    if not (math.isfinite(ttl_s) and ttl_s > 0):
        raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
    return max(1, round(ttl_s * 1000))


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "\\*?[]" else char for char in text)


def _describe(url: str) -> str:
    """Where the store points, for log lines: never the password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    return f"{parts.hostname}:{parts.port or 6379}{parts.path}"


class RedisStore(KeyValueStore):
    """`KeyValueStore` on Redis (redis.asyncio). Connects lazily: constructing it does no I/O."""

    def __init__(self, url: str, *, prefix: str = "oabot:") -> None:
        self._prefix = prefix
        self._where = _describe(url)
        self._down = False
        self._redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=_CONNECT_TIMEOUT_S,
            socket_timeout=_READ_TIMEOUT_S,
            # redis-py's default retries ten times, timeouts included, which turns a dead server
            # into a long stall. One immediate retry after a dropped connection lets a pooled
            # connection that a Redis restart left stale reconnect; a timeout is not retried.
            retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        )
        self._incr_script = self._redis.register_script(_INCR_SCRIPT)
        self._release_script = self._redis.register_script(_RELEASE_SCRIPT)

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def _call(self, op: str, key: str | None, pending: Awaitable[T]) -> T:
        """Await one Redis call, turning "Redis is not there" into KVUnavailable."""
        what = op if key is None else f"{op} {key}"
        try:
            result = await pending
        except _UNREACHABLE as exc:
            # One warning when Redis goes away, not one per call while it stays away.
            if self._down:
                logger.debug("redis at %s still unreachable (%s): %s", self._where, what, exc)
            else:
                self._down = True
                logger.warning("redis at %s unreachable (%s): %s", self._where, what, exc)
            raise KVUnavailable(f"redis at {self._where} unreachable during {op}: {exc}") from exc
        if self._down:
            self._down = False
            logger.info("redis at %s reachable again (%s)", self._where, what)
        return result

    async def set_if_absent(self, key: str, value: str, ttl_s: float) -> bool:
        full = self._key(key)
        taken = await self._call("set_if_absent", full, self._redis.set(full, value, px=_ms(ttl_s), nx=True))
        return bool(taken)

    async def get(self, key: str) -> str | None:
        full = self._key(key)
        value = await self._call("get", full, self._redis.get(full))
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None:
        full = self._key(key)
        px = None if ttl_s is None else _ms(ttl_s)
        await self._call("set", full, self._redis.set(full, value, px=px))

    async def delete(self, key: str) -> None:
        full = self._key(key)
        await self._call("delete", full, self._redis.delete(full))

    async def incr(self, key: str, ttl_s: float) -> int:
        full = self._key(key)
        pending = self._incr_script(keys=[full], args=[_ms(ttl_s)])
        try:
            count = await self._call("incr", full, pending)
        except ResponseError as exc:  # READONLY is not one: _call turned it into KVUnavailable
            raise ValueError(f"{key!r} does not hold an integer counter") from exc
        return int(count)

    async def ttl(self, key: str) -> float | None:
        full = self._key(key)
        remaining_ms = int(await self._call("ttl", full, self._redis.pttl(full)))
        # PTTL answers -2 for a missing key and -1 for a key without expiry.
        return None if remaining_ms < 0 else remaining_ms / 1000

    async def acquire_lock(self, key: str, ttl_s: float) -> str | None:
        full = self._key(key)
        token = secrets.token_hex(16)
        taken = await self._call("acquire_lock", full, self._redis.set(full, token, px=_ms(ttl_s), nx=True))
        return token if taken else None

    async def release_lock(self, key: str, token: str) -> bool:
        full = self._key(key)
        released = await self._call("release_lock", full, self._release_script(keys=[full], args=[token]))
        return bool(released)

    async def ping(self) -> bool:
        try:
            return bool(await self._call("ping", None, self._redis.ping()))
        except KVUnavailable:
            return False

    async def close(self) -> None:
        await self._redis.aclose()

    async def purge_prefix(self) -> int:
        """Delete every key under this store's prefix (test clean-up); returns how many went.

        The prefix is matched literally, but a prefix that does not end in a separator such as
        ":" also covers longer prefixes that start with it.
        """
        return await self._call("purge_prefix", self._prefix + "*", self._purge())

    async def _purge(self) -> int:
        deleted = 0
        batch: list[str] = []
        async for key in self._redis.scan_iter(match=_glob_escape(self._prefix) + "*", count=_PURGE_BATCH):
            batch.append(key)
            if len(batch) >= _PURGE_BATCH:
                deleted += int(await self._redis.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(await self._redis.delete(*batch))
        return deleted
