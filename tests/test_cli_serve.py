"""`oabot serve` as an operator runs it: a real process, real HTTP, real signals."""

from __future__ import annotations

import asyncio
import logging
import os
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.cli import main
from tests.conftest import PG_URL, ROOT, create_pg_schema, drop_pg_schema

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OABOT_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


class Server:
    """`python -m bot serve ...` in a subprocess; stderr (the logs) goes to a file."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.log_path = cwd / "serve.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.output = ""

    def wait_for_line(self, needle: str, timeout: float = READY_TIMEOUT_S) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                for line in self.output.splitlines():
                    if needle in line:
                        return line
                if not selector.select(timeout=0.2):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                self.output += chunk.decode()
        raise AssertionError(f"no {needle!r} line; stdout={self.output!r}; log={self.logs()!r}")

    def stop(self, signum: int) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=STOP_TIMEOUT_S)
        return code, time.monotonic() - started

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


def test_demo_serves_http_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    server = Server(["--demo", "--port", str(port)], tmp_path, clean_env())
    try:
        line = server.wait_for_line("oabot is ready")
        assert line.startswith(f"oabot is ready: open http://127.0.0.1:{port}/console  (API token: ")
        token = line.rsplit("API token: ", 1)[1].rstrip(")")
        base = f"http://127.0.0.1:{port}"

        health = httpx.get(f"{base}/healthz", timeout=5)
        ready = httpx.get(f"{base}/readyz", timeout=5)
        without_token = httpx.get(f"{base}/api/nothing", timeout=5)
        with_token = httpx.get(f"{base}/api/nothing", headers={"Authorization": f"Bearer {token}"}, timeout=5)

        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert ready.status_code == 200, ready.text
        assert without_token.status_code == 401
        assert with_token.status_code == 404
        assert (tmp_path / "var" / "demo.db").is_file()

        code, took = server.stop(signal.SIGINT)

        assert code == 0
        assert took < STOP_TIMEOUT_S
        assert "Traceback" not in server.logs()
    finally:
        server.close()


def test_demo_imports_the_demo_org_only_into_an_empty_database(tmp_path: Path) -> None:
    pytest.importorskip("storage.org_repo")

    def run_once() -> str:
        server = Server(["--demo", "--port", str(free_port())], tmp_path, clean_env())
        try:
            server.wait_for_line("oabot is ready")
            assert server.stop(signal.SIGTERM)[0] == 0
        finally:
            server.close()
        return server.logs()

    first, second = run_once(), run_once()

    assert "imported the organisation 示例集团" in first
    assert "imported the organisation" not in second


def test_port_in_use_names_the_variable_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OABOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/oabot.db")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        assert main(["serve", "--port", str(port)]) == 2

    err = capsys.readouterr().err
    assert f"OABOT_PORT: cannot listen on 127.0.0.1:{port}: " in err
    assert "Traceback" not in err


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """A fresh, empty PostgreSQL schema and the OABOT_DATABASE_URL that selects it."""
    if PG_URL is None:
        pytest.skip("OABOT_TEST_DATABASE_URL is not set")
    schema = asyncio.run(create_pg_schema(PG_URL))
    try:
        yield schema, f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        asyncio.run(drop_pg_schema(PG_URL, schema))


def test_serve_refuses_an_outdated_postgres_schema(
    pg_schema: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, url = pg_schema
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OABOT_DATABASE_URL", url)
    monkeypatch.setenv("OABOT_PORT", str(free_port()))

    assert main(["serve"]) == 2

    out, err = capsys.readouterr()
    assert "oabot is ready" not in out
    assert "the database schema is not migrated (empty)" in err
    assert "Run `oabot migrate` first (or set OABOT_AUTO_MIGRATE=1 to migrate at start)." in err
    assert "Traceback" not in err


def test_serve_migrates_postgres_itself_when_auto_migrate_is_on(
    pg_schema: tuple[str, str], tmp_path: Path
) -> None:
    _, url = pg_schema
    port = free_port()
    server = Server(
        [], tmp_path, clean_env(OABOT_DATABASE_URL=url, OABOT_AUTO_MIGRATE="1", OABOT_PORT=str(port))
    )
    try:
        server.wait_for_line("oabot is ready")

        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)

        assert ready.status_code == 200, ready.text
        assert "database migrated from (empty) to " in server.logs()
        assert server.stop(signal.SIGTERM)[0] == 0
    finally:
        server.close()


def test_demo_database_from_another_version_is_refused_with_a_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    with sqlite3.connect(tmp_path / "var" / "demo.db") as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('0123456789ab')")
    conn.close()

    assert main(["serve", "--demo", "--port", str(free_port())]) == 2

    err = capsys.readouterr().err
    assert (
        "cannot start: the database is at revision 0123456789ab, which this version of oabot does not know"
        in err
    )
    assert "delete ./var/demo.db to start over" in err
