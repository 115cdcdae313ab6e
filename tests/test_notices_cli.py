"""`oabot notices list|show|receipts` as the office runs them: a person's notices with their 已收到
state, what an author published with its progress, one notice (a restricted item's text is not
printed), who acknowledged and who has not; unknown notices and people exit 2 saying so. Plain
sync tests: `main()` runs its own event loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from bot.cli import main
from bot.cli.notices import service_for
from bot.settings import load_settings
from notices.model import Audience, Confidentiality, NoticeKind
from services.notices import NoticeDraft
from storage.db import Database
from tests.conftest import TEST_TRAIL_KEY, create_tables, import_demo_org

T = TypeVar("T")


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A temp SQLite database with the tables and the demo org, and an environment naming only it."""
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    url = f"sqlite+aiosqlite:///{tmp_path}/oabot.db"
    monkeypatch.setenv("OABOT_DATABASE_URL", url)
    monkeypatch.setenv("OABOT_TRAIL_KEY", TEST_TRAIL_KEY)

    async def prepare(db: Database) -> None:
        await create_tables(db)
        await import_demo_org(db)

    _with(url, prepare)
    yield url


def _with(url: str, action: Callable[[Database], Awaitable[T]]) -> T:
    async def go() -> T:
        database = Database(url)
        try:
            return await action(database)
        finally:
            await database.dispose()

    return asyncio.run(go())


def publish(url: str, title: str, **changes: object) -> str:
    async def go(db: Database) -> str:
        view = await service_for(load_settings(), db).create(
            author="u_sun",
            draft=NoticeDraft(
                kind=changes.pop("kind", NoticeKind.NOTICE),  # type: ignore[arg-type]
                title=title,
                audience=Audience(people=("u_wu", "u_chen")),
                **{"body": "请于周五前完成安全自查。", **changes},  # type: ignore[arg-type]
            ),
            channel="web",
        )
        return view.id

    return _with(url, go)


def acknowledge(url: str, notice_id: str, person: str) -> None:
    async def go(db: Database) -> None:
        await service_for(load_settings(), db).acknowledge(person=person, notice_id=notice_id, channel="web")

    _with(url, go)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_a_persons_notices_and_an_authors_progress(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = publish(database_url, "年终安全检查")
    second = publish(database_url, "客户回访安排")
    acknowledge(database_url, first, "u_wu")

    code, out, err = run(capsys, "notices", "list", "--person", "u_wu")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["id", "kind", "status"]
    row = {line.split()[0]: line for line in lines[1:]}
    assert "年终安全检查" in row[first] and "已收到" in row[first] and "孙丽" in row[first]
    assert "客户回访安排" in row[second] and "未读" in row[second]

    code, out, _ = run(capsys, "notices", "list", "--person", "u_wu", "--unanswered")
    assert code == 0 and second in out and first not in out

    code, out, _ = run(capsys, "notices", "list", "--author", "u_sun")
    assert code == 0 and "1/2 acknowledged" in out and "0/2 acknowledged" in out

    code, out, _ = run(capsys, "notices", "list", "--person", "u_zheng")
    assert code == 0 and out.strip() == "no notices"


def test_show_prints_the_facts_and_the_text_but_not_a_restricted_items_text(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = publish(database_url, "年终安全检查")
    secret = publish(
        database_url, "薪酬调整方案", confidentiality=Confidentiality.SECRET, body="绩效系数调整"
    )

    code, out, err = run(capsys, "notices", "show", plain)
    assert code == 0, err
    assert out.startswith(f"{plain}  年终安全检查")
    assert "kind: 通知   status: 已发布   confidentiality: 内部" in out
    assert "author: 孙丽 (u_sun)" in out and "0/2 answered" in out and "请于周五前完成安全自查。" in out

    code, out, _ = run(capsys, "notices", "show", secret)
    assert code == 0 and "薪酬调整方案" in out and "绩效系数调整" not in out and "restricted" in out


def test_receipts_lists_who_acknowledged_and_who_has_not(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    notice = publish(database_url, "年终安全检查")
    acknowledge(database_url, notice, "u_chen")

    code, out, err = run(capsys, "notices", "receipts", notice)

    assert code == 0, err
    summary, header, *rows = out.splitlines()
    assert summary == "年终安全检查: 1/2 answered (1 acknowledged, 0 defaulted, 1 not yet)"
    assert header.split() == ["person", "name", "department", "state", "at", "via"]
    by_person = {r.split()[0]: r.split() for r in rows}
    assert by_person["u_chen"][3] == "已收到" and by_person["u_chen"][-1] == "网页"
    assert by_person["u_wu"][3] == "未读"


def test_unknown_notices_and_people_exit_2_saying_so(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "notices", "show", "n20261123-00000000")
    assert code == 2 and "n20261123-00000000" in err and "不存在" in err
    code, _, err = run(capsys, "notices", "receipts", "nonsense")
    assert code == 2 and "不存在" in err
    code, _, err = run(capsys, "notices", "list", "--person", "u_nobody")
    assert code == 2 and "u_nobody" in err
    code, _, err = run(capsys, "notices", "list", "--author", "u_sun", "--limit", "0")
    assert code == 2 and "--limit" in err
    with pytest.raises(SystemExit) as exited:
        main(["notices", "list"])
    assert exited.value.code == 2


def test_on_a_database_without_tables_it_says_run_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OABOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/empty.db")

    code, _, err = run(capsys, "notices", "list", "--person", "u_wu")

    assert code == 2 and "oabot migrate" in err


def test_show_leaves_out_a_restricted_meetings_place(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    from notices.model import Meeting

    starts = datetime.now(UTC) + timedelta(days=3)
    meeting = Meeting(starts_at=starts, ends_at=starts + timedelta(hours=1), place="地下二层保密室")
    secret = publish(
        database_url,
        "并购讨论会",
        kind=NoticeKind.MEETING,
        meeting=meeting,
        confidentiality=Confidentiality.SECRET,
    )
    code, out, err = run(capsys, "notices", "show", secret)
    assert code == 0, err
    assert "并购讨论会" in out and "meeting:" in out and "地下二层保密室" not in out
