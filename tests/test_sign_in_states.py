"""The guards of a platform sign-in, on the in-process store and (when configured) Redis: a state
works once, for the path it was made for, within 10 minutes; a platform code is taken once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.clock import ManualClock
from services.sign_in import CodeUsed, SignInGuard, StateExpired, StateInvalid, StateUsed
from storage.db import Database
from storage.kv import KeyValueStore

SECRET = "sign-in-secret-0123456789"


def guard(kv: KeyValueStore, clock: ManualClock, secret: str = SECRET) -> SignInGuard:
    return SignInGuard(kv, None, secret=secret, now=clock.now)  # type: ignore[arg-type]


async def test_a_state_names_its_path_once(kv: KeyValueStore, clock: ManualClock):
    g = guard(kv, clock)
    state = await g.new_state("/m/r/20261123-abcd")
    assert state.isalnum() and len(state) < 128
    assert await g.redeem(state) == "/m/r/20261123-abcd"
    with pytest.raises(StateUsed):
        await g.redeem(state)


async def test_a_state_expires_after_ten_minutes(kv: KeyValueStore, clock: ManualClock):
    g = guard(kv, clock)
    state = await g.new_state("/m/")
    clock.advance(timedelta(minutes=10, seconds=1))
    with pytest.raises(StateExpired):
        await g.redeem(state)


async def test_a_state_signed_with_another_secret_or_altered_is_invalid(
    kv: KeyValueStore, clock: ManualClock
):
    state = await guard(kv, clock).new_state("/m/")
    with pytest.raises(StateInvalid):
        await guard(kv, clock, secret="another-secret-0123456789").redeem(state)
    nonce, expires, signature = state.split("x")
    later = str(int(expires) + 3600)  # a longer life is not the state's own
    with pytest.raises(StateInvalid):
        await guard(kv, clock).redeem("x".join((nonce, later, signature)))


async def test_a_platform_code_is_taken_once_per_platform(kv: KeyValueStore, clock: ManualClock):
    g = guard(kv, clock)
    await g.first_use("wecom", "code-1")
    await g.first_use("dingtalk", "code-1")
    with pytest.raises(CodeUsed):
        await g.first_use("wecom", "code-1")


async def test_the_stored_link_secret_signs_states(org_db: Database, kv: KeyValueStore, clock: ManualClock):
    g = SignInGuard(kv, org_db, secret=None, now=clock.now)
    state = await g.new_state("/console")
    assert await SignInGuard(kv, org_db, secret=None, now=clock.now).redeem(state) == "/console"
