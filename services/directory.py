"""The organisation as the services see it: loaded from the database, kept for a few seconds.

Every service that needs the org chart shares one `Directory`, built first at wiring time, so no
service has to reach into another for it. A change made by `oabot org import` (another process)
is seen within `MAX_AGE`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from org.model import Org
from storage.db import Database
from storage.org_repo import load_org

MAX_AGE = timedelta(seconds=10)

OrgLoader = Callable[[AsyncSession], Awaitable[Org]]


class Directory:
    def __init__(self, db: Database, now: Callable[[], datetime], *, load: OrgLoader = load_org) -> None:
        self._db = db
        self._now = now
        self._load = load
        self._org: Org | None = None
        self._loaded_at: datetime | None = None

    async def org(self, *, fresh: bool = False) -> Org:
        """The organisation; raises OrgNotImported before the first import."""
        now = self._now()
        if fresh or self._org is None or self._loaded_at is None or abs(now - self._loaded_at) > MAX_AGE:
            async with self._db.session() as s:
                self._org = await self._load(s)
            self._loaded_at = now
        return self._org
