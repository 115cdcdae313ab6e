"""Backups and restores: `oabot backup` on SQLite (online backup API, retention) and PostgreSQL
(pg_dump), `oabot restore` putting a backup back with every request, and refusing while the
service runs or when the file is not an oabot database; the scheduled SQLite backups."""

from __future__ import annotations

import asyncio
import os
import re
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from approvals.template_loader import load_templates
from bot.cli import main
from bot.settings import load_settings
from bot.trail_key import load_trail_keys
from reports.backup import backups, check_database, service_lock
from services.approvals import Workflow, WorkflowDeps
from services.directory import Directory
from services.links import PersonalLinks
from storage import approval_store
from storage.db import Database
from storage.org_repo import get_org_meta
from tests.conftest import (
    PG_URL,
    ROOT,
    create_pg_schema,
    create_tables,
    drop_pg_schema,
    import_demo_org,
    settings_for,
)
from tests.helpers import T0

FORM = {
    "seal": "公章",
    "reason": "合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["a.pdf"],
    "copies": 1,
    "take_out": False,
}
BACKUP_NAME = r"oabot-\d{8}T\d{6}Z(-\d+)?\.db"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: OABOT_DATABASE_URL at tmp/oabot.db, backups in tmp/backups, keep 2."""
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OABOT_DATABASE_URL", sqlite_url(tmp_path / "oabot.db"))
    monkeypatch.setenv("OABOT_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("OABOT_BACKUP_KEEP", "2")
    return tmp_path


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def submit(url: str, count: int) -> list[str]:
    """Submit `count` seal requests (the org imported first if need be); their ids."""

    async def go() -> list[str]:
        db = Database(url)
        try:
            async with db.session() as s:
                has_org = await get_org_meta(s) is not None
            if not has_org:
                await import_demo_org(db)
            wf = Workflow(
                WorkflowDeps(
                    db=db,
                    templates=load_templates([]),
                    tz=ZoneInfo("Asia/Shanghai"),
                    now=lambda: T0,
                    links=PersonalLinks(
                        db, secret="test-link-secret-0123456789", public_url="http://x", now=lambda: T0
                    ),
                    directory=Directory(db, lambda: T0),
                    trail_keys=load_trail_keys(load_settings()),  # the key `oabot audit verify` reads
                )
            )
            return [
                (await wf.submit(template_key="seal_use", initiator="u_wu", form=FORM)).id
                for _ in range(count)
            ]
        finally:
            await db.dispose()

    return asyncio.run(go())


def request_ids(url: str) -> list[str]:
    async def go() -> list[str]:
        db = Database(url)
        try:
            async with db.session() as s:
                return await approval_store.all_request_ids(s)
        finally:
            await db.dispose()

    return asyncio.run(go())


def migrated_with_requests(env: Path, count: int = 3) -> list[str]:
    assert main(["migrate"]) == 0
    return submit(sqlite_url(env / "oabot.db"), count)


def written(out: str) -> Path:
    line = next(line for line in out.splitlines() if line.startswith("backup written: "))
    return Path(line.removeprefix("backup written: ").rsplit(" (", 1)[0])


# -- SQLite ---------------------------------------------------------------------------------------
def test_backup_writes_a_consistent_copy_with_every_request(env: Path, capsys) -> None:
    ids = migrated_with_requests(env)
    capsys.readouterr()
    assert main(["backup"]) == 0
    out = capsys.readouterr().out
    path = written(out)
    assert path.parent == env / "backups"
    assert re.fullmatch(BACKUP_NAME, path.name)
    assert out.strip().endswith(f"({path.stat().st_size} bytes)")
    assert check_database(path).requests == len(ids)
    assert [p.name for p in (env / "backups").iterdir()] == [path.name], "no partial or WAL files left"


def test_retention_deletes_the_oldest_beyond_keep(env: Path, capsys) -> None:
    migrated_with_requests(env, 1)
    made = []
    for _ in range(3):
        assert main(["backup"]) == 0
        made.append(written(capsys.readouterr().out))
    remaining = backups(env / "backups", "oabot", ".db")
    assert remaining == made[1:]
    assert not made[0].exists()
    assert main(["backup"]) == 0, "a fourth backup in the same second sorts after the others"
    out, err = capsys.readouterr()
    assert backups(env / "backups", "oabot", ".db") == [made[2], written(out)]
    assert f"removed old backup {made[1]}" in err


def test_restore_into_a_fresh_path_finds_every_request(
    env: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = migrated_with_requests(env)
    assert main(["backup"]) == 0
    backup = written(capsys.readouterr().out)
    fresh = env / "elsewhere" / "restored.db"
    monkeypatch.setenv("OABOT_DATABASE_URL", sqlite_url(fresh))

    assert main(["restore", str(backup)]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"restored {backup} into {fresh}: 3 requests, schema revision ")
    assert "before-restore" not in out, "there was nothing to keep"
    assert sorted(request_ids(sqlite_url(fresh))) == sorted(ids)
    assert main(["audit", "verify"]) == 0, "the restored trail still verifies"


def test_restore_keeps_the_replaced_database_with_its_latest_changes(env: Path, capsys) -> None:
    ids = migrated_with_requests(env, 2)
    assert main(["backup"]) == 0
    backup = written(capsys.readouterr().out)
    later = submit(sqlite_url(env / "oabot.db"), 1)  # after the backup; still in the WAL file

    assert main(["restore", str(backup)]) == 0

    kept = env / "oabot.db.before-restore"
    assert f"the previous database is kept as {kept}" in capsys.readouterr().out
    assert sorted(request_ids(sqlite_url(env / "oabot.db"))) == sorted(ids)
    assert sorted(request_ids(sqlite_url(kept))) == sorted(ids + later)


def test_restore_refuses_while_the_service_lock_is_held(env: Path, capsys) -> None:
    ids = migrated_with_requests(env, 2)
    assert main(["backup"]) == 0
    backup = written(capsys.readouterr().out)
    submit(sqlite_url(env / "oabot.db"), 1)
    db_path = env / "oabot.db"
    capsys.readouterr()

    with service_lock(db_path):
        assert main(["restore", str(backup)]) == 1

    err = capsys.readouterr().err
    assert (
        err
        == f"refusing to restore: oabot serve is running against {db_path} (it holds {db_path}.lock); stop it first\n"
    )
    assert len(request_ids(sqlite_url(db_path))) == len(ids) + 1, "nothing was replaced"
    assert not (env / "oabot.db.before-restore").exists()


def test_restore_refuses_files_that_are_not_oabot_databases(env: Path, capsys) -> None:
    migrated_with_requests(env, 1)
    text = env / "notes.db"
    text.write_text("not a database")
    empty = env / "empty.db"
    sqlite3.connect(empty).close()
    with sqlite3.connect(empty) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert main(["backup"]) == 0
    future = written(capsys.readouterr().out)
    with sqlite3.connect(future) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")

    for path, reason in [
        (text, "not an SQLite database file"),
        (empty, "missing the tables alembic_version, approval_requests, approval_tasks, trail_events"),
        (future, "it is at revision ffffffffffff, which this version of oabot does not know"),
        (env / "missing.db", "no such file"),
    ]:
        assert main(["restore", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(
            f"not restored: {path} is not an oabot database this version can restore: {reason}"
        ), err
    assert len(request_ids(sqlite_url(env / "oabot.db"))) == 1
    assert not (env / "oabot.db.before-restore").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_ready(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"oabot is ready" not in seen:
            assert time.monotonic() < deadline, f"serve never got ready: {seen!r}"
            if selector.select(timeout=0.2):
                chunk = os.read(proc.stdout.fileno(), 4096)
                assert chunk, f"serve exited: {seen!r}"
                seen += chunk


def test_a_running_oabot_serve_blocks_restore_until_it_stops(env: Path, capsys) -> None:
    ids = migrated_with_requests(env, 2)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("OABOT_")}
    child_env.update(
        PYTHONPATH=str(ROOT), OABOT_DATABASE_URL=sqlite_url(env / "oabot.db"), OABOT_PORT=str(free_port())
    )
    with (env / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            cwd=env,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            wait_for_ready(proc)
            assert main(["backup"]) == 0, "a live database can be backed up"
            backup = written(capsys.readouterr().out)
            assert main(["restore", str(backup)]) == 1
            assert "oabot serve is running against" in capsys.readouterr().err
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
    assert main(["restore", str(backup)]) == 0
    assert sorted(request_ids(sqlite_url(env / "oabot.db"))) == sorted(ids)


async def test_scheduled_backups_are_on_sqlite_only(
    db: Database, tmp_path: Path, aiohttp_client, clock
) -> None:
    from datetime import UTC, datetime, time

    from bot.app import create_app
    from bot.keys import TIMERS
    from storage.timer_models import TimerRow

    times = (time(7, 0), time(12, 0), time(19, 0))
    settings = settings_for(db, backup_dir=str(tmp_path / "auto"), backup_keep=3, backup_times=times)
    app = create_app(settings, clock=clock)  # Monday 10:00 in Shanghai
    await aiohttp_client(app)

    async def backup_timers() -> list[tuple[datetime, str]]:
        async with db.session() as s:
            rows = (await s.execute(select(TimerRow).where(TimerRow.kind == "backup"))).scalars().all()  # type: ignore[arg-type]
        return sorted((r.due_at.astimezone(UTC), r.status) for r in rows)

    if not db.is_sqlite:
        assert await backup_timers() == []
        return
    assert await backup_timers() == [(datetime(2026, 11, 23, 4, 0, tzinfo=UTC), "pending")]  # 12:00
    clock.set(datetime(2026, 11, 23, 11, 30, tzinfo=UTC))  # 19:30: 12:00 and 19:00 were missed
    stats = await app[TIMERS].scan_once()
    assert stats.fired_by_kind["backup"] == 1, "once, not once per missed time"
    assert (await app[TIMERS].scan_once()).fired_by_kind["backup"] == 0
    assert await backup_timers() == [
        (datetime(2026, 11, 23, 4, 0, tzinfo=UTC), "done"),
        (datetime(2026, 11, 23, 23, 0, tzinfo=UTC), "pending"),  # Tuesday 07:00
    ]
    (result,) = backups(tmp_path / "auto", "test", ".db")
    assert result.name.startswith("test-20261123T113000Z")
    assert check_database_tables(result)


def check_database_tables(path: Path) -> bool:
    with sqlite3.connect(path) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {"approval_requests", "approval_tasks", "trail_events"} <= names


# -- PostgreSQL -----------------------------------------------------------------------------------
@pytest.mark.skipif(PG_URL is None, reason="OABOT_TEST_DATABASE_URL is not set")
def test_postgres_backup_dumps_the_private_schema_with_pg_dump(
    env: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    assert PG_URL is not None
    schema = asyncio.run(create_pg_schema(PG_URL))
    try:

        async def prepare() -> None:
            db = Database(PG_URL, schema=schema)  # type: ignore[arg-type]
            try:
                await create_tables(db)
            finally:
                await db.dispose()

        asyncio.run(prepare())
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        submit_ids = asyncio.run(_submit_pg(PG_URL, schema))
        monkeypatch.setenv("OABOT_DATABASE_URL", url)

        code = main(["backup"])

        out, err = capsys.readouterr()
        assert code == 0, err
        path = written(out)
        assert path.suffix == ".sql" and path.name.startswith(f"test-{schema}-")
        dump = path.read_text()
        assert f"CREATE TABLE {schema}.approval_requests" in dump
        assert all(rid in dump for rid in submit_ids)
    finally:
        asyncio.run(drop_pg_schema(PG_URL, schema))


async def _submit_pg(url: str, schema: str) -> list[str]:
    db = Database(url, schema=schema)
    try:
        await import_demo_org(db)
        wf = Workflow(
            WorkflowDeps(
                db=db,
                templates=load_templates([]),
                tz=ZoneInfo("Asia/Shanghai"),
                now=lambda: T0,
                links=PersonalLinks(
                    db, secret="test-link-secret-0123456789", public_url="http://x", now=lambda: T0
                ),
                directory=Directory(db, lambda: T0),
            )
        )
        return [(await wf.submit(template_key="seal_use", initiator="u_wu", form=FORM)).id for _ in range(2)]
    finally:
        await db.dispose()


def test_postgres_backup_without_pg_dump_says_what_to_install(
    env: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reports.backup.shutil.which", lambda name: None)
    monkeypatch.setenv("OABOT_DATABASE_URL", "postgresql+asyncpg://oabot@127.0.0.1:5432/oabot")
    assert main(["backup"]) == 2
    assert capsys.readouterr().err.startswith(
        "pg_dump is not installed, so PostgreSQL cannot be backed up from here"
    )


def test_a_failing_pg_dump_prints_its_error_and_leaves_no_file(
    env: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    monkeypatch.setenv(
        "OABOT_DATABASE_URL", f"postgresql+asyncpg://oabot:secret@127.0.0.1:{free_port()}/oabot"
    )
    assert main(["backup"]) == 2
    err = capsys.readouterr().err
    assert err.startswith('pg_dump failed (exit 1):\n  pg_dump: error: connection to server at "127.0.0.1"')
    assert "secret" not in err
    assert list((env / "backups").iterdir()) == []


def test_restore_explains_how_to_restore_postgres(env: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OABOT_DATABASE_URL", "postgresql+asyncpg://oabot@127.0.0.1:5432/oabot")
    assert main(["restore", "dump.sql"]) == 2
    assert "restore a PostgreSQL dump with psql" in capsys.readouterr().err


def test_backup_and_office_settings_name_the_variable_when_wrong() -> None:
    from datetime import time as clock_time

    from bot.settings import ConfigError, load_settings

    good = load_settings(
        {"OABOT_BACKUP_TIMES": "19:00, 7:30", "OABOT_BACKUP_KEEP": "5", "OABOT_OFFICE_ROLE": "office"},
        dotenv_path=None,
    )
    assert (good.backup_times, good.backup_keep, good.office_role) == (
        (clock_time(7, 30), clock_time(19, 0)),
        5,
        "office",
    )
    assert load_settings({"OABOT_BACKUP_TIMES": ""}, dotenv_path=None).backup_times == ()
    with pytest.raises(ConfigError) as bad:
        load_settings(
            {
                "OABOT_BACKUP_TIMES": "07:00,25:00",
                "OABOT_BACKUP_KEEP": "0",
                "OABOT_OFFICE_ROLE": "hr manager",
                "OABOT_BACKUP_DIR": "",
            },
            dotenv_path=None,
        )
    assert bad.value.problems == [
        "OABOT_OFFICE_ROLE='hr manager': expected one role name from the org file (up to 64 characters), e.g. hr_manager",
        "OABOT_BACKUP_TIMES='07:00,25:00': expected comma-separated HH:MM times, e.g. 07:00,12:00,19:00, "
        "or empty for none ('25:00' is not a time HH:MM)",
        "OABOT_BACKUP_DIR='': expected a directory for backups, e.g. ./var/backups",
        "OABOT_BACKUP_KEEP='0': expected how many backups to keep, a whole number from 1 to 10000",
    ]
