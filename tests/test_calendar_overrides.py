"""The organisation's calendar overrides: kept in the database, edited by API and CLI, used by
deadlines at once (this process) or within a minute (others); /readyz warns about missing
holiday data without failing."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from approvals.clock import ManualClock
from bot.app import create_app
from bot.cli import main
from bot.keys import DEADLINES, TIMERS
from deadlines import timers
from deadlines.org_calendar import REFRESH
from storage import calendar_store, migrate
from storage.calendar_store import OverrideKind
from storage.db import Database
from tests.conftest import Api, settings_for

SH = ZoneInfo("Asia/Shanghai")
SEAL = {
    "seal": "公章",
    "reason": "签署合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["合同.pdf"],
    "copies": 2,
    "take_out": False,
}


def sh(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


# -- API ---------------------------------------------------------------------------------------------
async def test_overrides_are_added_listed_replaced_and_removed(api: Api) -> None:
    _, made = await api.call(
        "POST", "/calendar/overrides", {"date": "2026-12-31", "kind": "holiday", "reason": "年会"}, expect=201
    )
    await api.call("POST", "/calendar/overrides", {"date": "2026-12-26", "kind": "workday"}, expect=201)
    _, replaced = await api.call(
        "POST", "/calendar/overrides", {"date": "2026-12-31", "kind": "workday", "reason": "赶工"}, expect=200
    )

    _, listed = await api.call("GET", "/calendar/overrides", expect=200)
    assert [(o["date"], o["kind"], o["reason"]) for o in listed["items"]] == [  # type: ignore[index]
        ("2026-12-26", "workday", ""),
        ("2026-12-31", "workday", "赶工"),
    ]
    assert (made["kind"], replaced["kind"]) == ("holiday", "workday")  # type: ignore[index]
    _, december = await api.call("GET", "/calendar/overrides?from=2026-12-27&to=2026-12-31", expect=200)
    assert [o["date"] for o in december["items"]] == ["2026-12-31"]  # type: ignore[index]

    await api.call("DELETE", "/calendar/overrides/2026-12-31", expect=200)
    status, missing = await api.call("DELETE", "/calendar/overrides/2026-12-31")
    assert (status, missing["error"]) == (404, "override_not_found")  # type: ignore[index]


async def test_bad_override_bodies_list_every_problem(api: Api) -> None:
    status, body = await api.call(
        "POST", "/calendar/overrides", {"date": "31/12/2026", "kind": "party", "extra": 1}
    )

    assert status == 422
    assert set(body["details"]) == {"date", "kind", "extra"}  # type: ignore[index]
    status, _ = await api.call("GET", "/calendar/overrides?from=tomorrow")
    assert status == 422


async def test_an_extra_holiday_moves_deadlines_at_once(api: Api, clock: ManualClock) -> None:
    clock.set(sh(11, 23, 16))  # Monday 16:00: 4 working hours end Tuesday 11:00
    before = await api.submit("seal_use", "u_wu", SEAL)
    await api.call("POST", "/calendar/overrides", {"date": "2026-11-24", "kind": "holiday"}, expect=201)
    after = await api.submit("seal_use", "u_wu", {**SEAL, "copies": 3})

    assert datetime.fromisoformat(before["steps"][0]["tasks"][0]["due_at"]) == sh(11, 24, 11)
    # Wednesday 11:00 by working hours, so the 24 h cap of a 一般 request comes first.
    assert datetime.fromisoformat(after["steps"][0]["tasks"][0]["due_at"]) == sh(11, 24, 16)


async def test_an_override_added_for_tomorrow_moves_a_pending_due_time_and_says_so(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    clock.set(sh(11, 23, 16))  # Monday 16:00: 孙丽's 4 working hours end Tuesday 11:00
    req = await api.submit("seal_use", "u_wu", SEAL)
    task_id = req["steps"][0]["tasks"][0]["id"]
    clock.set(sh(11, 23, 17))

    await api.call("POST", "/calendar/overrides", {"date": "2026-11-24", "kind": "holiday"}, expect=201)
    await api.app[TIMERS].scan_once()  # type: ignore[index]

    _, moved = await api.call("GET", f"/requests/{req['id']}?trail=1", expect=200)
    task = moved["steps"][0]["tasks"][0]  # type: ignore[index]
    # Tuesday is off: Wednesday 11:00 by working hours, capped by the 一般 request's 24 h.
    assert datetime.fromisoformat(task["due_at"]) == sh(11, 24, 16)
    assert task["version"] == req["steps"][0]["tasks"][0]["version"]  # the card stays valid
    entry = [e for e in moved["trail"] if e["kind"] == "deadline_replanned"]  # type: ignore[index]
    assert len(entry) == 1 and entry[0]["task_id"] == task_id
    assert entry[0]["comment"] == "工作日历调整（11-24设为休息日），处理期限由 11-24 11:00 改为 11-24 16:00"
    async with org_db.session() as s:
        rows = await timers.timers_of(s, task_id=task_id)
    pending = {r.kind: r.due_at.astimezone(SH) for r in rows if r.status == "pending"}
    # The 督办 rung is re-planned too: not at the old 11:00, and since the new due time is on the
    # holiday, it waits for Wednesday's first working hour.
    assert pending["due"] == sh(11, 25, 9)
    assert [r.status for r in rows if r.kind == "due"].count("cancelled") == 1

    # The same scan again finds nothing to move; removing the holiday moves it back.
    await api.app[TIMERS].scan_once()  # type: ignore[index]
    await api.call("DELETE", "/calendar/overrides/2026-11-24", expect=200)
    await api.app[TIMERS].scan_once()  # type: ignore[index]
    _, back = await api.call("GET", f"/requests/{req['id']}?trail=1", expect=200)
    assert datetime.fromisoformat(back["steps"][0]["tasks"][0]["due_at"]) == sh(11, 24, 11)  # type: ignore[index]
    replans = [e["comment"] for e in back["trail"] if e["kind"] == "deadline_replanned"]  # type: ignore[index]
    assert replans[1:] == ["工作日历调整（11-24取消休息日），处理期限由 11-24 16:00 改为 11-24 11:00"]


async def test_an_extra_working_day_counts(api: Api, clock: ManualClock) -> None:
    await api.call(
        "POST", "/calendar/overrides", {"date": "2026-11-28", "kind": "workday", "reason": "补班"}, expect=201
    )
    clock.set(sh(11, 27, 16))  # Friday 16:00; Saturday is now a working day

    req = await api.submit("seal_use", "u_wu", SEAL)

    assert datetime.fromisoformat(req["steps"][0]["tasks"][0]["due_at"]) == sh(11, 28, 11)


async def test_changes_by_another_process_are_picked_up_by_the_next_scan_after_a_minute(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    async with org_db.transaction() as s:  # e.g. `oabot calendar add-holiday` on another machine
        await calendar_store.set_override(
            s, day=date(2026, 11, 24), kind=OverrideKind.HOLIDAY, now=clock.now()
        )
    deadlines = api.app[DEADLINES]  # type: ignore[index]
    assert deadlines.calendar.is_working_day(date(2026, 11, 24))

    clock.advance(REFRESH)
    await api.app[TIMERS].scan_once()  # type: ignore[index]

    assert not deadlines.calendar.is_working_day(date(2026, 11, 24))


# -- readiness ---------------------------------------------------------------------------------------
async def test_readyz_warns_about_a_year_without_holiday_data_but_stays_ready(
    org_db: Database, aiohttp_client: Any
) -> None:
    far = ManualClock(datetime(2099, 6, 1, 2, 0, tzinfo=UTC))
    client = await aiohttp_client(create_app(settings_for(org_db), clock=far))

    resp = await client.get("/readyz", headers={"Authorization": "Bearer test-token-0123456789"})
    body = await resp.json()

    assert "calendar" not in body.get("failing", [])  # (this test database is not alembic-stamped)
    assert body["checks"]["calendar"]["ok"] is True
    assert "holiday data for 2099 is not known" in body["checks"]["calendar"]["detail"]


async def test_readyz_names_the_overrides_when_the_data_is_known(api: Api, clock: ManualClock) -> None:
    clock.set(sh(3, 2, 10))  # early 2026: the data covers the next weeks
    await api.call("POST", "/calendar/overrides", {"date": "2026-03-06", "kind": "holiday"}, expect=201)

    resp = await api.client.get("/readyz", headers=api.headers)  # type: ignore[attr-defined]
    detail = (await resp.json())["checks"]["calendar"]["detail"]

    assert detail == "official holiday schedule known; 1 organisation override(s)"


# -- CLI ---------------------------------------------------------------------------------------------
@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path}/cal.db"
    monkeypatch.setenv("OABOT_DATABASE_URL", url)
    return url


async def _replan_changes(url: str) -> list[str]:
    db = Database(url)
    try:
        async with db.session() as s:
            rows = await timers.timers_of(s)
        return [str(r.data["change"]) for r in rows if r.kind == "calendar_replan"]
    finally:
        await db.dispose()


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


def test_cli_adds_lists_and_removes_overrides(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    asyncio.run(_migrate(cli_db))

    assert main(["calendar", "add-holiday", "2026-12-31", "--reason", "年会"]) == 0
    assert main(["calendar", "add-workday", "2026-12-26"]) == 0
    assert main(["calendar", "add-workday", "2026-12-31"]) == 0
    assert main(["calendar", "list", "--year", "2026"]) == 0
    assert main(["calendar", "remove", "2026-12-26"]) == 0
    assert main(["calendar", "remove", "2026-12-26"]) == 1

    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "added: 2026-12-31 Thu  holiday (day off)  年会",
        "added: 2026-12-26 Sat  workday",
        "replaced: 2026-12-31 Thu  workday",
        "2026-12-26 Sat  workday",
        "2026-12-31 Thu  workday",
        "removed: 2026-12-26 Sat  workday",
    ]
    assert "2026-12-26 has no override" in err
    # Each change asks the running service to re-plan pending due times (a timer it will fire).
    assert asyncio.run(_replan_changes(cli_db)) == ["holiday", "workday", "workday", "removed_workday"]


def test_cli_refuses_a_bad_date(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["calendar", "add-holiday", "next friday"])

    assert exited.value.code == 2
    assert "'next friday' is not a date YYYY-MM-DD" in capsys.readouterr().err


def test_cli_says_what_to_do_when_the_database_is_not_migrated(
    cli_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["calendar", "list"]) == 2
    assert "database not initialised: run `oabot migrate`" in capsys.readouterr().err


def test_cli_list_warns_when_the_holiday_data_does_not_cover_the_year(
    cli_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    asyncio.run(_migrate(cli_db))

    assert main(["calendar", "list", "--year", "2099"]) == 0

    out, err = capsys.readouterr()
    assert "no overrides in 2099" in out
    assert "holiday data for 2099 is not known" in err


def test_working_calendar_warning_lead_time_is_reasonable() -> None:
    from deadlines.org_calendar import COVERAGE_LOOKAHEAD

    assert timedelta(days=14) <= COVERAGE_LOOKAHEAD <= timedelta(days=90)
