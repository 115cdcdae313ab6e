"""Personal links for cards and messages: `PersonalLinks.url(user, path)` gives an absolute URL
(`<public url>/m/l/<token>`) that signs its holder in as `user` and opens `path`.

The secret is the same as the check-in links' (`OABOT_LINK_SECRET`, else one generated and kept
in the database), with its own signing domain (`org.signed_links`). Tokens are never logged in
full: log `org.signed_links.token_digest(token)`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from org import signed_links
from org.signed_links import LinkTarget
from storage.checkin_store import stored_link_secret
from storage.db import Database

LINK_PATH = "/m/l/"
DEFAULT_TTL = timedelta(days=7)


class PersonalLinks:
    def __init__(
        self, db: Database, *, secret: str | None, public_url: str, now: Callable[[], datetime]
    ) -> None:
        self._db = db
        self._configured = secret.encode() if secret else None
        self._stored: bytes | None = None
        self._public_url = public_url.rstrip("/")
        self._now = now

    async def _secret(self, session: AsyncSession | None = None) -> bytes:
        if self._configured is not None:
            return self._configured
        if self._stored is None:
            if session is not None:
                self._stored = await stored_link_secret(session, now=self._now())
            else:
                async with self._db.transaction() as s:
                    self._stored = await stored_link_secret(s, now=self._now())
        return self._stored

    async def token(
        self, user_id: str, path: str, *, ttl: timedelta = DEFAULT_TTL, session: AsyncSession | None = None
    ) -> str:
        target = LinkTarget(user=user_id, path=path, expires_at=self._now() + ttl)
        return signed_links.sign(await self._secret(session), target)

    async def url(
        self, user_id: str, path: str, *, ttl: timedelta = DEFAULT_TTL, session: AsyncSession | None = None
    ) -> str:
        """An absolute link that signs `user_id` in and opens `path` (e.g. `/m/r/<request id>`).

        Inside a transaction pass its `session`: the first link may have to read (or make) the
        stored secret, and on SQLite a second transaction would wait for the first one's lock."""
        return f"{self._public_url}{LINK_PATH}{await self.token(user_id, path, ttl=ttl, session=session)}"

    async def read(self, token: str) -> LinkTarget:
        """Raises PersonalLinkInvalid (tampered) or PersonalLinkExpired."""
        return signed_links.read(await self._secret(), token, now=self._now())
