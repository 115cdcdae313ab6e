"""Alembic, configured in code: upgrade a database, tell whether its schema is current, and
generate new revisions from the SQLModel tables.

There is no alembic.ini: the migration scripts ship inside the package (storage/migrations), so an
installed oabot can migrate its database from anywhere. Alembic owns the schema; nothing outside
tests calls `create_all`.

Generating a revision after adding or changing tables (run from the repository root):

    python -m storage.migrate revision -m "add approval tables"
    python -m storage.migrate check        # exit 1 if models and migrations differ

`revision` autogenerates against a throw-away SQLite database brought to the current head, so
it needs no server; the scripts it writes run on SQLite and PostgreSQL alike (batch mode).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.util
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel.sql.sqltypes import AutoString

from storage.base import UTCDateTime
from storage.db import Database
from storage.models import metadata

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"
# Serialises concurrent `upgrade` runs on PostgreSQL (two replicas starting at once).
_PG_MIGRATION_LOCK_ID = 7_276_123_001


def alembic_config(*, schema: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at the packaged scripts; env.py reads the attributes."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["schema"] = schema
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str | None:
    """The newest revision the code ships (read once: the scripts do not change while running)."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have several heads {heads}: merge them with a new revision")
    return heads[0] if heads else None


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    # Alembic skips its version table only when it lives in the default schema; it lives in
    # the private schema when one is set, so skip it by name.
    return not (type_ == "table" and name == VERSION_TABLE)


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render project column types as plain SQLAlchemy ones so scripts import nothing of ours."""
    if type_ == "type":
        if isinstance(obj, UTCDateTime):
            return "sa.DateTime(timezone=True)"
        if isinstance(obj, AutoString):
            return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def context_options(dialect_name: str, schema: str | None) -> dict[str, Any]:
    """The MigrationContext options shared by env.py, the status check and the tests."""
    return {
        "version_table": VERSION_TABLE,
        "version_table_schema": schema if dialect_name == "postgresql" else None,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
        "include_name": _include_name,
        "render_item": _render_item,
    }


def current_revision(connection: Connection, schema: str | None = None) -> str | None:
    """The revision stamped in the database, None when it was never migrated (sync; use run_sync)."""
    context = MigrationContext.configure(connection, opts=context_options(connection.dialect.name, schema))
    return context.get_current_revision()


def model_differences(connection: Connection, schema: str | None = None) -> list[Any]:
    """What autogenerate would change to make the database match the models (sync; use run_sync)."""
    context = MigrationContext.configure(connection, opts=context_options(connection.dialect.name, schema))
    return list(compare_metadata(context, metadata))


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str | None

    @property
    def is_current(self) -> bool:
        return self.current == self.head

    @property
    def is_known(self) -> bool:
        """False when the database was migrated by code this version does not have."""
        if self.current is None:
            return True
        try:
            return ScriptDirectory.from_config(alembic_config()).get_revision(self.current) is not None
        except (CommandError, RevisionError):
            return False

    def describe(self) -> str:
        if self.is_current:
            return f"at the latest revision {self.head}"
        if self.current is None:
            return f"not migrated (empty), latest is {self.head}"
        if not self.is_known:
            return f"at revision {self.current}, which this version of oabot does not know (latest is {self.head})"
        return f"at revision {self.current}, latest is {self.head}"


async def schema_status(db: Database) -> SchemaStatus:
    async with db.engine.connect() as conn:
        current = await conn.run_sync(current_revision, db.schema)
    return SchemaStatus(current=current, head=head_revision())


async def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the database to `revision` in one transaction; returns (from, to) revisions."""
    async with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_MIGRATION_LOCK_ID})
        before = await conn.run_sync(current_revision, db.schema)
        await conn.run_sync(_upgrade_sync, db.schema, revision)
        after = await conn.run_sync(current_revision, db.schema)
    return before, after


def _upgrade_sync(connection: Connection, schema: str | None, revision: str) -> None:
    command.upgrade(alembic_config(schema=schema, connection=connection), revision)


async def differences(db: Database) -> list[Any]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(model_differences, db.schema)


# -- generating revisions -----------------------------------------------------------------------


async def generate_revision(message: str, *, squash: bool = False) -> Path | None:
    """Autogenerate a revision from the models; None when they already match the migrations."""
    versions = MIGRATIONS_DIR / "versions"
    if squash:
        for old in versions.glob("*.py"):
            old.unlink()
        head_revision.cache_clear()
    with tempfile.TemporaryDirectory(prefix="oabot-autogen-") as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/autogen.db")
        try:
            await upgrade(db)
            if not await differences(db):
                return None
            async with db.engine.begin() as conn:
                script = await conn.run_sync(_revision_sync, message)
        finally:
            await db.dispose()
    head_revision.cache_clear()
    return Path(script.path) if script is not None else None


def _revision_sync(connection: Connection, message: str) -> Any:
    config = alembic_config(connection=connection)
    # Date first so the files list in order; ruff so the scripts pass `ruff format --check`.
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    hooks = "post_write_hooks"
    if importlib.util.find_spec("ruff") is None:
        return command.revision(config, message=message, autogenerate=True)
    config.set_section_option(hooks, "hooks", "ruff_format")
    config.set_section_option(hooks, "ruff_format.type", "module")
    config.set_section_option(hooks, "ruff_format.module", "ruff")
    config.set_section_option(hooks, "ruff_format.options", "format REVISION_SCRIPT_FILENAME")
    return command.revision(config, message=message, autogenerate=True)


async def _check() -> list[Any]:
    with tempfile.TemporaryDirectory(prefix="oabot-autogen-") as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/check.db")
        try:
            await upgrade(db)
            return await differences(db)
        finally:
            await db.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m storage.migrate", description="Maintain oabot's migrations."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    rev = sub.add_parser("revision", help="generate a revision for what changed in the models")
    rev.add_argument("-m", "--message", required=True, help="what the revision does")
    rev.add_argument(
        "--squash",
        action="store_true",
        help="delete every existing revision first and generate one initial revision "
        "(only before the first release: existing databases lose their history)",
    )
    sub.add_parser("check", help="exit 1 when the models differ from the migrations")
    args = parser.parse_args(argv)
    if args.action == "check":
        diffs = asyncio.run(_check())
        for diff in diffs:
            print(f"  {diff}")
        print("models and migrations differ" if diffs else "models and migrations match")
        return 1 if diffs else 0
    path = asyncio.run(generate_revision(args.message, squash=args.squash))
    if path is None:
        print("models and migrations already match: nothing to generate")
    else:
        print(f"generated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
