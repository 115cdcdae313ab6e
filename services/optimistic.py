"""The one retry for lost optimistic races: run a unit of work again after `ConcurrentUpdate`.

Saving a request is optimistic (see `storage.approval_store`): when another writer got there
first, the whole unit of work (load, call the core, save, in one transaction) is run again on
fresh state after a short random pause that grows with each attempt, so that racing writers
spread out. It never retries anything else: a refusal by the core is an answer, not a race.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from storage.approval_store import ConcurrentUpdate

MAX_ATTEMPTS = 10

_T = TypeVar("_T")


def _pause(state: RetryCallState) -> float:
    return random.uniform(0.005, 0.03) * state.attempt_number


async def retry_on_conflict(
    work: Callable[[], Awaitable[_T]], *, busy: Exception, attempts: int = MAX_ATTEMPTS
) -> _T:
    """`await work()` until it does not raise ConcurrentUpdate; after `attempts` lost races,
    raise `busy` (from the last conflict)."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(ConcurrentUpdate),
        stop=stop_after_attempt(attempts),
        wait=_pause,
        reraise=True,
    )
    try:
        return await retrying(work)
    except ConcurrentUpdate as exc:
        raise busy from exc
