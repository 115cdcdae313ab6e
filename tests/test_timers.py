"""Timers in the database, fired by the scan: each rung once at its time, cancelled when the task
is done, held over quiet hours, fired after a restart, and once only with two scanners at once.

Runs on SQLite and (when configured) PostgreSQL. The clock is a ManualClock; the scan is driven
by hand (background jobs are off in tests), exactly as the APScheduler job would call it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from approvals.clock import ManualClock
from bot.app import create_app
from bot.keys import LINKS, TIMERS, WORKFLOW
from deadlines import timers
from deadlines.timer_kinds import FireResult, TimerKinds, TimerScanner
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.timer_models import TimerRow
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
PINGS = ("remind", "supervise", "escalate")


def sh(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=SH)


def service(api: Api) -> TimerScanner:
    """The app's one timer scan (background jobs are off: tests drive it by hand)."""
    return api.app[TIMERS]  # type: ignore[index,no-any-return]


async def pings(db: Database, request_id: str | None = None) -> list[tuple[str, str]]:
    """(kind, recipient) of every reminder-ladder message in the outbox, oldest first."""
    q = select(OutboxRow).where(OutboxRow.kind.in_(PINGS)).order_by(OutboxRow.id)  # type: ignore[attr-defined,arg-type]
    if request_id is not None:
        q = q.where(OutboxRow.request_id == request_id)  # type: ignore[arg-type]
    async with db.session() as s:
        return [(r.kind, r.recipient) for r in (await s.execute(q)).scalars().all()]


async def timer_rows(db: Database, request_id: str) -> list[TimerRow]:
    async with db.session() as s:
        return await timers.timers_of(s, request_id=request_id)


async def trail_kinds(api: Api, rid: str) -> list[str]:
    _, view = await api.call("GET", f"/requests/{rid}", expect=200)
    return [e["kind"] for e in view["trail"]]  # type: ignore[index]


async def second_app(org_db: Database, aiohttp_client: Any, clock: ManualClock) -> Api:
    """Another replica (or the service after a restart) on the same database."""
    app = create_app(settings_for(org_db), clock=clock)
    return Api(await aiohttp_client(app), app)


# -- writing timers --------------------------------------------------------------------------------
async def test_a_pending_task_gets_its_ladder_in_the_same_transaction(api: Api, org_db: Database) -> None:
    req = await api.submit("seal_use", "u_wu", SEAL)  # Monday 10:00, 孙丽 holds the first step

    rows = await timer_rows(org_db, req["id"])

    assert [(r.kind, r.status, r.due_at.astimezone(SH)) for r in rows] == [
        ("remind", "pending", sh(11, 23, 12)),
        ("due", "pending", sh(11, 23, 15, 30)),
        ("escalate", "pending", sh(11, 24, 10, 30)),
    ]
    task = req["steps"][0]["tasks"][0]
    assert {r.task_id for r in rows} == {task["id"]}
    assert task["due_at"] == sh(11, 23, 15, 30).isoformat() or datetime.fromisoformat(task["due_at"]) == sh(
        11, 23, 15, 30
    )


# -- firing ---------------------------------------------------------------------------------------
async def test_each_rung_fires_once_at_its_time(api: Api, org_db: Database, clock: ManualClock) -> None:
    req = await api.submit("seal_use", "u_wu", SEAL)
    scan = service(api).scan_once

    clock.set(sh(11, 23, 11, 59, 59))
    assert (await scan()).fired == 0
    clock.set(sh(11, 23, 12))
    first = await scan()
    assert (first.fired, first.max_drift_s) == (1, 0.0)
    assert await pings(org_db) == [("remind", "u_sun")]
    assert (await scan()).claimed == 0  # nothing fires twice

    clock.set(sh(11, 23, 15, 30, 1))
    assert (await scan()).max_drift_s == 1.0  # the due rung (and the 15:30 digest) one second late
    assert await pings(org_db) == [("remind", "u_sun"), ("remind", "u_sun"), ("supervise", "u_li")]

    clock.set(sh(11, 24, 10, 30))
    await scan()
    assert (await pings(org_db))[-1] == ("escalate", "u_zhang")  # 孙丽 → 李娜 → 张伟

    kinds = await trail_kinds(api, req["id"])
    assert [k for k in kinds if k in ("reminded", "supervised", "escalated")] == [
        "reminded",
        "reminded",
        "supervised",
        "escalated",
    ]
    assert await api.app[WORKFLOW].verify_trail(req["id"]) == {}  # type: ignore[index]
    assert {r.status for r in await timer_rows(org_db, req["id"])} == {"done"}


async def test_supervision_message_says_who_what_and_how_late(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    req = await api.submit("seal_use", "u_wu", SEAL)
    clock.set(sh(11, 23, 16, 10))  # the 15:30 rung fires 40 minutes late (the service was busy)

    await service(api).scan_once()

    async with org_db.session() as s:
        row = (await s.execute(select(OutboxRow).where(OutboxRow.kind == "supervise"))).scalar_one()  # type: ignore[arg-type]
    assert row.recipient == "u_li" and row.request_id == req["id"]
    assert row.payload["text"].startswith("【督办】孙丽 的待办已超时 40 分钟：「用章申请」")
    assert row.payload["task_id"] == req["steps"][0]["tasks"][0]["id"]
    buttons = {b["label"]: b for b in row.payload["card"]["buttons"]}
    url = buttons["查看"]["url"]
    assert url == row.payload["link"] and url.startswith("http://oabot.test/m/l/")
    target = await api.app[LINKS].read(url.rsplit("/", 1)[1])  # type: ignore[index]
    assert (target.user, target.path) == ("u_li", f"/m/r/{req['id']}")  # the manager's own link
    # 转交 opens the person picker of this task version, signed in as the manager too.
    picker = await api.app[LINKS].read(buttons["转交"]["url"].rsplit("/", 1)[1])  # type: ignore[index]
    task = req["steps"][0]["tasks"][0]
    assert (picker.user, picker.path) == ("u_li", f"/m/s/{task['id']}/{row.payload['version']}")


async def test_pings_stop_the_moment_the_task_is_done(api: Api, org_db: Database, clock: ManualClock) -> None:
    req = await api.submit("seal_use", "u_wu", SEAL)
    clock.set(sh(11, 23, 11))
    await api.decide("u_sun")  # before any rung of 孙丽's task

    rows = await timer_rows(org_db, req["id"])
    sun, wang = rows[0].task_id, next(r.task_id for r in rows if r.task_id != rows[0].task_id)
    assert {r.status for r in rows if r.task_id == sun} == {"cancelled"}
    assert {r.status for r in rows if r.task_id == wang} == {"pending"}  # the next step's ladder

    clock.set(sh(11, 23, 15, 31))
    await service(api).scan_once()
    assert ("remind", "u_sun") not in await pings(org_db)
    assert await pings(org_db) == [("remind", "u_wang")]  # her half-time reminder (14:30)


async def test_a_finished_request_leaves_no_live_timer(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    req = await api.submit(
        "leave",
        "u_wu",
        {
            "leave_type": "事假",
            "period": {"start": "2026-11-24", "end": "2026-11-24"},
            "days": 1,
            "reason": "家中有事",
        },
    )
    await api.call(
        "POST", f"/requests/{req['id']}/actions", {"action": "withdraw", "actor": "u_wu"}, expect=200
    )

    assert {r.status for r in await timer_rows(org_db, req["id"])} == {"cancelled"}


async def test_a_rung_that_falls_on_a_new_holiday_waits_for_working_time(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    await api.submit("seal_use", "u_wu", SEAL)  # escalation planned for Tuesday 10:30
    await api.call(
        "POST",
        "/calendar/overrides",
        {"date": "2026-11-24", "kind": "holiday", "reason": "公司活动"},
        expect=201,
    )

    clock.set(sh(11, 23, 15, 31))
    await service(api).scan_once()  # Monday's rungs
    clock.set(sh(11, 24, 10, 30))
    stats = await service(api).scan_once()

    assert (stats.deferred, stats.fired) == (1, 0)
    clock.set(sh(11, 25, 9))
    assert (await service(api).scan_once()).fired == 1
    assert (await pings(org_db))[-1] == ("escalate", "u_zhang")


async def test_urgent_requests_are_chased_outside_working_hours(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    clock.set(sh(11, 23, 16))
    req = await api.submit("seal_use", "u_wu", SEAL, urgency="urgent")  # 紧急: due within 6 h, at 22:00
    due = next(r for r in await timer_rows(org_db, req["id"]) if r.kind == "due")
    assert due.due_at.astimezone(SH) == sh(11, 23, 22)

    clock.set(sh(11, 23, 22))
    await service(api).scan_once()

    assert ("supervise", "u_li") in await pings(org_db)


# -- exactly once ----------------------------------------------------------------------------------
async def test_timers_due_while_the_service_was_down_fire_once_at_the_next_start(
    api: Api, org_db: Database, aiohttp_client: Any
) -> None:
    req = await api.submit("seal_use", "u_wu", SEAL)
    # The service stops; it comes back on Tuesday at noon, when all three rungs are past due.
    later = ManualClock(sh(11, 24, 12))
    restarted = await second_app(org_db, aiohttp_client, later)

    first = await service(restarted).scan_once()
    again = await service(restarted).scan_once()

    assert await pings(org_db, req["id"]) == [
        ("remind", "u_sun"),
        ("remind", "u_sun"),
        ("supervise", "u_li"),
        ("escalate", "u_zhang"),
    ]
    assert first.fired >= 3 and again.claimed == 0
    assert {r.status for r in await timer_rows(org_db, req["id"])} == {"done"}


async def test_two_scanners_on_one_database_fire_each_timer_exactly_once(
    api: Api, org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    ids = [(await api.submit("seal_use", "u_wu", {**SEAL, "copies": n + 1}))["id"] for n in range(12)]
    clock.set(sh(11, 24, 12))
    other = await second_app(org_db, aiohttp_client, clock)  # its own Database object, same schema
    a, b = service(api), service(other)
    a.batch_size = b.batch_size = 5  # many small claims, so the two really interleave

    stats = await asyncio.gather(a.scan_once(), b.scan_once(), a.scan_once(), b.scan_once())

    async with org_db.session() as s:
        rows = (await s.execute(select(OutboxRow).where(OutboxRow.kind.in_(PINGS)))).scalars().all()  # type: ignore[attr-defined]
        timer_list = (
            (await s.execute(select(TimerRow).where(TimerRow.kind.in_(timers.TASK_KINDS)))).scalars().all()
        )  # type: ignore[attr-defined]
    per_ping = Counter((r.request_id, r.kind, r.recipient, r.payload["rung"]) for r in rows)
    assert len(per_ping) == 4 * len(ids)  # remind, due→remind, due→supervise, escalate per request
    assert set(per_ping.values()) == {1}
    assert {t.status for t in timer_list} == {"done"} and len(timer_list) == 3 * len(ids)
    assert sum(s.fired for s in stats) >= 3 * len(ids)
    for rid in ids:
        assert await api.app[WORKFLOW].verify_trail(rid) == {}  # type: ignore[index]


async def test_a_scanner_that_died_holding_timers_is_taken_over_after_its_lease(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    await api.submit("seal_use", "u_wu", SEAL)
    clock.set(sh(11, 23, 12))
    [stale] = await timers.claim_due(org_db, now=clock.now())  # claimed, then the process died

    assert (await service(api).scan_once()).claimed == 0  # leased: nobody else touches it
    clock.set(sh(11, 23, 13, 30))  # the 60 s lease is long gone (and lunch is over)
    assert (await service(api).scan_once()).fired == 1
    async with org_db.transaction() as s:
        assert not await timers.finish(s, stale, now=clock.now())  # the dead claim can't finish it
    assert await pings(org_db) == [("remind", "u_sun")]


# -- automatic decisions ---------------------------------------------------------------------------
def _with_deadlines(api: Api, key: str, deadlines: dict[str, Any]) -> None:
    templates = api.app[WORKFLOW].d.templates  # type: ignore[index]
    templates[key] = replace(templates[key], deadlines=deadlines)


async def test_auto_approve_at_its_point_is_in_the_trail_with_its_reason(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    _with_deadlines(
        api,
        "seal_use",
        {"escalate": False, "auto": {"action": "approve", "at": 2, "reason": "超时未处理，系统自动同意"}},
    )
    req = await api.submit("seal_use", "u_wu", SEAL)

    clock.set(sh(11, 24, 10, 30))
    await service(api).scan_once()

    _, view = await api.call("GET", f"/requests/{req['id']}", expect=200)
    auto = next(e for e in view["trail"] if e["kind"] == "auto_approved")  # type: ignore[index]
    assert (auto["actor"], auto["comment"], auto["task_id"]) == (
        "system",
        "超时未处理，系统自动同意",
        req["steps"][0]["tasks"][0]["id"],
    )
    assert [t["assignee"] for t in await api.pending("u_wang")] == ["u_wang"]  # the next step started
    assert any(
        r.task_id != auto["task_id"] and r.status == "pending" for r in await timer_rows(org_db, req["id"])
    )
    assert await api.app[WORKFLOW].verify_trail(req["id"]) == {}  # type: ignore[index]


async def test_auto_transfer_goes_to_the_managers_desk(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    _with_deadlines(api, "seal_use", {"auto": {"action": "transfer", "at": 1.5}})
    req = await api.submit("seal_use", "u_wu", SEAL)

    clock.set(sh(11, 24, 10))
    await service(api).scan_once()

    _, view = await api.call("GET", f"/requests/{req['id']}", expect=200)
    moved = next(e for e in view["trail"] if e["kind"] == "auto_transferred")  # type: ignore[index]
    assert (moved["before"], moved["after"]) == ("u_sun", "u_li")
    assert "自动转交直属领导" in moved["comment"]
    assert [t["request_id"] for t in await api.pending("u_li")] == [req["id"]]
    assert await api.pending("u_sun") == []


# -- the kind registry -----------------------------------------------------------------------------
async def test_a_timer_of_an_unknown_kind_is_failed_and_the_others_still_fire(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    await api.submit("seal_use", "u_wu", SEAL)
    async with org_db.transaction() as s:
        s.add(
            TimerRow(
                kind="from_the_future",
                status="pending",
                due_at=clock.now(),
                key="from_the_future:1",
                data={},
                created_at=clock.now(),
            )
        )
    clock.set(sh(11, 23, 12))

    stats = await service(api).scan_once()

    assert (stats.failed, stats.fired) == (1, 1)
    async with org_db.session() as s:
        row = (await s.execute(select(TimerRow).where(TimerRow.key == "from_the_future:1"))).scalar_one()  # type: ignore[arg-type]
    assert (row.status, row.last_error) == ("failed", "unknown kind from_the_future")
    assert await pings(org_db) == [("remind", "u_sun")]


def test_a_kind_has_one_handler() -> None:
    kinds = TimerKinds()

    async def handler(timer: timers.Timer) -> FireResult:
        return FireResult.FIRED

    kinds.register(timers.TimerKind.DIGEST, handler)
    with pytest.raises(ValueError, match="digest"):
        kinds.register(timers.TimerKind.DIGEST, handler)
