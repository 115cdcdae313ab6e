"""The guards of a platform sign-in: the `state` that carries a sign-in across the platform's
redirect, and the one-time codes the platforms hand out.

- A state is a random nonce with its expiry (10 minutes) and a signature over both and the path
  the person asked for (HMAC-SHA256, the link secret under a signing domain of its own). The path
  waits in the key-value store under the nonce; redeeming a state takes the nonce once
  (set_if_absent), so a state works once, on one replica or many, and only for the path it was
  made for (the path stays until the state expires, so a replay is told it was used). It is letters and digits only and under 128 characters, as WeCom asks.
- A platform code (WeCom OAuth, DingTalk 免登) is marked on first use for as long as it could
  live (5 minutes), so a replayed code is refused before the platform is even asked.

Nothing here knows HTTP or a platform's API: `bot.web.workspace.sign_in` does.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from org.errors import Category, DomainError
from storage.checkin_store import stored_link_secret
from storage.db import Database
from storage.kv import KeyValueStore, KVUnavailable

STATE_TTL = timedelta(minutes=10)
CODE_TTL = timedelta(minutes=5)
_DOMAIN = b"oabot-sign-in-state-v1."
_STATE_KEY = "signin:state:"
_USED_KEY = "signin:state-used:"
_CODE_KEY = "signin:code:"
_SEPARATOR = "x"  # never a hex digit


class SignInRefused(DomainError):
    """A sign-in that cannot go on; `code` says why."""

    code = "sign_in_refused"
    category = Category.FORBIDDEN


class StateInvalid(SignInRefused):
    """Not a state this server made (altered, truncated, for another path)."""

    code = "sign_in_state_invalid"


class StateExpired(SignInRefused):
    code = "sign_in_state_expired"
    category = Category.GONE


class StateUsed(SignInRefused):
    code = "sign_in_state_used"


class CodeUsed(SignInRefused):
    """The platform's one-time code was offered here before."""

    code = "sign_in_code_used"


class SignInUnavailable(SignInRefused):
    """The key-value store (states, used codes, sessions) does not answer: try again later."""

    code = "sign_in_unavailable"
    category = Category.UNAVAILABLE


@contextlib.contextmanager
def _store_answers() -> Iterator[None]:
    try:
        yield
    except KVUnavailable as exc:
        raise SignInUnavailable() from exc


class SignInGuard:
    def __init__(
        self, kv: KeyValueStore, db: Database, *, secret: str | None, now: Callable[[], datetime]
    ) -> None:
        self._kv = kv
        self._db = db
        self._configured = secret.encode() if secret else None
        self._stored: bytes | None = None
        self._now = now

    async def _secret(self) -> bytes:
        if self._configured is not None:
            return self._configured
        if self._stored is None:
            async with self._db.transaction() as s:
                self._stored = await stored_link_secret(s, now=self._now())
        return self._stored

    async def _signature(self, nonce: str, expires: int, next_path: str) -> str:
        message = _DOMAIN + f"{nonce}{_SEPARATOR}{expires}{_SEPARATOR}{next_path}".encode()
        return hmac.new(await self._secret(), message, hashlib.sha256).hexdigest()[:40]

    async def new_state(self, next_path: str) -> str:
        """A state for a sign-in that should end on `next_path` (a path on this site)."""
        nonce = secrets.token_hex(16)
        expires = int((self._now() + STATE_TTL).timestamp())
        with _store_answers():
            await self._kv.set(_STATE_KEY + nonce, next_path, STATE_TTL.total_seconds())
        signature = await self._signature(nonce, expires, next_path)
        return _SEPARATOR.join((nonce, str(expires), signature))

    @staticmethod
    def nonce_of(state: str) -> str:
        """The part of a state a browser cookie may carry to bind the sign-in to that browser."""
        return state.split(_SEPARATOR, 1)[0][:32]

    async def redeem(self, state: str) -> str:
        """The path a state was made for, once; StateInvalid / StateExpired / StateUsed otherwise."""
        parts = state.split(_SEPARATOR) if len(state) < 128 else []
        if len(parts) != 3 or not parts[1].isdigit():
            raise StateInvalid()
        nonce, expires, signature = parts[0], int(parts[1]), parts[2]
        if expires <= self._now().timestamp():
            raise StateExpired()
        with _store_answers():
            next_path = await self._kv.get(_STATE_KEY + nonce)
        if next_path is None or not hmac.compare_digest(
            signature, await self._signature(nonce, expires, next_path)
        ):
            raise StateInvalid()
        with _store_answers():
            first = await self._kv.set_if_absent(_USED_KEY + nonce, "1", STATE_TTL.total_seconds())
        if not first:
            raise StateUsed()
        return next_path

    async def first_use(self, platform: str, code: str) -> None:
        """Mark a platform's one-time code as offered; CodeUsed when it was before."""
        digest = hashlib.sha256(code.encode("utf-8", "replace")).hexdigest()
        with _store_answers():
            first = await self._kv.set_if_absent(
                f"{_CODE_KEY}{platform}:{digest}", "1", CODE_TTL.total_seconds()
            )
        if not first:
            raise CodeUsed()
