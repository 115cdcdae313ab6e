"""What an operator sees from `oabot check-config` (and every other command) for their config."""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import PG_URL, REDIS_URL


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Commands configure the root logger; put it back so later tests log as before."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No OABOT_* from the developer's shell or .env; run in an empty directory."""
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OABOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/oabot.db")
    return tmp_path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BAD_VALUES = [
    ("OABOT_HOST", " ", "OABOT_HOST='': expected a host name or IP address"),
    ("OABOT_PORT", "99999", "OABOT_PORT='99999': expected a port number between 1 and 65535"),
    ("OABOT_PORT", "http", "OABOT_PORT='http': expected a port number between 1 and 65535"),
    (
        "OABOT_PUBLIC_URL",
        "oa.example.com",
        "OABOT_PUBLIC_URL='oa.example.com': expected an http:// or https:// URL such as https://oa.example.com",
    ),
    (
        "OABOT_DATABASE_URL",
        "mysql://root@localhost/oa",
        "OABOT_DATABASE_URL='mysql://root@localhost/oa': expected sqlite+aiosqlite:///PATH or "
        "postgresql+asyncpg://USER[:PASSWORD]@HOST[:PORT]/DB",
    ),
    (
        "OABOT_REDIS_URL",
        "localhost:6379",
        "OABOT_REDIS_URL='localhost:6379': expected redis://HOST:PORT/DB (or leave unset for the in-process store)",
    ),
    (
        "OABOT_TIMEZONE",
        "Beijing",
        "OABOT_TIMEZONE='Beijing': expected an IANA time zone such as Asia/Shanghai",
    ),
    (
        "OABOT_WORKING_HOURS",
        "9-18",
        "OABOT_WORKING_HOURS='9-18': expected comma-separated HH:MM-HH:MM periods in order "
        "('9-18' is not HH:MM-HH:MM)",
    ),
    (
        "OABOT_WORKING_HOURS",
        "13:30-18:00,09:00-12:00",
        "OABOT_WORKING_HOURS='13:30-18:00,09:00-12:00': expected comma-separated HH:MM-HH:MM periods "
        "in order ('09:00-12:00' overlaps or precedes the period before it)",
    ),
    ("OABOT_API_TOKEN", "secret", "OABOT_API_TOKEN='***': expected at least 16 characters"),
    (
        "OABOT_ORG_FILE",
        "/no/such/org.yaml",
        "OABOT_ORG_FILE='/no/such/org.yaml': expected the path of an existing org YAML file",
    ),
    (
        "OABOT_TEMPLATES_DIR",
        "/no/such/dir",
        "OABOT_TEMPLATES_DIR='/no/such/dir': expected an existing directory of template YAML files",
    ),
    ("OABOT_LOG_FORMAT", "xml", "OABOT_LOG_FORMAT='xml': expected text or json"),
    ("OABOT_LOG_LEVEL", "LOUD", "OABOT_LOG_LEVEL='LOUD': expected DEBUG, INFO, WARNING or ERROR"),
    ("OABOT_AUTO_MIGRATE", "maybe", "OABOT_AUTO_MIGRATE='maybe': expected 1 or 0"),
]


@pytest.mark.parametrize(
    ("variable", "value", "line"), BAD_VALUES, ids=[f"{v}={x}" for v, x, _ in BAD_VALUES]
)
@pytest.mark.parametrize("command", ["check-config", "serve", "migrate"])
def test_bad_value_prints_one_line_naming_it_and_exits_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    variable: str,
    value: str,
    line: str,
) -> None:
    monkeypatch.setenv(variable, value)

    assert main([command]) == 2

    out, err = capsys.readouterr()
    assert err == line + "\n"
    assert out == ""


def test_every_problem_is_listed_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OABOT_PORT", "0")
    monkeypatch.setenv("OABOT_LOG_FORMAT", "yaml")

    assert main(["check-config"]) == 2

    assert capsys.readouterr().err.splitlines() == [
        "OABOT_PORT='0': expected a port number between 1 and 65535",
        "OABOT_LOG_FORMAT='yaml': expected text or json",
    ]


def test_values_in_dotenv_file_are_checked_too(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (clean_env / ".env").write_text("OABOT_TIMEZONE=Moon/Base\n", encoding="utf-8")

    assert main(["check-config"]) == 2

    assert (
        capsys.readouterr().err
        == "OABOT_TIMEZONE='Moon/Base': expected an IANA time zone such as Asia/Shanghai\n"
    )


def test_good_config_prints_a_summary_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OABOT_TIMEZONE", "Asia/Urumqi")
    monkeypatch.setenv("OABOT_WORKING_HOURS", "10:00-13:00,15:00-19:00")

    assert main(["check-config"]) == 0

    out, err = capsys.readouterr()
    assert err == ""
    assert "configuration is valid" in out
    assert "  database       sqlite " in out
    assert "  key-value      in-process" in out
    assert "  timezone       Asia/Urumqi" in out
    assert "  working hours  10:00-13:00, 15:00-19:00" in out
    assert "SQLite file does not exist yet" in out


def test_check_config_does_not_create_the_sqlite_file(clean_env: Path) -> None:
    assert main(["check-config"]) == 0

    assert not (clean_env / "oabot.db").exists()


def test_check_config_reports_an_outdated_schema_and_a_current_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["migrate"]) == 0
    capsys.readouterr()

    assert main(["check-config"]) == 0

    assert "  database: reachable, schema at the latest revision" in capsys.readouterr().out


def test_unreachable_database_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    monkeypatch.setenv("OABOT_DATABASE_URL", f"postgresql+asyncpg://oabot:s3cret@127.0.0.1:{port}/oabot")

    assert main(["check-config"]) == 2

    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"OABOT_DATABASE_URL: cannot connect to postgresql+asyncpg://oabot:***@127.0.0.1:{port}/oabot: "
    )
    assert "s3cret" not in err
    assert "Traceback" not in err


def test_unreachable_redis_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    monkeypatch.setenv("OABOT_REDIS_URL", f"redis://127.0.0.1:{port}/0")

    assert main(["check-config"]) == 2

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"OABOT_REDIS_URL: cannot connect to redis://127.0.0.1:{port}/0: ")


@pytest.mark.skipif(REDIS_URL is None, reason="OABOT_TEST_REDIS_URL is not set")
def test_reachable_redis_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert REDIS_URL is not None
    monkeypatch.setenv("OABOT_REDIS_URL", REDIS_URL)

    assert main(["check-config"]) == 0

    out = capsys.readouterr().out
    assert f"  key-value      redis {REDIS_URL}" in out
    assert "  redis: reachable" in out


@pytest.mark.skipif(PG_URL is None, reason="OABOT_TEST_DATABASE_URL is not set")
def test_reachable_postgres_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert PG_URL is not None
    monkeypatch.setenv("OABOT_DATABASE_URL", PG_URL)

    assert main(["check-config"]) == 0

    out = capsys.readouterr().out
    assert "  database       postgresql 127.0.0.1:5432/" in out
    assert "  database: reachable, schema " in out


def test_example_config_documents_every_variable_with_its_default() -> None:
    from dotenv import dotenv_values

    from bot.settings import Settings, every_variable, load_settings
    from tests.conftest import ROOT

    example = ROOT / "config.example.env"
    text = example.read_text(encoding="utf-8")
    read_by_settings = every_variable()
    assert len(read_by_settings) > 40, "the settings read fewer variables than expected"
    for name in read_by_settings:
        assert re.search(rf"^#? ?{name}=", text, re.MULTILINE), f"{name} is not in config.example.env"

    values = {k: v for k, v in dotenv_values(example).items() if v is not None}
    assert load_settings(values, dotenv_path=None) == Settings()


WECOM = {
    "OABOT_WECOM_CORP_ID": "ww0123456789",
    "OABOT_WECOM_AGENT_ID": "1000002",
    "OABOT_WECOM_SECRET": "app-secret",
    "OABOT_WECOM_TOKEN": "callback-token",
    "OABOT_WECOM_AES_KEY": "a" * 43,
}


def test_wecom_names_each_missing_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OABOT_WECOM_CORP_ID", WECOM["OABOT_WECOM_CORP_ID"])
    monkeypatch.setenv("OABOT_WECOM_SECRET", WECOM["OABOT_WECOM_SECRET"])
    monkeypatch.setenv("OABOT_WECOM_TOKEN", "")

    assert main(["check-config"]) == 2

    needs = "WeCom needs all of " + ", ".join(WECOM)
    assert capsys.readouterr().err.splitlines() == [
        f"OABOT_WECOM_AGENT_ID is not set: {needs}",
        f"OABOT_WECOM_TOKEN is not set: {needs}",
        f"OABOT_WECOM_AES_KEY is not set: {needs}",
    ]


def test_platform_secrets_are_never_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in WECOM.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OABOT_WECOM_AES_KEY", "too-short-key")

    assert main(["check-config"]) == 2

    assert capsys.readouterr().err == (
        "OABOT_WECOM_AES_KEY='***': expected the 43-character EncodingAESKey from the app's callback settings\n"
    )


def test_dingtalk_http_mode_needs_the_event_subscription(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OABOT_DINGTALK_APP_KEY", "dingkey")
    monkeypatch.setenv("OABOT_DINGTALK_APP_SECRET", "dingsecret")
    monkeypatch.setenv("OABOT_DINGTALK_MODE", "http")
    monkeypatch.setenv("OABOT_DINGTALK_TOKEN", "event-token")

    assert main(["check-config"]) == 2

    assert capsys.readouterr().err == (
        "OABOT_DINGTALK_MODE=http needs OABOT_DINGTALK_TOKEN and OABOT_DINGTALK_AES_KEY (event subscription)\n"
    )


def test_connected_platforms_are_summarised_and_empty_variables_count_as_unset(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in WECOM.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OABOT_DINGTALK_APP_KEY", "")
    monkeypatch.setenv("OABOT_DINGTALK_MODE", "")

    assert main(["check-config"]) == 0

    assert "  platforms      WeCom (corp ww0123456789, agent 1000002)\n" in capsys.readouterr().out


def test_the_demo_keeps_its_own_database_and_store_and_shows_the_console() -> None:
    from bot.settings import DEMO_DATABASE_URL, load_settings

    configured = {"OABOT_DATABASE_URL": "mysql://elsewhere/oa", "OABOT_REDIS_URL": "localhost:6379"}
    demo = load_settings(configured, dotenv_path=None, demo=True)

    assert (demo.demo, demo.database_url, demo.redis_url, demo.console) == (
        True,
        DEMO_DATABASE_URL,
        None,
        True,
    )
    assert not load_settings({"OABOT_CONSOLE": "0"}, dotenv_path=None, demo=True).console
