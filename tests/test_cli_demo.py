"""The commands a newcomer types after `make demo`, run in a fresh directory: every command that
opens the database says it is not initialised (exit 2) instead of a raw SQL error, without
creating the file; `--demo` (before or after the command name) points every command at the
demo's database, the one `oabot serve --demo` fills."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.serve import prepare_database
from bot.settings import load_settings
from services.links import PersonalLinks
from storage.db import Database

COMMANDS = (
    ["org", "show"],
    ["org", "import", "org.yaml"],
    ["stats", "--from", "2026-11-01", "--to", "2026-11-30"],
    ["audit", "verify"],
    ["backup"],
    ["calendar", "list"],
    ["calendar", "add-holiday", "2026-12-31"],
)


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no OABOT_* variables: the defaults a newcomer gets."""
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OABOT_BACKUP_DIR", str(tmp_path / "backups"))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def serve_demo_once(capsys: pytest.CaptureFixture[str]) -> None:
    """What `make demo` does before it listens: migrate ./var/demo.db and import the demo org.
    What it logs is set aside (an earlier test's log handler may point at a closed stream)."""
    Path("var").mkdir(exist_ok=True)
    asyncio.run(prepare_database(load_settings(demo=True, dotenv_path=None)))
    capsys.readouterr()


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_every_command_on_a_fresh_directory_says_run_migrate_with_status_2(
    fresh: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, argv)

    assert (code, out) == (2, "")
    assert "database not initialised: run `oabot migrate`" in err
    assert "Traceback" not in err and "no such table" not in err
    assert not (fresh / "var" / "oabot.db").exists(), "checking does not create the database"
    assert not (fresh / "backups").exists() or not list((fresh / "backups").iterdir())


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_demo_commands_before_the_demo_ran_say_run_make_demo(
    fresh: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, _, err = run(capsys, [*argv, "--demo"])

    assert code == 2
    assert "demo database not initialised: run `make demo` (or `oabot serve --demo`) first" in err


def test_backup_refuses_an_empty_database_file(fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (fresh / "var").mkdir()
    (fresh / "var" / "oabot.db").touch()

    code, out, err = run(capsys, ["backup"])

    assert (code, out) == (2, "")
    assert err.startswith("nothing to back up: database not initialised: run `oabot migrate`")


def test_after_the_demo_every_command_with_demo_reads_the_demos_data(
    fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_demo_once(capsys)

    code, out, _ = run(capsys, ["org", "show", "--demo"])
    assert code == 0
    assert "张伟 (u_zhang)" in out
    assert run(capsys, ["--demo", "org", "show"])[1] == out, "--demo works before the command too"
    assert run(capsys, ["audit", "verify", "--demo"])[0] == 0
    assert run(capsys, ["stats", "--demo", "--from", "2026-11-01", "--to", "2026-11-30"])[0] == 0
    assert run(capsys, ["calendar", "list", "--demo"])[0] == 0
    code, out, _ = run(capsys, ["backup", "--demo"])
    assert code == 0 and out.startswith("backup written: ")


def test_without_demo_the_commands_point_at_the_demos_database(
    fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_demo_once(capsys)

    code, _, err = run(capsys, ["org", "show"])

    assert code == 2
    assert err.splitlines() == [
        "database not initialised: run `oabot migrate` (OABOT_DATABASE_URL is sqlite+aiosqlite:///./var/oabot.db)",
        "the demo keeps its data in var/demo.db: add --demo to use that one",
    ]


def test_link_prints_a_personal_link_that_signs_its_person_in(
    fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_demo_once(capsys)

    code, out, err = run(capsys, ["link", "u_zhao", "/console", "--demo"])

    assert code == 0 and "/m/l/" in out and "works for 24 h" in err
    token = out.strip().rsplit("/", 1)[1]
    assert token not in err, "the token is never echoed in full on stderr"
    links = PersonalLinks(
        Database("sqlite+aiosqlite:///./var/demo.db"),
        secret=None,
        public_url="http://x",
        now=lambda: datetime.now(UTC),
    )
    target = asyncio.run(links.read(token))
    assert (target.user, target.path) == ("u_zhao", "/console")
    code, _, err = run(capsys, ["link", "u_nobody", "--demo"])
    assert code == 2 and "not an active person" in err
    code, _, err = run(capsys, ["link", "u_zhao", "https://evil.example/", "--demo"])
    assert code == 2 and "expected a path on this site" in err
