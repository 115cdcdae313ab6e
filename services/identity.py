"""Who is this person: browser sessions after a sign-in, kept in the key-value store.

A session is created when someone signs in (WeCom OAuth, DingTalk 免登, a signed personal link,
the demo console's person picker) and lives server-side, so signing out and deactivating a person
take effect at once, on every replica. The browser holds only a random session id in a cookie;
the store keys sessions by a hash of that id, so a dump of the store does not yield usable cookies.

Each session carries its own CSRF token, which every state-changing form posts back.
Nothing here knows HTTP: `bot.web.identity` reads and writes the cookie.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from org.errors import Category, DomainError
from org.model import Org, User
from services.directory import Directory
from storage.kv import KeyValueStore, KVUnavailable

SESSION_TTL = timedelta(hours=12)
_KEY = "session:"
_ENDED = "sessions-ended:"  # user id -> when all their sessions were ended


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    id: str  # the cookie's value; never stored or logged as is
    user_id: str
    via: str  # how the person signed in: wecom, dingtalk, link, console
    csrf: str
    created_at: datetime
    expires_at: datetime

    @property
    def log_id(self) -> str:
        """What a log line may carry instead of the id: a short hash."""
        return _hash(self.id)[:12]


class SessionsUnavailable(DomainError):
    """The key-value store that keeps sessions does not answer: nobody can sign in just now."""

    code = "sessions_unavailable"
    category = Category.UNAVAILABLE


class Sessions:
    def __init__(
        self,
        kv: KeyValueStore,
        directory: Directory,
        now: Callable[[], datetime],
        *,
        ttl: timedelta = SESSION_TTL,
    ) -> None:
        self._kv = kv
        self._directory = directory
        self._now = now
        self._ttl = ttl

    async def start(self, user_id: str, *, via: str) -> Session:
        """A new session for an active person (SessionsUnavailable when the store is down)."""
        now = self._now()
        session = Session(
            id=secrets.token_urlsafe(32),
            user_id=user_id,
            via=via,
            csrf=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + self._ttl,
        )
        data = {k: v for k, v in asdict(session).items() if k != "id"}
        data["created_at"] = now.isoformat()
        data["expires_at"] = session.expires_at.isoformat()
        try:
            await self._kv.set(_KEY + _hash(session.id), json.dumps(data), self._ttl.total_seconds())
        except KVUnavailable as exc:
            raise SessionsUnavailable() from exc
        return session

    async def get(self, session_id: str | None) -> tuple[Session, User] | None:
        """The live session and its person; None when unknown, expired, or the person left."""
        if not session_id or len(session_id) > 128:
            return None
        try:
            raw = await self._kv.get(_KEY + _hash(session_id))
        except KVUnavailable:
            return None
        if raw is None:
            return None
        data = json.loads(raw)
        session = Session(
            id=session_id,
            user_id=data["user_id"],
            via=data["via"],
            csrf=data["csrf"],
            created_at=datetime.fromisoformat(data["created_at"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
        )
        if session.expires_at <= self._now():
            await self.end(session_id)
            return None
        if await self._ended_since(session):
            await self.end(session_id)
            return None
        org: Org = await self._directory.org()
        user = org.user(session.user_id)
        if user is None or not user.active:
            await self.end(session_id)
            return None
        return session, user

    async def end_all_of(self, user_ids: list[str]) -> None:
        """End every session of these people at once, on every replica (they left): sessions
        started before now are refused from here on; a later sign-in (after reactivation) works."""
        stamp = self._now().isoformat()
        for user_id in user_ids:
            try:
                await self._kv.set(_ENDED + user_id, stamp, self._ttl.total_seconds())
            except KVUnavailable:
                pass  # the directory check still refuses them once the org snapshot is fresh

    async def _ended_since(self, session: Session) -> bool:
        try:
            ended = await self._kv.get(_ENDED + session.user_id)
        except KVUnavailable:
            return False
        return ended is not None and session.created_at <= datetime.fromisoformat(ended)

    async def end(self, session_id: str) -> None:
        try:
            await self._kv.delete(_KEY + _hash(session_id))
        except KVUnavailable:
            pass
