"""Alembic owns the schema: the migrations build exactly the models' tables, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.cli import main
from storage import migrate
from storage.db import Database
from storage.models import metadata


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Commands configure the root logger; put it back so later tests log as before."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_fresh_database_is_outdated_until_upgraded(empty_db: Database) -> None:
    before = await migrate.schema_status(empty_db)

    assert before.current is None
    assert not before.is_current

    assert await migrate.upgrade(empty_db) == (None, migrate.head_revision())

    after = await migrate.schema_status(empty_db)
    assert after.current == migrate.head_revision()
    assert after.is_current


async def test_upgraded_database_matches_the_models_exactly(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)

    def differences(connection: Connection) -> list[object]:
        options = migrate.context_options(connection.dialect.name, empty_db.schema)
        context = MigrationContext.configure(connection, opts=options)
        return list(compare_metadata(context, metadata))

    async with empty_db.engine.connect() as conn:
        diffs = await conn.run_sync(differences)

    assert diffs == []


async def test_upgrading_twice_changes_nothing(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)

    head = migrate.head_revision()
    assert await migrate.upgrade(empty_db) == (head, head)


async def test_every_table_of_the_models_exists_after_upgrade(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)

    def table_names(connection: Connection) -> set[str]:
        from sqlalchemy import inspect

        return set(inspect(connection).get_table_names())

    async with empty_db.engine.connect() as conn:
        names = await conn.run_sync(table_names)

    assert set(metadata.tables) <= names
    assert "alembic_version" in names


async def test_version_table_lives_in_the_private_postgres_schema(empty_db: Database) -> None:
    if empty_db.is_sqlite:
        pytest.skip("schemas are a PostgreSQL feature")
    await migrate.upgrade(empty_db)

    async with empty_db.engine.connect() as conn:
        schemas = (
            await conn.execute(
                text(
                    "SELECT table_schema FROM information_schema.tables WHERE table_name = 'alembic_version'"
                )
            )
        ).scalars()
        found = set(schemas)

    assert empty_db.schema in found


def test_models_and_migration_scripts_agree() -> None:
    """Fails when a table changed without `python -m storage.migrate revision -m "..."`."""
    assert migrate.main(["check"]) == 0


def test_migrate_command_prints_from_and_to(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("OABOT_DATABASE_URL", url)
    head = migrate.head_revision()

    assert main(["migrate", "--check"]) == 1
    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0
    assert main(["migrate", "--check"]) == 0

    assert capsys.readouterr().out.splitlines() == [
        f"{url}: schema not migrated (empty), latest is {head}",
        f"{url}: migrated from (empty) to {head}",
        f"{url}: already at the latest revision {head}",
        f"{url}: schema at the latest revision {head}",
    ]
