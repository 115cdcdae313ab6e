"""The in-process key-value store: the embedded default when no Redis is configured.

It keeps everything in one dict inside one process, so it is only correct while oabot runs as a
single process: a second worker would have its own dedupe keys, locks and counters. It must not be
used from more than one thread or event loop. Nothing survives a restart.

Expiry is checked whenever a key is touched, and every so often a sweep drops keys that expired
without being touched again, so a stream of one-off dedupe keys cannot grow memory without bound.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from storage.kv import KeyValueStore

# A sweep runs after this many writes, or after as many writes as there were entries at the last
# sweep if that is more: expired leftovers never exceed the live set (plus this floor), and the
# cost of a sweep is spread over at least as many writes as it visits.
_SWEEP_MIN_WRITES = 1024

# What Redis's INCR accepts as a counter; Python's int() would also take " 7" or "1_000".
_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(slots=True)
class _Entry:
    value: str
    expires_at: float | None  # on the store's clock; None means it never expires


def _check_ttl(ttl_s: float) -> None:
    if not (math.isfinite(ttl_s) and ttl_s > 0):
        raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")


class MemoryStore(KeyValueStore):
    """`KeyValueStore` in a dict. `clock` returns seconds and only ever moves forward.

    Every method finishes without awaiting anything, so each one is atomic with respect to the
    other tasks on the event loop; that is what makes `set_if_absent` and the locks safe here.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._writes_since_sweep = 0
        self._size_after_sweep = 0

    def __len__(self) -> int:
        """Entries held, counting expired ones that the next sweep has not dropped yet."""
        return len(self._entries)

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= now:
            del self._entries[key]
            return None
        return entry

    def _put(self, key: str, value: str, expires_at: float | None, now: float) -> None:
        self._entries[key] = _Entry(value, expires_at)
        self._writes_since_sweep += 1
        if self._writes_since_sweep >= max(_SWEEP_MIN_WRITES, self._size_after_sweep):
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        expired = [
            key
            for key, entry in self._entries.items()
            if entry.expires_at is not None and entry.expires_at <= now
        ]
        for key in expired:
            del self._entries[key]
        self._writes_since_sweep = 0
        self._size_after_sweep = len(self._entries)

    async def set_if_absent(self, key: str, value: str, ttl_s: float) -> bool:
        _check_ttl(ttl_s)
        now = self._clock()
        if self._live(key, now) is not None:
            return False
        self._put(key, value, now + ttl_s, now)
        return True

    async def get(self, key: str) -> str | None:
        entry = self._live(key, self._clock())
        return None if entry is None else entry.value

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None:
        if ttl_s is not None:
            _check_ttl(ttl_s)
        now = self._clock()
        self._put(key, value, None if ttl_s is None else now + ttl_s, now)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def incr(self, key: str, ttl_s: float) -> int:
        _check_ttl(ttl_s)
        now = self._clock()
        entry = self._live(key, now)
        if entry is None:
            self._put(key, "1", now + ttl_s, now)
            return 1
        if not _INTEGER.fullmatch(entry.value):
            raise ValueError(f"{key!r} does not hold an integer counter")
        count = int(entry.value) + 1
        entry.value = str(count)
        if entry.expires_at is None:
            # Same as the Redis store: a counter never outlives its window by accident.
            entry.expires_at = now + ttl_s
        return count

    async def ttl(self, key: str) -> float | None:
        now = self._clock()
        entry = self._live(key, now)
        if entry is None or entry.expires_at is None:
            return None
        return entry.expires_at - now

    async def acquire_lock(self, key: str, ttl_s: float) -> str | None:
        token = secrets.token_hex(16)
        return token if await self.set_if_absent(key, token, ttl_s) else None

    async def release_lock(self, key: str, token: str) -> bool:
        entry = self._live(key, self._clock())
        if entry is None or entry.value != token:
            return False
        del self._entries[key]
        return True

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._entries.clear()
        self._writes_since_sweep = 0
        self._size_after_sweep = 0
