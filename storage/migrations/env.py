"""Alembic's environment: runs the migration scripts on a connection it is handed.

`storage.migrate` hands over a live connection (an async engine's connection, through
`run_sync`) and the PostgreSQL schema in `config.attributes`. Without one, it opens its own async
engine from the `sqlalchemy.url` option. Offline mode (`--sql`) renders the SQL instead.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from storage.db import Database
from storage.migrate import context_options
from storage.models import metadata

config = context.config
schema: str | None = config.attributes.get("schema")


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        **context_options(connection.dialect.name, schema),
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_on_own_engine(url: str) -> None:
    db = Database(url, schema=schema)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(run_on)
    finally:
        await db.dispose()


def run_offline(url: str) -> None:
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **context_options(dialect, schema),
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if context.is_offline_mode():
    run_offline(config.get_main_option("sqlalchemy.url") or "sqlite://")
elif connection is not None:
    run_on(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("storage.migrate passes a connection; without one set sqlalchemy.url")
    asyncio.run(run_on_own_engine(url))
