"""Statistics 统计: the definitions on hand-made facts, then exact numbers on a known week built
through the API with a hand-moved clock, the same numbers from `oabot stats` (table and CSV),
and the weekly summary that goes to every department head and the office.

The known day (Monday 2026-11-02, Shanghai; working hours 09:00-12:00, 13:30-18:00; each
seal_use step is due 4 working hours after it starts). 吴昊 u_wu submits three seal requests;
孙丽 u_sun is the first approver of each, 王芳 u_wang the second, 李娜 u_li the third:

    10:00  R1 submitted                      u_sun's R1 task due 15:30
    11:00  u_sun approves R1 (1 h, 1 wh)      u_wang's R1 task due 16:30
           R2 submitted                      u_sun's R2 task due 16:30
    13:00  u_wang approves R1 (2 h, 1 wh)     u_li's R1 task due 17:30
           R3 submitted                      u_sun's R3 task due 17:30
    13:30  u_sun approves R3 (0.5 h, 0 wh)    u_wang's R3 task due 17:30
    17:00  u_sun approves R2 (6 h, 4.5 wh), late: it was due 16:30
           u_wang's R2 task due Tue 11:00 (the request's 24 h deadline)
           u_wu urges R1: u_li is pinged
"""

from __future__ import annotations

import asyncio
import csv
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from approvals.clock import ManualClock
from bot.cli import main
from org.model import Department, Org, User
from reports.stats import (
    CSV_COLUMNS,
    Facts,
    Period,
    PeriodInvalid,
    PingFact,
    RequestFact,
    TaskFact,
    compute,
    parse_period,
    percentile,
    previous_week,
)
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.timer_models import TimerRow
from tests.conftest import Api, settings_for

TZ = ZoneInfo("Asia/Shanghai")
SEAL = {
    "seal": "公章",
    "reason": "签署合同",
    "needed_at": "2026-11-04T10:00:00+08:00",
    "files": ["合同.pdf"],
    "copies": 1,
    "take_out": False,
}
DAY = "2026-11-02"


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


# -- the definitions, on facts made by hand -----------------------------------------------------
def small_org() -> Org:
    return Org(
        name="测试单位",
        timezone="Asia/Shanghai",
        departments={
            "a": Department(id="a", name="甲部", leader="boss"),
            "b": Department(id="b", name="乙部", leader="b_boss"),
        },
        users={
            "boss": User(id="boss", name="老板", department="a"),
            "ann": User(id="ann", name="安", department="a", manager="boss"),
            "bob": User(id="bob", name="鲍", department="b"),
            "b_boss": User(id="b_boss", name="乙头", department="b"),
            "gone": User(id="gone", name="离职者", department="b", active=False),
        },
    )


def task(
    task_id: str,
    assignee: str,
    status: str,
    activated: datetime | None,
    decided: datetime | None = None,
    by: str | None = None,
    due: datetime | None = None,
) -> TaskFact:
    return TaskFact(
        id=task_id,
        request_id="r",
        assignee=assignee,
        status=status,
        activated_at=activated,
        decided_at=decided,
        decided_by=by,
        due_at=due,
    )


PERIOD = Period(local(2, 0).date(), local(2, 0).date(), TZ)


def test_percentile_interpolates_between_the_nearest_ranks():
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.9) == 3.0
    assert percentile([1.0, 6.0], 0.5) == 3.5
    assert percentile([6.0, 0.5, 1.0], 0.5) == 1.0
    assert percentile([6.0, 0.5, 1.0], 0.9) == pytest.approx(5.0)
    assert percentile(list(range(1, 11)), 0.9) == pytest.approx(9.1)


def test_a_delegate_s_decision_counts_for_the_delegate_and_system_decisions_for_nobody():
    facts = Facts(
        tasks=(
            task("t1", "boss", "approved", local(2, 10), local(2, 11), by="ann"),  # ann acted for boss
            task("t2", "boss", "approved", local(2, 10), local(2, 10), by="system"),  # auto-approved
            task("t3", "boss", "closed", local(2, 10)),  # a sibling decided
            task("t4", "bob", "transferred", local(2, 9), local(2, 12), by="bob"),
            task("t5", "bob", "rejected", local(1, 9), local(1, 12), by="bob"),  # the day before
        )
    )
    report = compute(facts, small_org(), PERIOD, now=local(3, 9))
    rows = {r.id: r for r in report.people}
    assert (rows["ann"].handled, rows["ann"].median_hours) == (1, 1.0)
    assert rows["boss"].handled == 0
    assert (rows["bob"].handled, rows["bob"].p90_hours) == (1, 3.0)
    assert rows["ann"].median_working_hours is None, "no working calendar was given"


def test_overdue_is_a_late_decision_or_a_task_still_open_past_due_at_the_end():
    facts = Facts(
        tasks=(
            task("late", "ann", "approved", local(2, 9), local(2, 15), by="ann", due=local(2, 12)),
            task("on_time", "ann", "approved", local(2, 9), local(2, 11), by="ann", due=local(2, 12)),
            task("open", "bob", "pending", local(2, 9), due=local(2, 12)),
            task("open_not_due", "bob", "pending", local(2, 9), due=local(3, 12)),
            task(
                "decided_next_day",
                "b_boss",
                "approved",
                local(2, 9),
                local(3, 9),
                by="b_boss",
                due=local(2, 12),
            ),
            task("closed", "b_boss", "closed", local(2, 9), due=local(2, 10)),
        )
    )
    report = compute(facts, small_org(), PERIOD, now=local(4, 9))
    rows = {r.id: r for r in report.people}
    assert (rows["ann"].overdue, rows["bob"].overdue, rows["b_boss"].overdue) == (1, 1, 1)
    # While the period has not ended, "at the end" means now: not due yet is not overdue.
    known_at_11 = Facts(
        tasks=tuple(t for t in facts.tasks if t.decided_at is None or t.decided_at <= local(2, 11))
    )
    early = compute(known_at_11, small_org(), PERIOD, now=local(2, 11))
    assert {r.id: r.overdue for r in early.people if r.overdue} == {}


def test_reminders_count_for_the_person_in_after_and_leavers_show_only_with_numbers():
    facts = Facts(
        pings=(
            PingFact(kind="urged", at=local(2, 10), person="bob", request_id="r"),
            PingFact(kind="reminded", at=local(2, 11), person="bob", request_id="r"),
            PingFact(kind="escalated", at=local(2, 11), person="b_boss", request_id="r"),
            PingFact(kind="commented", at=local(2, 11), person="bob", request_id="r"),
            PingFact(kind="supervised", at=local(3, 11), person="bob", request_id="r"),
        ),
        requests=(RequestFact(id="r", initiator="gone", created_at=local(2, 8)),),
    )
    report = compute(facts, small_org(), PERIOD, now=local(3, 0))
    rows = {r.id: r for r in report.people}
    assert (rows["bob"].reminders, rows["b_boss"].reminders) == (2, 1)
    assert rows["gone"].initiated == 1
    quiet = compute(Facts(), small_org(), PERIOD, now=local(3, 0))
    assert "gone" not in {r.id for r in quiet.people}
    assert [r.id for r in report.rows] == ["a", "boss", "ann", "b", "bob", "b_boss", "gone"]
    assert report.row("department", "b").reminders == 3  # type: ignore[union-attr]


def test_period_problems_are_all_listed():
    with pytest.raises(PeriodInvalid) as bad:
        parse_period("2026-13-01", "yesterday", TZ)
    assert bad.value.problems == {
        "from": "is not a real date (expected YYYY-MM-DD)",
        "to": "expected a date YYYY-MM-DD, e.g. 2026-11-01",
    }
    with pytest.raises(PeriodInvalid) as backwards:
        parse_period("2026-11-30", "2026-11-01", TZ)
    assert backwards.value.problems == {"to": "ends before the start date 2026-11-30"}
    p = parse_period("2026-11-02", "2026-11-08", TZ)
    assert (p.start.isoformat(), p.end.isoformat(), p.iso_week) == (
        "2026-11-02T00:00:00+08:00",
        "2026-11-09T00:00:00+08:00",
        "2026-W45",
    )
    assert previous_week(local(9, 9), TZ) == p


# -- the known day, through the API ---------------------------------------------------------------
async def act(api: Api, rid: str, user: str, action: str = "approve") -> None:
    tasks = [t for t in await api.pending(user) if t["request_id"] == rid]
    assert tasks, f"{user} has no pending task on {rid}"
    body = {"action": action, "actor": user, "task_id": tasks[0]["task_id"], "version": tasks[0]["version"]}
    await api.call("POST", f"/requests/{rid}/actions", body, expect=200)


async def known_day(api: Api, clock: ManualClock) -> dict[str, str]:
    def at(hour: int, minute: int = 0) -> None:
        clock.set(local(2, hour, minute).astimezone(UTC))

    at(10)
    r1 = (await api.submit("seal_use", "u_wu", SEAL))["id"]
    at(11)
    await act(api, r1, "u_sun")
    r2 = (await api.submit("seal_use", "u_wu", SEAL))["id"]
    at(13)
    await act(api, r1, "u_wang")
    r3 = (await api.submit("seal_use", "u_wu", SEAL))["id"]
    at(13, 30)
    await act(api, r3, "u_sun")
    at(17)
    await act(api, r2, "u_sun")
    await api.call("POST", f"/requests/{r1}/actions", {"action": "urge", "actor": "u_wu"}, expect=200)
    clock.set(local(3, 10).astimezone(UTC))  # Tuesday 10:00
    return {"r1": r1, "r2": r2, "r3": r3}


def numbers(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in CSV_COLUMNS[4:])


async def stats(api: Api, query: str) -> dict[str, Any]:
    _, body = await api.call("GET", f"/stats?{query}", expect=200)
    return body  # type: ignore[return-value]


async def test_known_day_gives_exact_numbers_per_person(api: Api, clock: ManualClock):
    await known_day(api, clock)
    body = await stats(api, f"from={DAY}&to={DAY}")
    people = {r["id"]: r for r in body["people"]}
    #                                  handled median p90  median_wh p90_wh overdue reminders initiated
    assert numbers(people["u_sun"]) == (3, 1.0, 5.0, 1.0, 3.8, 1, 0, 0)
    assert numbers(people["u_wang"]) == (1, 2.0, 2.0, 1.0, 1.0, 1, 0, 0)  # R3 open past 17:30
    assert numbers(people["u_li"]) == (0, None, None, None, None, 1, 1, 0)  # R1 open, urged once
    assert numbers(people["u_wu"]) == (0, None, None, None, None, 0, 0, 3)
    assert numbers(people["u_zhang"]) == (0, None, None, None, None, 0, 0, 0)
    assert (body["from"], body["to"], body["start"], body["end"]) == (
        DAY,
        DAY,
        "2026-11-02T00:00:00+08:00",
        "2026-11-03T00:00:00+08:00",
    )


async def test_department_rows_add_up_their_members(api: Api, clock: ManualClock):
    await known_day(api, clock)
    body = await stats(api, f"from={DAY}&to={DAY}")
    depts = {r["id"]: r for r in body["departments"]}
    assert [r["id"] for r in body["departments"]] == [
        "gm_office",
        "admin_service",
        "hr_admin",
        "finance",
        "marketing",
        "engineering",
    ]
    # Median and p90 over u_sun's and u_wu's tasks pooled (u_wu decided none).
    assert numbers(depts["marketing"]) == (3, 1.0, 5.0, 1.0, 3.8, 1, 0, 3)
    assert numbers(depts["admin_service"]) == (1, 2.0, 2.0, 1.0, 1.0, 1, 0, 0)
    assert numbers(depts["gm_office"]) == (0, None, None, None, None, 1, 1, 0)
    assert numbers(depts["finance"]) == (0, None, None, None, None, 0, 0, 0)
    assert depts["marketing"]["name"] == "市场部"

    only = await stats(api, f"from={DAY}&to={DAY}&dept=marketing")
    assert [r["id"] for r in only["departments"]] == ["marketing"]
    assert [r["id"] for r in only["people"]] == ["u_sun", "u_wu"]
    assert only["department"] == "marketing"


async def test_a_period_not_yet_over_counts_open_tasks_overdue_by_now(api: Api, clock: ManualClock):
    await known_day(api, clock)  # now Tuesday 10:00; u_wang's R2 task is due Tuesday 11:00
    query = "from=2026-11-02&to=2026-11-03&dept=admin_service"
    assert (await stats(api, query))["departments"][0]["overdue"] == 1
    clock.advance(timedelta(hours=2))
    assert (await stats(api, query))["departments"][0]["overdue"] == 2


async def refused(api: Api, query: str) -> dict[str, Any]:
    status, body = await api.call("GET", f"/stats?{query}")
    assert status == 422, body
    assert isinstance(body, dict) and body["error"] == "invalid"
    return body["details"]  # type: ignore[no-any-return]


async def test_bad_queries_are_refused_with_every_problem(api: Api):
    assert await refused(api, "from=2026-02-30&colour=red") == {
        "from": "is not a real date (expected YYYY-MM-DD)",
        "to": "required: a date YYYY-MM-DD",
        "colour": "unknown query parameter; allowed: dept, from, to",
    }
    details = await refused(api, f"from={DAY}&to={DAY}&dept=nowhere")
    assert details["dept"].startswith("unknown department; known: gm_office")
    resp = await api.client.get(f"/api/v1/stats?from={DAY}&to={DAY}")  # type: ignore[attr-defined]
    assert resp.status == 401


async def test_stats_answers_match_the_openapi_schema(api: Api, clock: ManualClock):
    import jsonschema

    from bot.web.openapi import document

    await known_day(api, clock)
    body = await stats(api, f"from={DAY}&to={DAY}")
    doc = document()
    jsonschema.validate(body, {"$ref": "#/components/schemas/StatsReport", "components": doc["components"]})


# -- the command line -----------------------------------------------------------------------------
@pytest.fixture
def cli_env(org_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`oabot` commands read the test database (and no stray .env)."""
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OABOT_DATABASE_URL", settings_for(org_db).database_url)
    return tmp_path


async def oabot(*argv: str) -> int:
    # The command runs its own event loop, so it gets a thread of its own.
    return await asyncio.to_thread(main, list(argv))


async def test_cli_prints_the_table_and_writes_the_csv(api: Api, clock: ManualClock, cli_env: Path, capsys):
    await known_day(api, clock)
    out_file = cli_env / "stats.csv"
    assert await oabot("stats", "--from", DAY, "--to", DAY, "--csv", str(out_file)) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "2026-11-02 to 2026-11-02 (Asia/Shanghai)"
    assert lines[1].split() == [
        "department",
        "/",
        "person",
        "handled",
        "median",
        "h",
        "p90",
        "h",
        "median",
        "wh",
        "p90",
        "wh",
        "overdue",
        "reminders",
        "initiated",
    ]
    sun = next(line for line in lines if "(u_sun)" in line)
    assert sun.split() == ["孙丽", "(u_sun)", "3", "1.0", "5.0", "1.0", "3.8", "1", "0", "0"]
    li = next(line for line in lines if "(u_li)" in line)
    assert li.split() == ["李娜", "(u_li)", "0", "-", "-", "-", "-", "1", "1", "0"]
    assert f"wrote 17 rows to {out_file}" in err

    with out_file.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "kind",
        "id",
        "name",
        "department",
        "handled",
        "median_hours",
        "p90_hours",
        "median_working_hours",
        "p90_working_hours",
        "overdue",
        "reminders",
        "initiated",
    ]
    assert ["person", "u_sun", "孙丽", "marketing", "3", "1.0", "5.0", "1.0", "3.8", "1", "0", "0"] in rows
    assert [
        "department",
        "marketing",
        "市场部",
        "marketing",
        "3",
        "1.0",
        "5.0",
        "1.0",
        "3.8",
        "1",
        "0",
        "3",
    ] in rows
    assert out_file.read_bytes().startswith(b"\xef\xbb\xbf"), "a BOM, so spreadsheets read UTF-8"


async def test_cli_and_api_give_the_same_numbers(api: Api, clock: ManualClock, cli_env: Path, capsys):
    await known_day(api, clock)
    clock.set(local(9, 9).astimezone(UTC))  # past the period end, as the command's real clock is
    out_file = cli_env / "all.csv"
    assert await oabot("stats", "--from", "2026-11-01", "--to", "2026-11-07", "--csv", str(out_file)) == 0
    with out_file.open(encoding="utf-8-sig", newline="") as f:
        from_cli = list(csv.DictReader(f))
    body = await stats(api, "from=2026-11-01&to=2026-11-07")

    def as_text(row: dict[str, Any]) -> dict[str, str]:
        return {k: "" if v is None else str(v) for k, v in row.items()}

    from_api = [{"kind": "department", **as_text(r)} for r in body["departments"]]
    from_api += [{"kind": "person", **as_text(r)} for r in body["people"]]
    key = lambda r: (r["kind"], r["id"])  # noqa: E731
    assert sorted(from_cli, key=key) == sorted(from_api, key=key)
    assert len(from_cli) == 17


async def test_cli_bad_dates_and_department_exit_2_with_one_clear_line(cli_env: Path, capsys):
    assert await oabot("stats", "--from", "2026-11-31", "--to", DAY) == 2
    assert capsys.readouterr().err == "--from='2026-11-31': is not a real date (expected YYYY-MM-DD)\n"
    assert await oabot("stats", "--from", DAY, "--to", "2026-11-01") == 2
    assert capsys.readouterr().err == "--to='2026-11-01': ends before the start date 2026-11-02\n"
    assert await oabot("stats", "--to", DAY) == 2
    assert capsys.readouterr().err == "--from: required: a date YYYY-MM-DD\n"
    assert await oabot("stats", "--from", DAY, "--to", DAY, "--dept", "nowhere") == 2
    assert capsys.readouterr().err.startswith("--dept='nowhere': no such department; known: gm_office, ")


# -- the weekly summary ---------------------------------------------------------------------------
async def summaries(db: Database) -> list[OutboxRow]:
    async with db.session() as s:
        q = select(OutboxRow).where(OutboxRow.kind == "stats_summary").order_by(OutboxRow.id)  # type: ignore[arg-type]
        return list((await s.execute(q)).scalars().all())


async def weekly_fired(scanner: Any) -> int:
    return int((await scanner.scan_once()).fired_by_kind["stats_weekly"])


async def test_weekly_summary_goes_once_to_each_head_and_the_office(
    api: Api, clock: ManualClock, org_db: Database
):
    from bot.keys import TIMER_KINDS, TIMERS
    from deadlines.timer_kinds import TimerScanner

    await known_day(api, clock)
    await api.app[TIMERS].seed()  # type: ignore[index]  # as a (re)start during that week does
    clock.set(local(9, 9).astimezone(UTC))  # the Monday after, 09:00
    other = TimerScanner(db=org_db, kinds=api.app[TIMER_KINDS], now=clock.now)  # type: ignore[index]  # another replica
    counts = await asyncio.gather(weekly_fired(api.app[TIMERS]), weekly_fired(other))  # type: ignore[index]
    assert sorted(counts) == [0, 1]
    assert await weekly_fired(api.app[TIMERS]) == 0, "scanned again: nothing more is sent"  # type: ignore[index]

    rows = await summaries(org_db)
    heads = ["u_zhang", "u_wang", "u_zhao", "u_qian", "u_sun", "u_zhou"]  # u_zhao also holds hr_manager
    assert sorted(r.recipient for r in rows) == sorted(heads)
    text = {r.recipient: r.payload["text"] for r in rows}
    assert set(rows[0].payload) == {"text"}
    assert text["u_sun"].splitlines()[:3] == [
        "【审批周报】市场部 2026-11-02 至 2026-11-08",
        "部门合计：处理 3 件，用时中位 1 小时、90% 5 小时（工作时间中位 1 小时），超时 1 件，收到催办 0 次，发起 3 件",
        "孙丽：处理 3 件，用时中位 1 小时、90% 5 小时（工作时间中位 1 小时），超时 1 件，收到催办 0 次，发起 0 件",
    ]
    office, own = text["u_zhao"].split("\n\n")
    assert office.startswith("【审批周报】示例集团 2026-11-02 至 2026-11-08\n总经理办公室：处理 0 件")
    assert own.startswith("【审批周报】行政人事部")

    await api.drain()
    assert {r.status for r in await summaries(org_db)} == {"sent"}
    async with org_db.session() as s:
        q = select(TimerRow).where(TimerRow.kind == "stats_weekly").where(TimerRow.status == "pending")  # type: ignore[arg-type]
        pending = sorted(t.due_at for t in (await s.execute(q)).scalars().all())
    assert pending[0] == local(16, 9), "the next Monday 09:00 is scheduled"


async def test_a_weekly_summary_missed_while_down_is_sent_once_at_the_next_start(
    org_db: Database, clock: ManualClock, aiohttp_client
):
    from bot.app import create_app
    from bot.keys import TIMERS

    clock.set(local(8, 12).astimezone(UTC))  # Sunday: the service runs, the Monday timer is written
    first = create_app(settings_for(org_db), clock=clock)
    await aiohttp_client(first)
    clock.set(local(11, 15).astimezone(UTC))  # it was down all of Monday 9th and Tuesday 10th
    restarted = create_app(settings_for(org_db), clock=clock)
    await aiohttp_client(restarted)

    assert await weekly_fired(restarted[TIMERS]) == 1
    assert await weekly_fired(restarted[TIMERS]) == 0
    assert await weekly_fired(first[TIMERS]) == 0
    texts = [r.payload["text"] for r in await summaries(org_db)]
    assert len(texts) == 6 and all("2026-11-02 至 2026-11-08" in t for t in texts)


async def test_weekly_summary_goes_to_the_configured_office_role(
    org_db: Database, clock: ManualClock, aiohttp_client
):
    from bot.app import create_app
    from bot.keys import TIMERS

    clock.set(local(8, 12).astimezone(UTC))
    app = create_app(settings_for(org_db, office_role="finance_manager"), clock=clock)
    await aiohttp_client(app)
    clock.set(local(9, 9).astimezone(UTC))
    assert await weekly_fired(app[TIMERS]) == 1
    assert len(await summaries(org_db)) == 6
    text = {r.recipient: r.payload["text"] for r in await summaries(org_db)}
    assert text["u_qian"].startswith("【审批周报】示例集团")
    assert text["u_zhao"].startswith("【审批周报】行政人事部")
