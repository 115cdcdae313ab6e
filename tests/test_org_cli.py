"""`oabot org import` and `oabot org show` as an operator runs them: what is printed, the exit
status, and what ends up in the database. Plain sync tests: `main()` runs its own event loop."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from bot.cli import main
from bot.platforms.http_retry import RetryPolicy
from org.model import Org
from storage.db import Database
from storage.org_repo import OrgNotImported, load_org
from tests.conftest import DEMO_ORG, TEST_TRAIL_KEY, create_tables

DATA = Path(__file__).parent / "data" / "org"
T = TypeVar("T")

DEMO_TREE = """\
总经理办公室 [gm_office] - leader: 张伟 (u_zhang)
  * 张伟 (u_zhang), 总经理, roles: gm
  * 李娜 (u_li), 副总经理, roles: deputy_gm
  行政服务部 [admin_service] - leader: 王芳 (u_wang)
    * 王芳 (u_wang), 行政服务部经理, roles: admin_service_manager, seal_dept_head
    * 陈静 (u_chen), 印章管理员, roles: seal_keeper
    * 刘强 (u_liu), 车队调度, roles: fleet_dispatcher
  行政人事部 [hr_admin] - leader: 赵敏 (u_zhao)
    * 赵敏 (u_zhao), 行政人事部经理, roles: hr_manager, doc_registrar
  财务部 [finance] - leader: 钱磊 (u_qian)
    * 钱磊 (u_qian), 财务部经理, roles: finance_manager
  市场部 [marketing] - leader: 孙丽 (u_sun)
    * 孙丽 (u_sun), 市场部经理
    * 吴昊 (u_wu), 市场专员
  工程部 [engineering] - leader: 周杰 (u_zhou)
    * 周杰 (u_zhou), 工程部经理
    * 郑浩 (u_zheng), 现场工程师, roles: field_staff
Sites:
  集团总部 [hq] - 31.2304, 121.4737 (gcj02), radius 300 m
  浦东项目现场 [site_pudong] - 31.2215, 121.544 (gcj02), radius 500 m
11 active people in 6 departments.
"""


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A temp SQLite database with the tables created, and an environment naming only it."""
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    url = f"sqlite+aiosqlite:///{tmp_path}/oabot.db"
    monkeypatch.setenv("OABOT_DATABASE_URL", url)
    monkeypatch.setenv("OABOT_TRAIL_KEY", TEST_TRAIL_KEY)  # commands that write the trail need it
    asyncio.run(_with_database(url, create_tables))
    yield url


async def _with_database(url: str, action: Callable[[Database], Awaitable[T]]) -> T:
    database = Database(url)
    try:
        return await action(database)
    finally:
        await database.dispose()


def stored_org(url: str) -> Org:
    async def load(database: Database) -> Org:
        async with database.session() as session:
            return await load_org(session)

    return asyncio.run(_with_database(url, load))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_prints_a_summary_and_show_prints_the_tree(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "org", "import", str(DEMO_ORG))

    assert (code, err) == (0, "")
    assert out == (
        f"Imported {DEMO_ORG} (示例集团).\n"
        "People: 11 added, 0 updated, 0 deactivated, 0 unchanged\n"
        "  + u_zhang 张伟\n  + u_li 李娜\n  + u_wang 王芳\n  + u_chen 陈静\n  + u_liu 刘强\n"
        "  + u_zhao 赵敏\n  + u_qian 钱磊\n  + u_sun 孙丽\n  + u_wu 吴昊\n  + u_zhou 周杰\n  + u_zheng 郑浩\n"
        "Departments: 6 added, 0 updated, 0 deactivated\n"
        "Sites: 2 added, 0 updated, 0 deactivated\n"
    )

    code, out, err = run(capsys, "org", "show")

    assert (code, err) == (0, "")
    header, rest = out.split("\n", 1)
    assert re.fullmatch(r"示例集团 \(time zone Asia/Shanghai\), imported \d{4}-\d\d-\d\d \d\d:\d\d", header)
    assert rest == DEMO_TREE


def test_reimport_reports_updates_and_deactivations(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["org", "import", str(DEMO_ORG)]) == 0
    capsys.readouterr()
    updated = DATA / "demo_updated.yaml"

    code, out, err = run(capsys, "org", "import", str(updated))

    assert (code, err) == (0, "")
    assert out == (
        f"Imported {updated} (示例集团).\n"
        "People: 1 added, 3 updated, 1 deactivated, 7 unchanged\n"
        "  + u_feng 冯雪\n"
        "  ~ u_qian 钱磊\n  ~ u_wu 吴昊\n  ~ u_zhou 周杰\n"
        "  - u_zheng 郑浩\n"
        "Departments: 0 added, 1 updated, 1 deactivated\n"
        "Sites: 0 added, 1 updated, 1 deactivated\n"
    )
    org = stored_org(database_url)
    assert org.users["u_zheng"].name == "郑浩" and not org.users["u_zheng"].active

    code, out, _ = run(capsys, "org", "show")
    assert "郑浩" not in out
    assert "  行政人事部 [hr_admin] - leader: 赵敏 (u_zhao); deputies: 钱磊 (u_qian)\n" in out
    assert "    * 吴昊 (u_wu), 高级市场专员, level 5\n" in out
    assert "财务部" not in out

    code, out, _ = run(capsys, "org", "show", "--all")
    assert code == 0
    assert "    * 郑浩 (u_zheng), 现场工程师, roles: field_staff (inactive)\n" in out
    assert "  财务部 [finance] (inactive) - leader: 钱磊 (u_qian)\n" in out
    assert "  浦东项目现场 [site_pudong] (inactive) - 31.2215, 121.544 (gcj02), radius 500 m\n" in out


def test_a_bad_file_reports_every_problem_with_its_line_and_changes_nothing(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["org", "import", str(DEMO_ORG)]) == 0
    before = stored_org(database_url)
    capsys.readouterr()
    broken = DATA / "broken.yaml"

    code, out, err = run(capsys, "org", "import", str(broken))

    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{broken}:16: user u_li: unknown manager 'u_zhnag'; expected the id of a user in this file",
        f"{broken}:17: user u_li: 'level' is the text 'high'; expected a whole number 0 or more",
        f"{broken}:18: user u_li: wecom account 'zhangwei' already belongs to u_zhang (line 12); "
        "expected each account to belong to one person",
        f"{broken}:22: site hq: 'lat' is 131.2304, out of range; expected a latitude from -90 to 90",
        "4 problems found; nothing was imported.",
    ]
    assert stored_org(database_url) == before


def test_a_bad_file_on_an_empty_database_leaves_it_empty(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    malformed = DATA / "malformed.yaml"

    code, _, err = run(capsys, "org", "import", str(malformed))

    assert code == 2
    assert err.splitlines()[0] == (
        f"{malformed}:11: malformed YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence that starts on line 10)"
    )
    with pytest.raises(OrgNotImported):
        stored_org(database_url)


def test_dry_run_reports_the_changes_and_writes_nothing(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "org", "import", "--dry-run", str(DEMO_ORG))

    assert code == 0
    assert out.startswith(f"Would import {DEMO_ORG} (示例集团).\nPeople: 11 added,")
    assert out.endswith("Dry run: nothing was written.\n")
    with pytest.raises(OrgNotImported):
        stored_org(database_url)


def test_show_before_any_import_says_what_to_do(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "org", "show") == (
        1,
        "",
        "No organisation has been imported yet; run `oabot org import FILE` first.\n",
    )


def test_bad_settings_are_printed_one_per_line_with_status_2(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OABOT_DATABASE_URL", "mysql://localhost/oa")
    monkeypatch.setenv("OABOT_TIMEZONE", "Mars/Olympus")
    expected = (
        "OABOT_DATABASE_URL='mysql://localhost/oa': expected sqlite+aiosqlite:///PATH or "
        "postgresql+asyncpg://USER[:PASSWORD]@HOST[:PORT]/DB\n"
        "OABOT_TIMEZONE='Mars/Olympus': expected an IANA time zone such as Asia/Shanghai\n"
    )

    assert run(capsys, "org", "import", str(DEMO_ORG)) == (2, "", expected)
    assert run(capsys, "org", "show") == (2, "", expected)


def test_a_database_without_tables_is_explained_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/unmigrated.db"
    monkeypatch.setenv("OABOT_DATABASE_URL", url)

    code, out, err = run(capsys, "org", "import", str(DEMO_ORG))

    assert (code, out) == (2, "")
    assert err == f"database not initialised: run `oabot migrate` (OABOT_DATABASE_URL is {url})\n"
    assert not (tmp_path / "unmigrated.db").exists(), "the check does not create the file"


def test_org_without_an_action_prints_usage(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "org")

    assert (code, out) == (2, "")
    assert err.startswith("usage: oabot org [-h] [--demo] ACTION ...")
    assert "import" in err and "show" in err


def test_sync_from_a_platform_that_is_not_configured_says_which_variables_and_writes_nothing(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "org", "sync", "--from", "dingtalk", "--dry-run")
    assert code == 2 and out == ""
    assert err == "dingtalk is not configured: set its OABOT_DINGTALK_* variables\n"
    code, out, _ = run(capsys, "org", "history")
    assert (code, out) == (0, "No directory sync has run yet.\n")


def test_sync_with_a_platform_that_cannot_be_reached_changes_nothing(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["org", "import", str(DEMO_ORG)]) == 0
    capsys.readouterr()
    for name, value in {
        "OABOT_WECOM_CORP_ID": "ww1",
        "OABOT_WECOM_AGENT_ID": "1000002",
        "OABOT_WECOM_SECRET": "s",
        "OABOT_WECOM_TOKEN": "t",
        "OABOT_WECOM_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "OABOT_WECOM_API_BASE": "http://127.0.0.1:9",  # nothing listens there
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("bot.platforms.wecom.directory.SYNC_RETRY", fast_retry())
    monkeypatch.setattr("bot.org_sync_wiring.WECOM_SYNC_RETRY", fast_retry())
    code, out, err = run(capsys, "org", "sync", "--from", "wecom")
    assert code == 1 and out == ""
    # (stderr may also carry log lines from the retries)
    assert "\nCannot read the wecom directory: /cgi-bin/gettoken: ConnectError" in "\n" + err
    assert err.endswith("Nothing was changed; run the sync again later.\n")
    assert stored_org(database_url).users["u_wu"].active
    code, out, _ = run(capsys, "org", "history")
    assert code == 0 and " wecom all failed by cli:" in out


def fast_retry() -> RetryPolicy:
    async def no_wait(_: float) -> None:
        return None

    return RetryPolicy(attempts=2, base_delay_s=0.0, max_delay_s=0.0, sleep=no_wait)
