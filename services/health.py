"""The database checks behind /readyz: does the database answer, and is its schema current.

Each returns `(ok, detail)` for the readiness list; a check that cannot reach the database
raises, and the readiness runner reports that as failing. Reads only; changes nothing.
"""

from __future__ import annotations

from sqlalchemy import text

from storage.db import Database, database_unreachable
from storage.migrate import schema_status


async def database_answers(db: Database) -> tuple[bool, str]:
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return True, "sqlite" if db.is_sqlite else "postgresql"


async def schema_is_current(db: Database) -> tuple[bool, str]:
    status = await schema_status(db)
    if status.is_current:
        return True, status.describe()
    return False, f"{status.describe()}: run `oabot migrate`"


def database_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database is down, unreachable or locked (answer 503, retry),
    rather than a bug or bad input."""
    return database_unreachable(exc)
