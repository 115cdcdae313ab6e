"""Per-person send limits: at most `per_minute` messages to one person on one platform in any 60
seconds, counted in the key-value store so every replica shares the count.

WeCom delivers at most 30 messages per minute to one member and drops the rest silently; DingTalk
documents 20 per minute for its robots (group robots; robot one-to-one messages answer with a
flow-controlled list instead), so 20 is its default. A plain token bucket of 30 refilling at 30 a
minute would let 60 through in the first minute; a sliding window of the last sends does not,
which is what "30 per minute" has to mean to a platform that drops the 31st.

`take` either counts a send now (0.0) or says how many seconds until the oldest send in the
window leaves it. When the store cannot be reached the send goes ahead (logged): a message late
or lost is worse than one over the limit, which the platform's own answer then throttles.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from storage.kv import KeyValueStore, KVUnavailable, LockNotAcquired

logger = logging.getLogger(__name__)

# The platforms count a minute from when a message reaches them; a send is counted here when it
# starts, so the window is 2 s longer than a minute to cover the call itself (a 31st message
# counted at 60.0 s but arriving 0.2 s sooner than the first did would be dropped by WeCom).
WINDOW_S = 62.0


class SendLimits:
    def __init__(self, kv: KeyValueStore, per_minute: Mapping[str, int], now: Callable[[], datetime]) -> None:
        self._kv = kv
        self._per_minute = {channel: n for channel, n in per_minute.items() if n > 0}
        self._now = now

    def limited(self, channel: str) -> bool:
        return channel in self._per_minute

    async def take(self, channel: str, recipient: str) -> float:
        """Count one send to `recipient` on `channel` now (0.0), or the seconds until one may go."""
        most = self._per_minute.get(channel)
        if most is None:
            return 0.0
        key = f"sendlimit:{channel}:{recipient}"
        try:
            async with self._kv.lock(f"{key}:lock", ttl_s=5.0, wait_s=5.0):
                return await self._take_locked(key, most)
        except (KVUnavailable, LockNotAcquired) as exc:
            logger.warning(
                "send limit not checked; sending",
                extra={"channel": channel, "recipient": recipient, "error": type(exc).__name__},
            )
            return 0.0

    async def seed(self, sends: Iterable[tuple[str, str, datetime]]) -> int:
        """Count deliveries made before this process started (channel, recipient, when), so a
        restart that lost an in-process store does not open a fresh minute for everyone. A person
        the store still counts (a shared Redis kept across the restart) is left as it is, so no
        send is counted twice. How many people had sends to count."""
        by_key: dict[str, list[float]] = {}
        for channel, recipient, at in sends:
            if channel in self._per_minute:
                by_key.setdefault(f"sendlimit:{channel}:{recipient}", []).append(at.timestamp())
        now = self._now().timestamp()
        for key, stamps in by_key.items():
            try:
                async with self._kv.lock(f"{key}:lock", ttl_s=5.0, wait_s=5.0):
                    if _stamps(await self._kv.get(key)):
                        continue  # the store kept this person's count across the restart
                    kept = sorted(t for t in stamps if now - WINDOW_S < t <= now + WINDOW_S)
                    await self._kv.set(key, ",".join(f"{t:.3f}" for t in kept), ttl_s=WINDOW_S * 2)
            except (KVUnavailable, LockNotAcquired) as exc:
                logger.warning("send limit not seeded", extra={"key": key, "error": type(exc).__name__})
        return len(by_key)

    async def _take_locked(self, key: str, most: int) -> float:
        now = self._now().timestamp()
        sends = [t for t in _stamps(await self._kv.get(key)) if now - WINDOW_S < t <= now + WINDOW_S]
        if len(sends) >= most:
            return max(sends[-most] + WINDOW_S - now, 0.001)
        sends.append(now)
        await self._kv.set(key, ",".join(f"{t:.3f}" for t in sends[-most:]), ttl_s=WINDOW_S * 2)
        return 0.0


def _stamps(raw: str | None) -> list[float]:
    """The stored send times, oldest first; anything unreadable counts as no sends."""
    if not raw:
        return []
    try:
        return sorted(float(part) for part in raw.split(","))
    except ValueError:
        return []
