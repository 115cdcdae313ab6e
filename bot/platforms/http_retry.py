"""Retries of outbound platform API calls (WeCom, DingTalk): a few tries with jittered
exponential backoff, on tenacity.

`call_with_retries(call, policy=..., retryable=...)` runs `call` until it returns, raises an
error `retryable` does not accept, or has been tried `policy.attempts` times; the last error is
raised as it was. The delay before try n+1 is `min(max_delay_s, base_delay_s * 2**(n-1))`, of
which the share `jitter` is random, so replicas that failed together do not come back together.
`policy.sleep` is injectable so tests need not wait.

Which answers are worth another try is the caller's decision (each client's error carries a
`retryable` flag); this module knows no platform, URL or token, and retries only within one
call: what still fails goes back to the outbox, which tries again later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random_exponential,
)
from tenacity.wait import wait_base

logger = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries and how long between them."""

    attempts: int = 4
    base_delay_s: float = 0.25
    max_delay_s: float = 2.0
    jitter: float = 1.0  # the random share of each delay: 1 = anywhere up to it, 0.5 = its upper half
    sleep: Sleep = asyncio.sleep

    def backoff(self) -> wait_base:
        """tenacity's wait for this policy: a steady share plus a random share of the delay."""
        fixed, random_share = 1.0 - self.jitter, self.jitter
        steady = wait_exponential(multiplier=self.base_delay_s * fixed, max=self.max_delay_s * fixed)
        jittered = wait_random_exponential(
            multiplier=self.base_delay_s * random_share, max=self.max_delay_s * random_share
        )
        return steady + jittered


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    retryable: Callable[[BaseException], bool],
    what: str,
) -> T:
    """`call()`'s answer, trying again after the errors `retryable` accepts; `what` names the
    call in the log lines (never a whole URL: they carry tokens)."""

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "platform call failed; retrying",
            extra={
                "call": what,
                "attempt": state.attempt_number,
                "retry_in_s": round(delay, 2),
                "error": str(error),
            },
        )

    async def attempt() -> T:  # tenacity awaits only what it sees is a coroutine function
        return await call()

    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(1, policy.attempts)),
        wait=policy.backoff(),
        retry=retry_if_exception(retryable),
        sleep=policy.sleep,
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        return await retrying(attempt)
    except Exception as exc:
        if retryable(exc):
            logger.warning("platform call failed; giving up for now", extra={"call": what, "error": str(exc)})
        raise
