"""Backups of the database and restoring one, plus the lock that says the service is running.

- SQLite: `backup_sqlite` copies a live database with SQLite's online backup API (consistent
  while the service writes; blocking, so the service runs it in a thread) into
  `<dir>/<name>-<UTC time>.db`, then keeps only the newest `keep` of those files.
- PostgreSQL: `pg_dump_database` runs the `pg_dump` client into `<dir>/<db>-<UTC time>.sql`
  (only the private schema when the URL names one), with the same retention.
- `restore_sqlite` puts a backup in place of the database after checking it is an oabot SQLite
  database this version knows, keeping the replaced file as `<db>.before-restore`.
- `service_lock` is held (shared) by `oabot serve` for as long as it runs against a SQLite file;
  `restore_sqlite` takes the same lock exclusively, so it refuses while a service runs and a
  service starting during a restore waits for it. The lock is `fcntl.flock` on `<db>.lock`: the
  kernel drops it when the process ends, however it ends, so a crash never leaves it stuck.
  The lock file itself is never deleted (deleting it would split holders across two files).

It must not know about approvals, run an event loop or read settings: paths, URLs, `now` and
`keep` come in as arguments. Failures raise BackupError subclasses whose message is a sentence
for the operator.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from storage.migrate import SchemaStatus, head_revision

SQLITE_MAGIC = b"SQLite format 3\x00"
# Tables every oabot database has; a file without them is not one of ours.
REQUIRED_TABLES = frozenset({"alembic_version", "approval_requests", "approval_tasks", "trail_events"})


class BackupError(Exception):
    """A backup or restore could not be done; the message says why, for the operator."""


class ServiceRunning(BackupError):
    def __init__(self, db_path: Path) -> None:
        super().__init__(
            f"oabot serve is running against {db_path} (it holds {lock_path(db_path)}); stop it first"
        )
        self.db_path = db_path


class NotAnOabotDatabase(BackupError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is not an oabot database this version can restore: {reason}")
        self.path = path
        self.reason = reason


class PgDumpMissing(BackupError):
    def __init__(self) -> None:
        super().__init__(
            "pg_dump is not installed, so PostgreSQL cannot be backed up from here: install the "
            "PostgreSQL client tools (e.g. `apt-get install postgresql-client`, the server's major "
            "version) or use your database provider's backups"
        )


class PgDumpFailed(BackupError):
    def __init__(self, returncode: int, stderr: str) -> None:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        super().__init__(f"pg_dump failed (exit {returncode}): {'; '.join(lines) or 'no message'}")
        self.returncode = returncode
        self.lines = lines


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    removed: list[Path] = field(default_factory=list)  # older backups deleted by retention


@dataclass(frozen=True)
class DatabaseInfo:
    revision: str
    requests: int


@dataclass(frozen=True)
class RestoreResult:
    info: DatabaseInfo
    kept: Path | None  # the replaced database, or None when there was none


# -- locating -------------------------------------------------------------------------------------
def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL and in-memory databases."""
    if not database_url.startswith("sqlite"):
        return None
    database = make_url(database_url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database)


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


# -- the service lock -----------------------------------------------------------------------------
@contextmanager
def service_lock(db_path: Path | None) -> Iterator[None]:
    """Held by `oabot serve` while it runs on the SQLite file `db_path` (None: nothing to lock).

    Shared, so several services on one file do not exclude each other; it waits while a restore
    holds the lock exclusively.
    """
    if db_path is None:
        yield
        return
    with _flock(db_path, fcntl.LOCK_SH):
        yield


@contextmanager
def exclusive_lock(db_path: Path) -> Iterator[None]:
    """Held while the database file is replaced; raises ServiceRunning if a service holds it."""
    with _flock(db_path, fcntl.LOCK_EX | fcntl.LOCK_NB):
        yield


@contextmanager
def _flock(db_path: Path, operation: int) -> Iterator[None]:
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, operation)
        except BlockingIOError as exc:  # only with LOCK_NB: someone holds it
            raise ServiceRunning(db_path) from exc
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- naming and retention -------------------------------------------------------------------------
def _stamp(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _pattern(stem: str, suffix: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(stem)}-(\d{{8}}T\d{{6}}Z)(?:-(\d+))?{re.escape(suffix)}$")


def _new_backup_path(backup_dir: Path, stem: str, suffix: str, now: datetime) -> Path:
    """`<stem>-<UTC stamp><suffix>`, or `-1`, `-2`... after the highest one taken in that second
    (never a number retention freed: the new backup must sort as the newest)."""
    stamp = _stamp(now)
    pattern = _pattern(stem, suffix)
    taken = [
        int(m.group(2) or 0)
        for entry in backup_dir.iterdir()
        if (m := pattern.match(entry.name.removesuffix(".partial"))) and m.group(1) == stamp
    ]
    if not taken:
        return backup_dir / f"{stem}-{stamp}{suffix}"
    return backup_dir / f"{stem}-{stamp}-{max(taken) + 1}{suffix}"


def _partial(path: Path) -> Path:
    # Written under this name and renamed when complete: a half-written backup never looks
    # like a backup, and retention never counts it.
    return path.with_name(path.name + ".partial")


def backups(backup_dir: Path, stem: str, suffix: str) -> list[Path]:
    """The backups of `stem` in `backup_dir`, oldest first (by the time in their names)."""
    if not backup_dir.is_dir():
        return []
    pattern = _pattern(stem, suffix)
    found: list[tuple[str, int, Path]] = []
    for entry in backup_dir.iterdir():
        m = pattern.match(entry.name)
        if m and entry.is_file():
            found.append((m.group(1), int(m.group(2) or 0), entry))
    return [path for _, _, path in sorted(found)]


def prune(backup_dir: Path, stem: str, suffix: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups of `stem`; returns what was deleted."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    old = backups(backup_dir, stem, suffix)[:-keep]
    for path in old:
        path.unlink(missing_ok=True)
    return old


# -- SQLite ---------------------------------------------------------------------------------------
def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy through the online backup API, as a self-contained (non-WAL) file."""
    with (
        closing(sqlite3.connect(str(source), timeout=30)) as src,
        closing(sqlite3.connect(str(target))) as dst,
    ):
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")


def backup_sqlite(db_path: Path, backup_dir: Path, *, now: datetime, keep: int) -> BackupResult:
    """Copy the live database `db_path` into `backup_dir`, then apply the retention (blocking)."""
    if not db_path.is_file():
        raise BackupError(f"there is no database at {db_path} to back up")
    backup_dir.mkdir(parents=True, exist_ok=True)
    target = _new_backup_path(backup_dir, db_path.stem, ".db", now)
    partial = _partial(target)
    try:
        _copy_sqlite(db_path, partial)
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise BackupError(f"backing up {db_path} failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    size = target.stat().st_size
    return BackupResult(path=target, size=size, removed=prune(backup_dir, db_path.stem, ".db", keep))


def check_database(path: Path) -> DatabaseInfo:
    """What a restore needs to know first: an intact SQLite file with oabot's tables, migrated
    to a revision this version has. Raises NotAnOabotDatabase saying what is wrong."""
    if not path.is_file():
        raise NotAnOabotDatabase(path, "no such file")
    with path.open("rb") as f:
        if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise NotAnOabotDatabase(path, "not an SQLite database file")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            check = [row[0] for row in conn.execute("PRAGMA quick_check")]
            if check != ["ok"]:
                raise NotAnOabotDatabase(path, "damaged: " + "; ".join(str(c) for c in check[:3]))
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = sorted(REQUIRED_TABLES - tables)
            if missing:
                raise NotAnOabotDatabase(path, "missing the tables " + ", ".join(missing))
            revisions = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
            requests = int(conn.execute("SELECT count(*) FROM approval_requests").fetchone()[0])
    except sqlite3.Error as exc:
        raise NotAnOabotDatabase(path, f"SQLite cannot read it ({exc})") from exc
    if len(revisions) != 1:
        raise NotAnOabotDatabase(path, "its schema revision is not recorded")
    status = SchemaStatus(current=revisions[0], head=head_revision())
    if not status.is_known:
        raise NotAnOabotDatabase(path, f"it is {status.describe()}")
    return DatabaseInfo(revision=revisions[0], requests=requests)


def restore_sqlite(backup: Path, db_path: Path) -> RestoreResult:
    """Replace the database `db_path` with `backup` (blocking).

    Refuses (ServiceRunning) while a service holds the lock, and (NotAnOabotDatabase) a file
    that is not a usable oabot database. The replaced database is kept as `<db>.before-restore`.
    """
    info = check_database(backup)
    if db_path.exists() and backup.resolve() == db_path.resolve():
        raise BackupError(f"{backup} is the database itself")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    incoming = db_path.with_name(db_path.name + ".restoring")
    kept: Path | None = None
    with exclusive_lock(db_path):
        try:
            incoming.unlink(missing_ok=True)
            _copy_sqlite(backup, incoming)
            if db_path.exists():
                kept = db_path.with_name(db_path.name + ".before-restore")
                kept.unlink(missing_ok=True)
                # Through SQLite, not a file copy: changes still in the WAL file are kept too.
                _copy_sqlite(db_path, kept)
            for leftover in ("-wal", "-shm", "-journal"):
                db_path.with_name(db_path.name + leftover).unlink(missing_ok=True)
            os.replace(incoming, db_path)
        except sqlite3.Error as exc:
            raise BackupError(f"restoring {backup} into {db_path} failed: {exc}") from exc
        finally:
            incoming.unlink(missing_ok=True)
    return RestoreResult(info=info, kept=kept)


# -- PostgreSQL -----------------------------------------------------------------------------------
def pg_dump_executable() -> str | None:
    return shutil.which("pg_dump")


def libpq_env(url: str) -> dict[str, str]:
    """The PG* variables pg_dump reads, from a SQLAlchemy URL (the password stays off argv)."""
    u = make_url(url)
    env: dict[str, str] = {}
    if u.host:
        env["PGHOST"] = u.host
    if u.port:
        env["PGPORT"] = str(u.port)
    if u.username:
        env["PGUSER"] = u.username
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    if u.database:
        env["PGDATABASE"] = u.database
    ssl = u.query.get("sslmode") or u.query.get("ssl")
    if isinstance(ssl, str) and ssl:
        env["PGSSLMODE"] = "require" if ssl.lower() in ("true", "1") else ssl
    return env


def pg_dump_database(
    url: str,
    *,
    schema: str | None,
    backup_dir: Path,
    now: datetime,
    keep: int,
    executable: str | None = None,
) -> BackupResult:
    """Run pg_dump (plain SQL) for the database of `url`, only `schema` when given (blocking)."""
    exe = executable or pg_dump_executable()
    if exe is None:
        raise PgDumpMissing()
    database = make_url(url).database or "postgres"
    stem = f"{database}-{schema}" if schema else database
    backup_dir.mkdir(parents=True, exist_ok=True)
    target = _new_backup_path(backup_dir, stem, ".sql", now)
    partial = _partial(target)
    args = [exe, "--file", str(partial)]
    if schema:
        args += ["--schema", schema]
    env = {**os.environ, **libpq_env(url)}
    try:
        done = subprocess.run(
            args, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise PgDumpFailed(done.returncode, done.stderr)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    size = target.stat().st_size
    return BackupResult(path=target, size=size, removed=prune(backup_dir, stem, ".sql", keep))
