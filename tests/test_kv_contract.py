"""The key-value store contract, run against every implementation through the `kv` fixture.

Timing rule: a check that a key is still there uses a long TTL and no sleep; a check that a key
has gone uses a short TTL and sleeps well past it. A slow machine can then only make the
tests slower, never wrong.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from storage.kv import KeyValueStore, LockNotAcquired
from tests.conftest import REDIS_URL

SHORT_TTL_S = 0.2
PAST_SHORT_TTL_S = 0.4  # sleep this long to be sure a SHORT_TTL_S key has expired
LONG_TTL_S = 30.0


async def test_set_if_absent_is_true_once_then_false_then_true_again_after_expiry(
    kv: KeyValueStore,
) -> None:
    # The only check here that races a short TTL: 0.5 s is far more than two local calls take.
    assert await kv.set_if_absent("dedupe:msg-1", "first", 0.5) is True
    assert await kv.set_if_absent("dedupe:msg-1", "second", 0.5) is False
    assert await kv.get("dedupe:msg-1") == "first"

    await asyncio.sleep(0.7)

    assert await kv.set_if_absent("dedupe:msg-1", "third", LONG_TTL_S) is True
    assert await kv.get("dedupe:msg-1") == "third"


async def test_set_if_absent_key_expires_after_its_ttl(kv: KeyValueStore) -> None:
    assert await kv.set_if_absent("dedupe:msg-2", "1", LONG_TTL_S) is True

    remaining = await kv.ttl("dedupe:msg-2")
    assert remaining is not None
    assert LONG_TTL_S - 5 < remaining <= LONG_TTL_S


async def test_get_set_delete(kv: KeyValueStore) -> None:
    assert await kv.get("user:42:name") is None

    await kv.set("user:42:name", "张三")
    assert await kv.get("user:42:name") == "张三"

    await kv.set("user:42:name", "李四")
    assert await kv.get("user:42:name") == "李四"

    await kv.delete("user:42:name")
    assert await kv.get("user:42:name") is None
    await kv.delete("user:42:name")  # deleting what is not there is fine


async def test_value_set_without_ttl_never_expires_and_loses_an_earlier_ttl(kv: KeyValueStore) -> None:
    assert await kv.ttl("config:mode") is None

    await kv.set("config:mode", "a", LONG_TTL_S)
    assert await kv.ttl("config:mode") is not None

    await kv.set("config:mode", "b")
    assert await kv.ttl("config:mode") is None
    assert await kv.get("config:mode") == "b"


async def test_cached_value_is_served_with_its_remaining_ttl(kv: KeyValueStore) -> None:
    await kv.set("token:wecom:corp-1", "access-token-abc", LONG_TTL_S)

    assert await kv.get("token:wecom:corp-1") == "access-token-abc"
    remaining = await kv.ttl("token:wecom:corp-1")
    assert remaining is not None
    assert LONG_TTL_S - 5 < remaining <= LONG_TTL_S


async def test_cached_value_is_gone_after_its_ttl(kv: KeyValueStore) -> None:
    await kv.set("token:dingtalk:corp-1", "access-token-xyz", SHORT_TTL_S)

    await asyncio.sleep(PAST_SHORT_TTL_S)

    assert await kv.get("token:dingtalk:corp-1") is None
    assert await kv.ttl("token:dingtalk:corp-1") is None


async def test_counter_ttl_starts_at_creation_and_later_increments_do_not_extend_it(
    kv: KeyValueStore,
) -> None:
    assert await kv.incr("rate:user-7", LONG_TTL_S) == 1
    first = await kv.ttl("rate:user-7")
    assert first is not None
    assert LONG_TTL_S - 5 < first <= LONG_TTL_S

    assert await kv.incr("rate:user-7", 1000.0) == 2
    assert await kv.incr("rate:user-7", 1000.0) == 3

    later = await kv.ttl("rate:user-7")
    assert later is not None
    assert later <= first


async def test_counter_starts_again_at_one_after_its_window(kv: KeyValueStore) -> None:
    await kv.incr("rate:user-8", SHORT_TTL_S)

    await asyncio.sleep(PAST_SHORT_TTL_S)

    assert await kv.incr("rate:user-8", LONG_TTL_S) == 1
    remaining = await kv.ttl("rate:user-8")
    assert remaining is not None
    assert remaining > LONG_TTL_S - 5


async def test_counter_found_without_expiry_gets_one(kv: KeyValueStore) -> None:
    await kv.set("rate:user-9", "41")

    assert await kv.incr("rate:user-9", LONG_TTL_S) == 42
    assert await kv.ttl("rate:user-9") is not None


async def test_incr_on_a_value_that_is_not_a_counter_raises_value_error(kv: KeyValueStore) -> None:
    await kv.set("user:42:name", "张三")

    with pytest.raises(ValueError):
        await kv.incr("user:42:name", LONG_TTL_S)
    assert await kv.get("user:42:name") == "张三"


@pytest.mark.parametrize("ttl_s", [0.0, -1.0, float("nan"), float("inf")])
async def test_ttl_that_is_not_a_positive_number_is_refused(kv: KeyValueStore, ttl_s: float) -> None:
    with pytest.raises(ValueError):
        await kv.set_if_absent("dedupe:msg-3", "1", ttl_s)
    with pytest.raises(ValueError):
        await kv.set("token:x", "1", ttl_s)
    with pytest.raises(ValueError):
        await kv.incr("rate:x", ttl_s)
    with pytest.raises(ValueError):
        await kv.acquire_lock("lock:x", ttl_s)
    assert await kv.get("dedupe:msg-3") is None


async def test_lock_is_exclusive_until_its_holder_releases_it(kv: KeyValueStore) -> None:
    token = await kv.acquire_lock("lock:request-1", LONG_TTL_S)
    assert token is not None
    assert await kv.acquire_lock("lock:request-1", LONG_TTL_S) is None

    assert await kv.release_lock("lock:request-1", token) is True

    second = await kv.acquire_lock("lock:request-1", LONG_TTL_S)
    assert second is not None
    assert second != token


async def test_releasing_a_lock_with_the_wrong_token_changes_nothing(kv: KeyValueStore) -> None:
    token = await kv.acquire_lock("lock:request-2", LONG_TTL_S)
    assert token is not None

    assert await kv.release_lock("lock:request-2", "not-the-token") is False
    assert await kv.release_lock("lock:nobody-holds-this", "not-the-token") is False

    assert await kv.acquire_lock("lock:request-2", LONG_TTL_S) is None
    assert await kv.release_lock("lock:request-2", token) is True


async def test_lock_expires_by_itself_and_its_late_holder_cannot_release_the_next_one(
    kv: KeyValueStore,
) -> None:
    stale = await kv.acquire_lock("lock:request-3", SHORT_TTL_S)
    assert stale is not None

    await asyncio.sleep(PAST_SHORT_TTL_S)

    current = await kv.acquire_lock("lock:request-3", LONG_TTL_S)
    assert current is not None
    assert await kv.release_lock("lock:request-3", stale) is False
    assert await kv.acquire_lock("lock:request-3", LONG_TTL_S) is None


async def test_lock_block_waits_for_the_holder_then_runs_and_releases(kv: KeyValueStore) -> None:
    token = await kv.acquire_lock("lock:request-4", LONG_TTL_S)
    assert token is not None

    async def release_soon() -> None:
        await asyncio.sleep(0.2)
        await kv.release_lock("lock:request-4", token)

    loop = asyncio.get_running_loop()
    started = loop.time()
    releaser = asyncio.create_task(release_soon())
    async with kv.lock("lock:request-4", ttl_s=LONG_TTL_S, wait_s=10.0):
        assert loop.time() - started >= 0.15  # it waited for the release, it did not barge in
        assert await kv.acquire_lock("lock:request-4", LONG_TTL_S) is None
    await releaser

    assert await kv.acquire_lock("lock:request-4", LONG_TTL_S) is not None


async def test_lock_block_gives_up_after_waiting(kv: KeyValueStore) -> None:
    assert await kv.acquire_lock("lock:request-5", LONG_TTL_S) is not None
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(LockNotAcquired):
        async with kv.lock("lock:request-5", ttl_s=LONG_TTL_S, wait_s=0.3):
            pytest.fail("entered a lock someone else holds")

    assert loop.time() - started >= 0.3


async def test_lock_block_releases_when_the_block_raises(kv: KeyValueStore) -> None:
    with pytest.raises(RuntimeError):
        async with kv.lock("lock:request-6", ttl_s=LONG_TTL_S, wait_s=0.0):
            raise RuntimeError("handler failed")

    assert await kv.acquire_lock("lock:request-6", LONG_TTL_S) is not None


async def test_concurrent_set_if_absent_on_one_key_lets_exactly_one_win(kv: KeyValueStore) -> None:
    results = await asyncio.gather(
        *(kv.set_if_absent("dedupe:msg-4", f"worker-{n}", LONG_TTL_S) for n in range(20))
    )

    assert results.count(True) == 1
    winner = results.index(True)
    assert await kv.get("dedupe:msg-4") == f"worker-{winner}"


async def test_concurrent_acquire_lock_on_one_key_gives_one_token(kv: KeyValueStore) -> None:
    tokens = await asyncio.gather(*(kv.acquire_lock("lock:request-7", LONG_TTL_S) for _ in range(20)))

    assert sum(token is not None for token in tokens) == 1


async def test_ping_answers(kv: KeyValueStore) -> None:
    assert await kv.ping() is True


# RedisStore.purge_prefix is what keeps test runs on a shared Redis from leaking into each other,
# so it gets a check of its own: it must take glob characters in the prefix literally.
@pytest.mark.skipif(REDIS_URL is None, reason="OABOT_TEST_REDIS_URL is not set")
async def test_redis_purge_prefix_deletes_only_its_own_keys() -> None:
    from storage.kv_redis import RedisStore

    assert REDIS_URL is not None
    run = uuid.uuid4().hex[:12]
    # Read as a glob, the first prefix would also match the second one.
    purged = RedisStore(REDIS_URL, prefix=f"oabot-test:{run}:[a]*?:")
    sibling = RedisStore(REDIS_URL, prefix=f"oabot-test:{run}:ab:")
    try:
        for n in range(1203):  # more than two SCAN/DEL batches
            await purged.set(f"k{n}", "1", LONG_TTL_S)
        await sibling.set("k0", "kept", LONG_TTL_S)

        assert await purged.purge_prefix() == 1203

        assert await purged.get("k0") is None
        assert await sibling.get("k0") == "kept"
        assert await purged.purge_prefix() == 0
    finally:
        await purged.purge_prefix()
        await sibling.purge_prefix()
        await purged.close()
        await sibling.close()
