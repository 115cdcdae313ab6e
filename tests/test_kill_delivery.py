"""kill -9 during 20 approval flows on PostgreSQL loses nothing and doubles no decision.

The real `oabot serve` (PostgreSQL with the in-process store, then with Redis) against the fake
WeCom, which takes 0.15 s per message/send so kills land mid-send. 20 requests are submitted at
once: 16 vehicle requests go to 王芳 (wangfang), who taps 同意 on each card as it arrives and asks
待办 now and then; 4 late ones (a step due after 10.8 s) go to 赵敏 (zhaomin), who taps only once
every rung of the reminder ladder fired: 催办 to her at half the time, the due reminder to her and
督办 to her manager 李娜 at the due time, 上报 to 张伟 after two step times. Meanwhile the server is
killed with SIGKILL and started again on the same port, each kill aimed at a moment (seeded):
while a message/send is in flight, while a stored tap is being decided, while a reminder timer is
being fired, and at a random moment.

Afterwards: every request approved exactly once; every card went out once and was closed (updated
with the click's code); every initiator got each result once; every 待办 got an answer; every rung
fired exactly once (one trail event each) and its messages reached 赵敏, 李娜 and 张伟 once each.

Timing comes from the product's leases: a process killed mid-way holds what it claimed (inbox
rows, outbox rows, timers) for its lease, set to LEASE_S here (OABOT_INBOX_LEASE_S,
OABOT_OUTBOX_LEASE_S, OABOT_TIMER_LEASE_S; 60 s by default), after which the next process takes
it over; every wait below is bounded by those leases plus the time the remaining work takes.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import col

from benchmarks.replicas import OFFICIAL, bot_command
from bot.app import open_database
from storage.approval_models import OutboxRow, TrailRow
from storage.db import Database
from storage.kv_redis import RedisStore
from storage.platform_models import InboxRow
from storage.timer_models import TimerRow
from tests.conftest import PG_URL, REDIS_URL, create_pg_schema, drop_pg_schema
from tests.e2e_harness import ServerProcess, base_env, free_port
from tests.fake_wecom import FakeWeCom, WeComCallbacks
from tests.test_e2e_wecom import AES_KEY, AGENT_ID, AUTH, CORP_ID, SECRET, TOKEN, VEHICLE

SEED = 20261130
FLOWS = 20
LATE_EVERY = 5  # every 5th flow is a late one for 赵敏 (4 of 20)
# Two initiators, so nobody gets more than WeCom's 30 messages a minute (result + check-in card
# per request) and the send limit, tested elsewhere, does not stretch the run.
INITIATORS = ("u_wu", "u_zhou")
SEND_DELAY_S = 0.15  # the fake WeCom's time per message/send
LEASE_S = 5  # the inbox, outbox and timer leases of the server under test
SCAN_S = 1.0  # how often the timer scan, the dispatcher and the inbox worker look for due work
HANDOVER_S = LEASE_S + 2 * SCAN_S  # what a killed process claimed is taken over within this
START_S = 60.0  # a server start (migrations, org import) on a loaded 2-core machine, at most
LIMIT_H = 0.003  # the late step: 10.8 s; 催办 at 5.4 s, due (and 督办) at 10.8 s, 上报 at 21.6 s
RUNG_S = {"remind": LIMIT_H * 3600 * 0.5, "due": LIMIT_H * 3600, "escalate": LIMIT_H * 3600 * 2}
# What must have happened on each late task: (trail kind, rung), once each.
CHASES = (("reminded", "remind"), ("reminded", "due"), ("supervised", "due"), ("escalated", "escalate"))
TIMER_KINDS = ("remind", "due", "escalate", "auto")
# Messages that still have to go out after the last kill, each taking SEND_DELAY_S (twice that
# on a loaded machine): results, approved notices, check-in cards, card updates, answers, pings.
TAIL_MESSAGES = 5 * FLOWS
# After the last kill everything settles within: a hand-over for each of the three queues a
# piece of work passes through (inbox → timer → outbox), a retry back-off (2 s, then 4 s), and
# the messages still to send.
SETTLE_S = 3 * HANDOVER_S + 6 + TAIL_MESSAGES * SEND_DELAY_S * 2
# A kill aimed at a moment waits for it at most this long (a killed process's claims first have
# to be handed over), then kills anyway.
AIM_S = HANDOVER_S + 5

LATE_TEMPLATE = """\
key: kill_late
name: 催办演练
category: 行政
title: "{subject}"
summary_fields: [subject]
deadlines: {quiet_hours: false}
fields:
  - {key: subject, label: 事由, type: text, required: true, max: 100}
steps:
  - key: check
    name: 人事审核
    approvers: [{user: u_zhao}]
    time_limit_hours: LIMIT
    deadlines: {remind: 0.5, supervise: 1, escalate: [2]}
"""

pytestmark = pytest.mark.skipif(PG_URL is None, reason="OABOT_TEST_DATABASE_URL is not set")


@pytest.fixture(params=["postgres", "postgres+redis"])
async def pg_env(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    assert PG_URL is not None
    if request.param == "postgres+redis" and REDIS_URL is None:
        pytest.skip("OABOT_TEST_REDIS_URL is not set")
    schema = await create_pg_schema(PG_URL)
    env = {"OABOT_DATABASE_URL": f"{PG_URL}?options=-csearch_path%3D{schema}"}
    prefix = f"oabot-kill:{uuid.uuid4().hex[:12]}:"
    with_redis = request.param == "postgres+redis"
    if with_redis:
        env.update(OABOT_REDIS_URL=str(REDIS_URL), OABOT_REDIS_PREFIX=prefix)
    try:
        yield env
    finally:
        await drop_pg_schema(PG_URL, schema)
        if with_redis and REDIS_URL:
            store = RedisStore(REDIS_URL, prefix=prefix)
            await store.purge_prefix()
            await store.close()


class Cluster:
    """One server process at a time on a fixed port, killed and started again."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "OABOT_PORT": str(self.port), "OABOT_PUBLIC_URL": self.base_url}
        self.cwd = cwd
        self.proc: ServerProcess | None = None
        self.starts = 0
        self.started_at = datetime.now(UTC)  # when the running process was started

    def claimed_since_start(self) -> datetime:
        """A `claimed_until` later than this was set by the running process: what a killed one
        claimed runs out sooner (a lease is LEASE_S from the claim)."""
        return self.started_at + timedelta(seconds=LEASE_S)

    async def start(self) -> None:
        proc = ServerProcess(self.env, self.cwd)
        proc.port, proc.base_url = self.port, self.base_url
        proc.env["OABOT_PORT"] = str(self.port)
        self.started_at = datetime.now(UTC)
        await proc.start(timeout=START_S)
        self.proc = proc
        self.starts += 1

    async def kill(self) -> None:
        assert self.proc is not None and self.proc.proc is not None
        self.proc.proc.send_signal(signal.SIGKILL)
        await self.proc.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()


class Settling:
    """Waits bounded by the last kill: while kills go on (each restart takes what it takes on a
    loaded machine), a wait goes on too; once the last server is up, everything has SETTLE_S."""

    def __init__(self) -> None:
        self.last_start: float | None = None

    async def until(self, predicate: Callable[[], Any], interval: float = 0.1) -> Any:
        while True:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            if self.last_start is not None and time.monotonic() > self.last_start + SETTLE_S:
                raise TimeoutError
            await asyncio.sleep(interval)


async def count(db: Database, statement: Any) -> int:
    async with db.session() as s:
        return int((await s.execute(statement)).scalar_one())


async def where_things_are(db: Database) -> str:
    """The outbox, inbox and reminder timers by status (for a failure message)."""
    async with db.session() as s:
        outbox = (
            await s.execute(select(col(OutboxRow.kind), col(OutboxRow.status), col(OutboxRow.last_error)))
        ).all()
        inbox = (
            await s.execute(select(col(InboxRow.kind), col(InboxRow.status), col(InboxRow.last_error)))
        ).all()
        timers = (
            await s.execute(
                select(col(TimerRow.kind), col(TimerRow.status), col(TimerRow.attempts)).where(
                    col(TimerRow.kind).in_(TIMER_KINDS)
                )
            )
        ).all()
    return (
        f"outbox {Counter(map(tuple, outbox))}; inbox {Counter(map(tuple, inbox))}; "
        f"timers {Counter(map(tuple, timers))}"
    )


def keep_logs(tmp_path: Path) -> str:
    """The servers' logs, copied where pytest's temporary-directory rotation does not remove them."""
    kept = Path(tempfile.mkdtemp(prefix="oabot-kill-logs-"))
    for log in tmp_path.glob("serve-*.log"):
        shutil.copy(log, kept / log.name)
    return str(kept)


async def post_until_taken(url: str, **kw: Any) -> httpx.Response:
    """POST, retrying while the server is down (killed, starting): at most a start's time."""
    async with httpx.AsyncClient(timeout=10) as http:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            try:
                resp = await http.post(url, **kw)
            except httpx.TransportError:
                await asyncio.sleep(0.1)
                continue
            if resp.status_code < 500:
                return resp
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered")


async def chases_of(db: Database, task_ids: list[str]) -> Counter[tuple[str, str, str]]:
    """(trail kind, rung, task) of every reminder-ladder event on these tasks."""
    async with db.session() as s:
        rows = (
            await s.execute(
                select(col(TrailRow.kind), col(TrailRow.task_id), col(TrailRow.data)).where(
                    col(TrailRow.task_id).in_(task_ids),
                    col(TrailRow.kind).in_(("reminded", "supervised", "escalated")),
                )
            )
        ).all()
    return Counter((kind, str((data or {}).get("rung") or ""), str(task)) for kind, task, data in rows)


def mentions(bodies: list[dict[str, Any]], text: str) -> int:
    return sum(1 for b in bodies if text in json.dumps(b, ensure_ascii=False))


async def test_kill_9_at_random_points_loses_nothing_and_doubles_no_decision(
    pg_env: dict[str, str], tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    wecom = await FakeWeCom(
        corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, send_delay_s=SEND_DELAY_S
    ).start()
    cb = WeComCallbacks(TOKEN, AES_KEY, CORP_ID, AGENT_ID)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "kill_late.yaml").write_text(LATE_TEMPLATE.replace("LIMIT", repr(LIMIT_H)), encoding="utf-8")
    env = base_env(
        pg_env["OABOT_DATABASE_URL"],
        **pg_env,
        OABOT_WECOM_CORP_ID=CORP_ID,
        OABOT_WECOM_AGENT_ID=str(AGENT_ID),
        OABOT_WECOM_SECRET=SECRET,
        OABOT_WECOM_TOKEN=TOKEN,
        OABOT_WECOM_AES_KEY=AES_KEY,
        OABOT_WECOM_API_BASE=wecom.base_url,
        OABOT_TEMPLATES_DIR=str(templates),
        # Every hour of today and tomorrow is working time, so the late step's rungs come after
        # seconds whenever the test runs (a weekend or holiday is made a working day below).
        OABOT_TIMEZONE="UTC",
        OABOT_WORKING_HOURS="00:00-24:00",
        OABOT_OUTBOX_LEASE_S=str(LEASE_S),
        OABOT_INBOX_LEASE_S=str(LEASE_S),
        OABOT_TIMER_LEASE_S=str(LEASE_S),
        OABOT_TIMER_SCAN_INTERVAL_S=str(SCAN_S),
    )
    today = datetime.now(UTC).date()
    for day in (today, today + timedelta(days=1)):
        if not OFFICIAL.is_working_day(day):
            await bot_command(env, tmp_path, "migrate")
            await bot_command(env, tmp_path, "calendar", "add-workday", day.isoformat(), "--reason", "演练")
    db = open_database(pg_env["OABOT_DATABASE_URL"])
    cluster = Cluster(env, tmp_path)
    await cluster.start()
    hits: list[str] = []  # what each kill landed on
    try:
        late = [n for n in range(FLOWS) if n % LATE_EVERY == LATE_EVERY - 1]
        ids: dict[int, str] = {}
        for n in [*late, *(n for n in range(FLOWS) if n not in late)]:  # the late ones first
            if n in late:
                body = {
                    "template": "kill_late",
                    "initiator": INITIATORS[n % 2],
                    "form": {"subject": f"演练{n:02d}"},
                }
            else:
                body = {"template": "vehicle_dispatch", "initiator": INITIATORS[n % 2], "form": VEHICLE}
            resp = await post_until_taken(f"{cluster.base_url}/api/v1/requests", json=body, headers=AUTH)
            assert resp.status_code == 201, resp.text
            ids[n] = resp.json()["id"]
            if n == late[-1]:
                late_at = time.monotonic()  # the late steps' clocks start about now
        late_tasks = [f"{ids[n]}-1" for n in late]
        late_ids = {ids[n] for n in late}

        async def in_flight_send() -> bool:
            return wecom.sending > 0

        async def deciding() -> bool:
            return bool(
                await count(
                    db,
                    select(func.count())
                    .select_from(InboxRow)
                    .where(
                        col(InboxRow.status) == "working",
                        col(InboxRow.kind) == "card_action",
                        col(InboxRow.claimed_until) > cluster.claimed_since_start(),
                    ),
                )
            )

        async def firing() -> bool:
            return bool(
                await count(
                    db,
                    select(func.count())
                    .select_from(TimerRow)
                    .where(
                        col(TimerRow.status) == "firing",
                        col(TimerRow.kind).in_(TIMER_KINDS),
                        col(TimerRow.claimed_until) > cluster.claimed_since_start(),
                    ),
                )
            )

        async def anytime() -> bool:
            return True

        async def kill_on(
            what: str, seen: Callable[[], Awaitable[bool]], start: float, window_s: float
        ) -> None:
            """Kill the server the moment `seen` holds, looked at from `start` for `window_s`;
            at the window's end regardless."""
            await asyncio.sleep(max(0.0, start - time.monotonic()))
            end = time.monotonic() + window_s
            landed = "nothing in particular"
            while time.monotonic() < end:
                if await seen():
                    landed = what
                    break
                await asyncio.sleep(0.005)
            await cluster.kill()
            hits.append(landed)
            await cluster.start()

        async def kills() -> None:
            now = time.monotonic
            await kill_on("a message/send", in_flight_send, now() + rng.uniform(0.1, 1.0), AIM_S)
            await kill_on("a decision", deciding, now() + rng.uniform(0.1, 1.0), AIM_S)
            await kill_on("a timer firing", firing, late_at + RUNG_S["remind"] - 0.5, AIM_S)
            await kill_on("a random moment", anytime, now() + rng.uniform(0.1, 1.5), 0)
            await kill_on("a timer firing", firing, late_at + RUNG_S["escalate"] - 0.5, AIM_S)
            settling.last_start = time.monotonic()

        settling = Settling()
        codes: dict[str, str] = {}
        questions = 0
        msg_ids = iter(range(7_100_000_000_000_000_000, 7_200_000_000_000_000_000))

        async def card_of(account: str, rid: str) -> dict[str, Any]:
            def found() -> dict[str, Any] | None:
                return next(
                    (
                        c["template_card"]
                        for c in wecom.cards_to(account)
                        if c["template_card"]["task_id"].startswith(f"oa_{rid}-")
                    ),
                    None,
                )

            card: dict[str, Any] = await settling.until(found, interval=0.05)
            return card

        async def tap(account: str, rid: str) -> None:
            card = await card_of(account, rid)
            code = wecom.click_code()
            codes[rid] = code
            query, body = cb.seal(cb.card_click_xml(account, card["task_id"], "approve", code))
            await post_until_taken(
                f"{cluster.base_url}/callbacks/wecom",
                params=query,
                content=body,
                headers={"Content-Type": "text/xml"},
            )

        async def wangfang() -> None:
            nonlocal questions
            for k, n in enumerate(n for n in range(FLOWS) if n not in late):
                await tap("wangfang", ids[n])
                if k % 4 == 3:
                    query, body = cb.seal(cb.text_xml("wangfang", "待办", next(msg_ids)))
                    await post_until_taken(
                        f"{cluster.base_url}/callbacks/wecom",
                        params=query,
                        content=body,
                        headers={"Content-Type": "text/xml"},
                    )
                    questions += 1

        async def zhaomin() -> None:
            for n, task in zip(late, late_tasks, strict=True):

                async def chased(task: str = task) -> bool:
                    done = await chases_of(db, [task])
                    return all(done[(kind, rung, task)] for kind, rung in CHASES)

                await settling.until(chased, interval=0.3)
                await tap("zhaomin", ids[n])

        began = time.monotonic()
        try:
            async with asyncio.TaskGroup() as tasks:  # one failing stops the others (no kill after it)
                for work in (kills(), wangfang(), zhaomin()):
                    tasks.create_task(work)
        except* TimeoutError:
            raise AssertionError(
                f"a card or a rung never came; kills landed on {hits}; {await where_things_are(db)}; "
                f"logs: {keep_logs(tmp_path)}"
            ) from None
        print(f"kills and taps took {time.monotonic() - began:.1f} s; kills landed on {hits}")

        def results() -> list[str]:
            return [t for a in ("wuhao", "zhoujie") for t in wecom.texts_to(a) if "已通过" in t]

        def answers() -> list[str]:
            # 待办's answer: "您有 N 条待办：…", or "您当前没有待办审批。" once her taps were all decided.
            return [t for t in wecom.texts_to("wangfang") if t.startswith(("您有 ", "您当前没有待办"))]

        def pings(account: str, n: int) -> int:
            """The ladder's messages about late flow `n` to `account` (赵敏's own task card aside)."""
            bodies = [
                b
                for b in wecom.delivered
                if b["touser"] == account and (account != "zhaomin" or b["msgtype"] != "template_card")
            ]
            return mentions(bodies, f"演练{n:02d}")

        async def all_approved() -> bool:
            statuses = await count(
                db,
                select(func.count())
                .select_from(OutboxRow)
                .where(col(OutboxRow.status).in_(("pending", "sending"))),
            )
            async with httpx.AsyncClient(timeout=10) as http:
                for rid in ids.values():
                    try:
                        view = (
                            await http.get(f"{cluster.base_url}/api/v1/requests/{rid}", headers=AUTH)
                        ).json()
                    except httpx.TransportError:
                        return False
                    if view.get("status") != "approved":
                        return False
            return statuses == 0

        def delivered() -> bool:
            return (
                len(results()) >= FLOWS
                and len(wecom.updates) >= FLOWS
                and len(answers()) >= questions
                and all(
                    pings("zhaomin", n) >= 2 and pings("lina", n) >= 1 and pings("zhangwei", n) >= 1
                    for n in late
                )
            )

        try:
            await settling.until(all_approved, interval=0.5)
            print(f"all approved {time.monotonic() - began:.1f} s after the first request")
            await settling.until(delivered)
        except TimeoutError:
            raise AssertionError(
                f"not settled {SETTLE_S:.0f} s after the last kill: results {len(results())}, card updates "
                f"{len(wecom.updates)}, answers {len(answers())} of {questions}, pings "
                f"{[(pings('zhaomin', n), pings('lina', n), pings('zhangwei', n)) for n in late]}, dropped as "
                f"duplicates {len(wecom.duplicates_dropped)}, over the limit {len(wecom.dropped_over_limit)}; "
                f"kills landed on {hits}; {await where_things_are(db)}; logs: {keep_logs(tmp_path)}"
            ) from None

        print(f"settled {time.monotonic() - began:.1f} s after the first request")
        async with httpx.AsyncClient(timeout=10) as http:
            views = [
                (await http.get(f"{cluster.base_url}/api/v1/requests/{rid}", headers=AUTH)).json()
                for rid in ids.values()
            ]
        chases = await chases_of(db, late_tasks)
    finally:
        await cluster.stop()
        await wecom.stop()
        await db.dispose()

    report = f"kills landed on {hits}"
    assert cluster.starts == len(hits) + 1
    # each kind of moment was hit at least once (a timer fire: while a reminder rung was claimed)
    assert {"a message/send", "a decision", "a timer firing"} <= set(hits), report
    for view in views:
        decided = [(e["kind"], e["actor"]) for e in view["trail"] if e["kind"] in ("approved", "rejected")]
        approver = "u_zhao" if view["id"] in late_ids else "u_wang"
        assert decided == [("approved", approver)], f"{view['id']}: {decided}; {report}"
    cards = Counter(c["template_card"]["task_id"] for a in ("wangfang", "zhaomin") for c in wecom.cards_to(a))
    assert len(cards) == FLOWS and set(cards.values()) == {1}, (
        f"each card reached its approver once; {report}"
    )
    assert sorted(u["response_code"] for u in wecom.updates) == sorted(codes.values()), "every card closed"
    assert len(results()) == FLOWS, "each result once (WeCom's duplicate check drops a resend)"
    assert len(answers()) >= questions, (
        "every 待办 answered (at least once: a chat answer has no duplicate check)"
    )
    for task in late_tasks:
        assert [chases[(kind, rung, task)] for kind, rung in CHASES] == [1, 1, 1, 1], (
            f"{task}: {chases}; {report}"
        )
    for n in late:
        assert (pings("zhaomin", n), pings("lina", n), pings("zhangwei", n)) == (2, 1, 1), (
            f"演练{n:02d}; {report}"
        )
