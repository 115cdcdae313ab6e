"""What the shared contract suite cannot set up: a Redis that is not there, and MemoryStore
expiry under a clock the test moves by hand (no sleeping)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import pytest

from storage.kv import KeyValueStore, KVUnavailable
from storage.kv_memory import MemoryStore
from storage.kv_redis import RedisStore

# Well above the 2 s connect timeout, well below "the service hangs".
PROMPT_S = 3.0


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def down_store() -> AsyncIterator[RedisStore]:
    store = RedisStore(f"redis://:s3cret-pw@127.0.0.1:{closed_port()}/0", prefix="oabot-test:down:")
    try:
        yield store
    finally:
        await store.close()


async def test_ping_on_unreachable_redis_is_false_quickly(down_store: RedisStore) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    async with asyncio.timeout(PROMPT_S):
        assert await down_store.ping() is False

    assert loop.time() - started < PROMPT_S


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("set_if_absent", ("dedupe:msg-1", "1", 10)),
        ("get", ("token:wecom",)),
        ("set", ("token:wecom", "abc", 10)),
        ("delete", ("token:wecom",)),
        ("incr", ("rate:user-7", 10)),
        ("ttl", ("token:wecom",)),
        ("acquire_lock", ("lock:request-1", 10)),
        ("release_lock", ("lock:request-1", "token")),
        ("purge_prefix", ()),
    ],
)
async def test_calls_on_unreachable_redis_raise_kv_unavailable_quickly(
    down_store: RedisStore, method: str, args: tuple[object, ...]
) -> None:
    async with asyncio.timeout(PROMPT_S):
        with pytest.raises(KVUnavailable):
            await getattr(down_store, method)(*args)


async def test_lock_block_on_unreachable_redis_raises_kv_unavailable(down_store: RedisStore) -> None:
    async with asyncio.timeout(PROMPT_S):
        with pytest.raises(KVUnavailable):
            async with down_store.lock("lock:request-2", wait_s=30.0):
                pytest.fail("entered a lock on a Redis that is not there")


async def test_unreachable_redis_logs_one_warning_not_one_per_call(
    down_store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="storage.kv_redis")

    for n in range(5):
        with pytest.raises(KVUnavailable):
            await down_store.set_if_absent(f"dedupe:msg-{n}", "1", 10)
    assert await down_store.ping() is False

    records = [record for record in caplog.records if record.name == "storage.kv_redis"]
    warnings = [record for record in records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "dedupe:msg-0" in warnings[0].getMessage()
    assert all(record.exc_info is None for record in records)


async def test_unreachable_redis_never_shows_the_password(
    down_store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="storage.kv_redis")

    with pytest.raises(KVUnavailable) as raised:
        await down_store.get("token:wecom")

    assert "s3cret-pw" not in str(raised.value)
    assert "s3cret-pw" not in caplog.text


class HandClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def hand_clock() -> HandClock:
    return HandClock()


@pytest.fixture
def memory(hand_clock: HandClock) -> MemoryStore:
    return MemoryStore(clock=hand_clock)


async def test_memory_key_lives_until_its_ttl_runs_out_and_not_a_moment_longer(
    memory: MemoryStore, hand_clock: HandClock
) -> None:
    assert await memory.set_if_absent("dedupe:msg-1", "1", 10) is True

    hand_clock.advance(9.5)
    assert await memory.set_if_absent("dedupe:msg-1", "1", 10) is False
    assert await memory.ttl("dedupe:msg-1") == pytest.approx(0.5)

    hand_clock.advance(0.5)
    assert await memory.get("dedupe:msg-1") is None
    assert await memory.ttl("dedupe:msg-1") is None
    assert await memory.set_if_absent("dedupe:msg-1", "1", 10) is True


async def test_memory_counter_window_is_fixed_at_creation(memory: MemoryStore, hand_clock: HandClock) -> None:
    assert await memory.incr("rate:user-7", 60) == 1

    hand_clock.advance(45)
    assert await memory.incr("rate:user-7", 60) == 2
    assert await memory.ttl("rate:user-7") == pytest.approx(15)

    hand_clock.advance(15)
    assert await memory.incr("rate:user-7", 60) == 1


async def test_memory_lock_expires_by_itself(memory: MemoryStore, hand_clock: HandClock) -> None:
    stale = await memory.acquire_lock("lock:request-1", 5)
    assert stale is not None

    hand_clock.advance(4.9)
    assert await memory.acquire_lock("lock:request-1", 5) is None

    hand_clock.advance(0.1)
    assert await memory.acquire_lock("lock:request-1", 5) is not None
    assert await memory.release_lock("lock:request-1", stale) is False


async def test_memory_does_not_keep_expired_keys_that_nobody_reads_again(
    memory: MemoryStore, hand_clock: HandClock
) -> None:
    # 100 rounds of 1,000 one-off dedupe keys, each round long after the last one expired.
    largest = 0
    for round_no in range(100):
        for n in range(1000):
            await memory.set_if_absent(f"dedupe:{round_no}:{n}", "1", 1)
        largest = max(largest, len(memory))
        hand_clock.advance(2)

    assert largest < 5000  # 100,000 if expired keys were only dropped when read


def test_memory_store_is_a_key_value_store() -> None:
    assert isinstance(MemoryStore(), KeyValueStore)
