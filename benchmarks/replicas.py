"""Benchmark: three oabot replicas on one PostgreSQL and Redis, proven exactly-once.

    python benchmarks/replicas.py --url postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        --redis redis://127.0.0.1:6379/15 [--flows 50] [--seed 16]

Starts a fake WeCom (tests/fake_wecom.py) and three real `python -m bot serve` processes, each on
its own port, on a fresh PostgreSQL schema and Redis key prefix (both removed at the end). Then
runs `--flows` approval flows of two or three steps, submitted through the REST API of the
replicas in turn. Every approver taps the card WeCom showed them: the click is one encrypted
callback delivered three times, each time to a different replica picked with the seed (a replica
that is down is skipped, as a load balancer would). Every fifth flow uses a template whose first
step is due after a few seconds and waits until the approver was reminded 催办 and the managers
pinged 督办 and escalated 上报 before tapping.

While the flows run:

- replica 1 is killed with SIGKILL in the middle of a callback (its inbox write is held back by a
  table lock so the kill lands between "seen" and "stored"), and started again;
- the WeCom access token is expired once (the fake answers 42001 from then on);
- every replica in turn is stopped with SIGTERM and started again (a rolling restart).

Finally it counts, from the database (tasks, trail, outbox, inbox, timers) and from what the fake
WeCom recorded (cards sent, cards updated, gettoken calls), prints expected against observed and
exits 1 on any mismatch. `tests/test_replicas.py` runs the same scenario, smaller.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deadlines.calendar import WorkingCalendar  # noqa: E402
from storage.kv_redis import RedisStore  # noqa: E402
from tests.conftest import create_pg_schema, drop_pg_schema  # noqa: E402
from tests.e2e_harness import ServerProcess, base_env, wait_until  # noqa: E402
from tests.fake_wecom import FakeWeCom, WeComCallbacks  # noqa: E402

CORP_ID = "wwreplica0123456789"
AGENT_ID = 1000016
SECRET = "replica-app-secret"
TOKEN = "replicaCallbackToken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
API_TOKEN = "replica-token-0123456789"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
VICTIM = 1  # the replica killed with SIGKILL

# Who taps what, per kind of flow (initiator 吴昊 u_wu; his manager is 孙丽 sunli).
ROUTES: dict[str, list[tuple[str, str]]] = {
    "approve": [("sunli", "approve"), ("wangfang", "approve"), ("chenjing", "approve")],
    "reject": [("sunli", "approve"), ("wangfang", "reject")],
    "chase": [("sunli", "approve"), ("wangfang", "approve")],
}
FINAL_STATUS = {"approve": "approved", "reject": "rejected", "chase": "approved"}
OFFICIAL = WorkingCalendar(ZoneInfo("UTC"), [(dtime(0), dtime(23, 59))])  # official days off only
CHASE_KINDS = ("reminded", "supervised", "escalated")  # trail events of the reminder ladder
CHASE_RUNGS = (("reminded", "remind"), ("reminded", "due"), ("supervised", "due"), ("escalated", "escalate"))

FLOW_TEMPLATE = """\
key: replica_flow
name: 多副本审批
category: 行政
title: "{subject}"
summary_fields: [subject]
policies: {consecutive_same_approver: keep}
fields:
  - {key: subject, label: 事由, type: text, required: true, max: 100}
steps:
  - {key: manager, name: 直属领导审批, approvers: [{manager: 1}]}
  - {key: admin, name: 行政审批, approvers: [{user: u_wang}]}
  - {key: seal, name: 用印, approvers: [{user: u_chen}]}
"""

CHASE_TEMPLATE = """\
key: replica_chase
name: 多副本催办
category: 行政
title: "{subject}"
summary_fields: [subject]
policies: {consecutive_same_approver: keep}
deadlines: {quiet_hours: false}
fields:
  - {key: subject, label: 事由, type: text, required: true, max: 100}
steps:
  - key: manager
    name: 直属领导审批
    approvers: [{manager: 1}]
    time_limit_hours: LIMIT
    deadlines: {remind: 0.5, supervise: 1, escalate: [2]}
  - {key: admin, name: 行政审批, approvers: [{user: u_wang}]}
"""


@dataclass(frozen=True)
class Config:
    flows: int = 50
    concurrency: int = 12  # flows in progress at once
    chase_every: int = 5  # every n-th flow waits for its reminder, 督办 and escalation
    reject_every: int = 7  # every n-th other flow is rejected at its second step
    chase_limit_hours: float = 0.005  # 18 s: reminded at 9 s, 督办 at 18 s, escalated at 36 s
    deliveries: int = 3  # each callback, to this many replicas
    replicas: int = 3
    seed: int = 16
    timeout_s: float = 150.0  # for any one wait (a killed replica's leases run out after 60 s)


@dataclass(frozen=True)
class Flow:
    index: int
    kind: str

    @property
    def template(self) -> str:
        return "replica_chase" if self.kind == "chase" else "replica_flow"

    @property
    def route(self) -> list[tuple[str, str]]:
        return ROUTES[self.kind]


def plan(config: Config) -> list[Flow]:
    flows = []
    for i in range(config.flows):
        if i % config.chase_every == config.chase_every // 2:
            kind = "chase"
        elif i % config.reject_every == config.reject_every // 2:
            kind = "reject"
        else:
            kind = "approve"
        flows.append(Flow(i, kind))
    return flows


@dataclass
class Row:
    key: str
    what: str
    expected: int
    observed: int

    @property
    def ok(self) -> bool:
        return self.expected == self.observed


@dataclass
class Outcome:
    rows: list[Row]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def table(self) -> str:
        width = max(_width(r.what) for r in self.rows)
        lines = [f"{'':{width}}  expected  observed", f"{'-' * width}  --------  --------"]
        for r in self.rows:
            mark = "" if r.ok else "   <-- MISMATCH"
            pad = " " * (width - _width(r.what))
            lines.append(f"{r.what}{pad}  {r.expected:>8}  {r.observed:>8}{mark}")
        return "\n".join(lines)

    def row(self, key: str) -> Row:
        return next(r for r in self.rows if r.key == key)


def _width(text: str) -> int:
    """Columns `text` takes in a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# -- the replicas -----------------------------------------------------------------------------
class Replica(ServerProcess):
    """A `python -m bot serve` process that can be killed, stopped and started again on its port."""

    def __init__(self, env: dict[str, str], cwd: Path, number: int) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        super().__init__(env, cwd)
        self.number = number
        self.starts = 0
        self.up = False

    async def start(self, timeout: float = 90.0) -> Replica:
        self.starts += 1
        self.log_path = self.cwd / f"replica-{self.number}-start-{self.starts}.log"
        await super().start(timeout)
        self.up = True
        return self

    async def kill9(self) -> int:
        assert self.proc is not None
        self.up = False
        self.proc.kill()
        return await self.proc.wait()

    async def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.up = False
        self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout):
            return await self.proc.wait()


class Front:
    """What stands between WeCom (and API callers) and the replicas: a request goes to the chosen
    replica, and to the next one while that one is down or answers 5xx."""

    def __init__(self, replicas: Sequence[Replica], http: httpx.AsyncClient) -> None:
        self.replicas = replicas
        self.http = http
        self.failovers = 0
        self.refused: list[str] = []  # callbacks answered with anything but an empty 200
        self.server_errors: list[str] = []  # 5xx answers (tried again on the next replica)

    async def request(self, first: int, method: str, path: str, **kw: Any) -> httpx.Response:
        n = len(self.replicas)
        for attempt in range(200):
            replica = self.replicas[(first + attempt) % n]
            if not replica.up:
                self.failovers += 1
                await asyncio.sleep(0.05 if attempt % n else 0.3)
                continue
            try:
                resp = await self.http.request(method, replica.base_url + path, **kw)
            except httpx.TransportError:
                self.failovers += 1
                await asyncio.sleep(0.1)
                continue
            if resp.status_code >= 500:
                self.server_errors.append(f"{method} {path} -> {resp.status_code} {resp.text[:200]}")
                self.failovers += 1
                await asyncio.sleep(0.1)
                continue
            return resp
        raise RuntimeError(f"no replica answered {method} {path}")

    async def callback(self, first: int, query: dict[str, str], body: bytes) -> None:
        resp = await self.request(
            first,
            "POST",
            "/callbacks/wecom",
            params=query,
            content=body,
            headers={"Content-Type": "text/xml"},
        )
        if resp.status_code != 200 or resp.content != b"":
            self.refused.append(f"{resp.status_code} {resp.text[:200]}")


# -- the run ----------------------------------------------------------------------------------
class Scenario:
    def __init__(
        self,
        config: Config,
        *,
        db_url: str,
        schema: str,
        wecom: FakeWeCom,
        replicas: list[Replica],
        front: Front,
        say: Callable[[str], None],
    ) -> None:
        self.config = config
        self.db_url, self.schema = db_url, schema
        self.wecom = wecom
        self.replicas = replicas
        self.front = front
        self.started = time.perf_counter()
        self._say = say
        self.rng = random.Random(config.seed)
        self.callbacks = WeComCallbacks(TOKEN, AES_KEY, CORP_ID, AGENT_ID)
        self.flows = plan(config)
        self.total_taps = sum(len(f.route) for f in self.flows)
        self.taps = 0
        self.request_ids: dict[int, str] = {}
        self.expiries = 0
        self.sigterm_exits: list[int] = []
        self.crash_wanted = asyncio.Event()
        self.crash_done = asyncio.Event()
        self.notes: list[str] = []
        self.stuck: list[int] = []

    def say(self, text: str) -> None:
        self._say(f"{time.perf_counter() - self.started:6.1f} s  {text}")

    # -- database ----------------------------------------------------------------------------
    async def connect(self) -> asyncpg.Connection:
        dsn = self.db_url.split("?")[0].replace("postgresql+asyncpg://", "postgresql://", 1)
        return await asyncpg.connect(dsn, server_settings={"search_path": self.schema})

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await self.connect()
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    # -- one flow ----------------------------------------------------------------------------
    async def run_flow(self, flow: Flow) -> None:
        resp = await self.front.request(
            flow.index,
            "POST",
            "/api/v1/requests",
            json={
                "template": flow.template,
                "initiator": "u_wu",
                "form": {"subject": f"多副本 第{flow.index + 1}号"},
                "idempotency_key": f"replicas-flow-{flow.index}",
            },
            headers=AUTH,
        )
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"flow {flow.index}: submit answered {resp.status_code} {resp.text}")
        request_id = str(resp.json()["id"])
        self.request_ids[flow.index] = request_id
        for step, (account, key) in enumerate(flow.route):
            card_id = await self.card_for(account, request_id)
            if flow.kind == "chase" and step == 0:
                await self.wait_chased(card_id.split("_")[1])
            await self.tap(account, card_id, key)
        await self.wait_status(request_id, FINAL_STATUS[flow.kind])

    async def card_for(self, account: str, request_id: str) -> str:
        def found() -> str | None:
            for body in self.wecom.cards_to(account):
                card_id = str(body["template_card"]["task_id"])
                if card_id.startswith(f"oa_{request_id}-"):
                    return card_id
            return None

        return str(await wait_until(found, timeout=self.config.timeout_s, interval=0.1))

    async def wait_chased(self, task_id: str) -> None:
        """Until every rung of the late task fired: 催办, the due reminder, 督办 and 上报. A rung
        held by a killed replica fires when its lease runs out, so this may take a minute."""

        async def chased() -> bool:
            rows = await self.fetch(
                "SELECT kind, data FROM trail_events WHERE task_id = $1 AND kind = ANY($2::text[])",
                task_id,
                list(CHASE_KINDS),
            )
            return {(r["kind"], _rung(r["data"])) for r in rows} >= set(CHASE_RUNGS)

        await wait_until(chased, timeout=self.config.timeout_s, interval=0.5)

    async def wait_status(self, request_id: str, status: str) -> None:
        async def settled() -> bool:
            rows = await self.fetch("SELECT status FROM approval_requests WHERE id = $1", request_id)
            return bool(rows) and rows[0]["status"] == status

        await wait_until(settled, timeout=self.config.timeout_s, interval=0.3)

    async def tap(self, account: str, card_id: str, key: str) -> None:
        """One tap: one sealed callback, delivered to `deliveries` replicas (a different one each time)."""
        code = self.wecom.click_code(card_id)
        query, body = self.callbacks.seal(self.callbacks.card_click_xml(account, card_id, key, code))
        targets = self.rng.sample(range(len(self.replicas)), len(self.replicas))
        targets = [targets[i % len(targets)] for i in range(self.config.deliveries)]
        if self.crash_wanted.is_set() and not self.crash_done.is_set():
            self.crash_done.set()
            await self.crash_during_callback(query, body)
            targets = [t for t in targets if t != VICTIM] or targets
        else:
            await asyncio.sleep(self.rng.random() * 0.05)
        await asyncio.gather(
            *(self._deliver_later(i * self.rng.random() * 0.2, t, query, body) for i, t in enumerate(targets))
        )
        self.taps += 1

    async def _deliver_later(self, delay: float, target: int, query: dict[str, str], body: bytes) -> None:
        await asyncio.sleep(delay)
        await self.front.callback(target, query, body)

    # -- chaos -------------------------------------------------------------------------------
    async def crash_during_callback(self, query: dict[str, str], body: bytes) -> None:
        """Deliver to the victim while its inbox INSERT is held back by a table lock, kill it with
        SIGKILL there (after its dedupe check, before the row is stored), release the lock."""
        victim = self.replicas[VICTIM]
        lock = await self.connect()
        held = lock.transaction()
        await held.start()
        await lock.execute("LOCK TABLE inbox IN SHARE MODE")
        post = asyncio.create_task(
            self.front.http.post(
                f"{victim.base_url}/callbacks/wecom",
                params=query,
                content=body,
                headers={"Content-Type": "text/xml"},
            )
        )

        async def blocked() -> bool:
            rows = await self.fetch(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query ILIKE 'INSERT INTO inbox%'"
            )
            return bool(rows[0]["n"]) or post.done()

        try:
            await wait_until(blocked, timeout=20, interval=0.05)
            await victim.kill9()
        finally:
            await held.rollback()
            await lock.close()
        with contextlib.suppress(httpx.HTTPError):
            resp = await post
            self.notes.append(f"the victim answered before the kill: {resp.status_code}")
        self.say(f"replica {VICTIM} killed with SIGKILL during a callback (tap {self.taps})")

    async def until_progress(self, fraction: float) -> None:
        await wait_until(lambda: self.taps >= fraction * self.total_taps, timeout=3600, interval=0.1)

    async def chaos(self) -> None:
        victim = self.replicas[VICTIM]
        await self.until_progress(0.25)
        self.crash_wanted.set()
        await wait_until(lambda: not victim.up, timeout=3600, interval=0.1)
        await asyncio.sleep(1.0)
        await victim.start()
        self.say(f"replica {VICTIM} started again (tap {self.taps})")

        await self.until_progress(0.45)
        self.wecom.expire_token()
        self.expiries += 1
        self.say(f"WeCom access token expired (tap {self.taps})")

        await self.until_progress(0.6)
        for replica in self.replicas:
            self.sigterm_exits.append(await replica.terminate())
            await replica.start()
            self.say(
                f"  rolling restart: replica {replica.number} stopped (SIGTERM) and started (tap {self.taps})"
            )

    async def run(self) -> None:
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(flow: Flow) -> None:
            async with gate:
                try:
                    await self.run_flow(flow)
                except TimeoutError:
                    self.stuck.append(flow.index)
                    self.say(f"flow {flow.index} ({flow.kind}) got stuck: counted as lost")
                    self.taps += len(flow.route)  # so the chaos still happens

        async def every_flow() -> None:
            await asyncio.gather(*(one(f) for f in self.flows))

        chaos = asyncio.create_task(self.chaos())
        flows = asyncio.create_task(every_flow())
        done, _ = await asyncio.wait({chaos, flows}, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # raise what failed
        await flows
        await chaos
        with contextlib.suppress(TimeoutError):
            await self.quiesce()

    async def quiesce(self) -> None:
        """Wait until nothing is left to deliver: outbox and inbox worked off, no timer firing."""

        async def idle() -> bool:
            busy = await self.fetch(
                "SELECT (SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending'))"
                " + (SELECT count(*) FROM inbox WHERE status IN ('pending', 'working'))"
                " + (SELECT count(*) FROM timers WHERE status = 'firing') AS n"
            )
            return bool(busy[0]["n"] == 0)

        await wait_until(idle, timeout=self.config.timeout_s, interval=0.5)
        await asyncio.sleep(2.0)  # anything a last scan would still send
        await wait_until(idle, timeout=self.config.timeout_s, interval=0.5)

    # -- counting ----------------------------------------------------------------------------
    async def count(self) -> list[Row]:
        """Expected against observed, from the database and from what the fake WeCom recorded."""
        flows = self.flows
        kinds = Counter(f.kind for f in flows)
        chased = kinds["chase"]
        want_tasks = sum(len(f.route) for f in flows)

        statuses = {
            r["id"]: r["status"] for r in await self.fetch("SELECT id, status FROM approval_requests")
        }
        finished = sum(
            1 for f in flows if statuses.get(self.request_ids.get(f.index, "")) == FINAL_STATUS[f.kind]
        )
        tasks = await self.fetch("SELECT id, status FROM approval_tasks")
        decided = {t["id"] for t in tasks if t["status"] in ("approved", "rejected")}
        trail = await self.fetch("SELECT kind, task_id, data FROM trail_events WHERE task_id IS NOT NULL")
        decisions = Counter(e["task_id"] for e in trail if e["kind"] in ("approved", "rejected"))
        chases = Counter(
            (e["kind"], _rung(e["data"]), e["task_id"]) for e in trail if e["kind"] in CHASE_KINDS
        )
        late = {
            f"{self.request_ids[f.index]}-1"
            for f in flows
            if f.kind == "chase" and f.index in self.request_ids
        }

        cards = Counter(
            str(b["template_card"]["task_id"])
            for b in self.wecom.delivered
            if b["msgtype"] == "template_card" and not _is_supervise_card(b["template_card"])
        )
        cards_per_task = Counter(card_id.split("_")[1] for card_id in cards.elements())
        closes = Counter(self.wecom.card_of_code.get(u["response_code"], "?") for u in self.wecom.updates)
        outbox = await self.fetch("SELECT kind, status FROM outbox")
        sent_rows = sum(1 for r in outbox if r["status"] == "sent" and r["kind"] != "card_closed")

        def one_each(kind: str, rung: str) -> int:
            return sum(1 for task in late if chases[(kind, rung, task)] == 1)

        lost = {
            "flows": len(flows) - finished,
            "open tasks": sum(1 for t in tasks if t["status"] in ("pending", "queued")),
            "outbox rows not sent": sum(1 for r in outbox if r["status"] != "sent"),
            "inbox rows not done": (
                await self.fetch("SELECT count(*) AS n FROM inbox WHERE status <> 'done'")
            )[0]["n"],
            "timers firing or failed": (
                await self.fetch("SELECT count(*) AS n FROM timers WHERE status IN ('firing', 'failed')")
            )[0]["n"],
            "tasks without a decision": sum(1 for t in decided if decisions[t] == 0),
            "tasks without a card": sum(1 for t in decided if cards_per_task[t] == 0),
            "callbacks not acked": len(self.front.refused),
        }
        self.notes.extend(f"lost: {n} {what}" for what, n in lost.items() if n)
        self.notes.extend(f"5xx: {e}" for e in self.front.server_errors[:5])
        sent_twice = Counter(json.dumps(b, ensure_ascii=False, sort_keys=True) for b in self.wecom.delivered)
        self.notes.extend(f"sent {n} times: {body[:300]}" for body, n in sent_twice.items() if n > 1)
        self.notes.extend(
            f"a card closed by a text instead: {b['text']['content'][:100]}"
            for b in self.wecom.delivered
            if b["msgtype"] == "text" and b["text"]["content"].startswith("审批「")
        )
        return [
            Row(
                "flows",
                f"flows finished ({kinds['approve']} approve, {kinds['reject']} reject, {chased} chased)",
                len(flows),
                finished,
            ),
            Row("tasks", "tasks decided", want_tasks, len(decided)),
            Row(
                "decisions",
                "decisions: tasks with exactly one",
                want_tasks,
                sum(1 for t in decided if decisions[t] == 1),
            ),
            Row("decision_events", "decisions in the trail", want_tasks, sum(decisions.values())),
            Row(
                "cards",
                "cards: tasks with exactly one",
                want_tasks,
                sum(1 for t in decided if cards_per_task[t] == 1),
            ),
            Row("cards_sent", "cards sent", want_tasks, sum(cards.values())),
            Row("closed", "cards closed exactly once", want_tasks, sum(1 for c in cards if closes[c] == 1)),
            Row("updates", "card updates", want_tasks, len(self.wecom.updates)),
            Row(
                "remind",
                "催办 reminders (rung remind): one per late task",
                chased,
                one_each("reminded", "remind"),
            ),
            Row("due", "due reminders (rung due): one per late task", chased, one_each("reminded", "due")),
            Row("supervise", "督办 to the manager: one per late task", chased, one_each("supervised", "due")),
            Row(
                "escalate",
                "上报 to the next manager: one per late task",
                chased,
                one_each("escalated", "escalate"),
            ),
            Row("chase_events", "chase events in the trail", 4 * chased, sum(chases.values())),
            Row(
                "tokens",
                f"token fetches (1 + {self.expiries} expiry)",
                1 + self.expiries,
                len(self.wecom.calls("/cgi-bin/gettoken")),
            ),
            Row("messages", "messages sent, one per outbox row", sent_rows, len(self.wecom.delivered)),
            Row(
                "sigterm",
                "SIGTERM stops that exited 0",
                len(self.replicas),
                sum(1 for c in self.sigterm_exits if c == 0),
            ),
            Row("errors", "5xx answers", 0, len(self.front.server_errors)),
            Row("lost", "lost anything", 0, sum(lost.values())),
        ]


def _rung(data: Any) -> str:
    if isinstance(data, str):
        data = json.loads(data)
    return str((data or {}).get("rung") or "")


# -- setting up and tearing down --------------------------------------------------------------
async def bot_command(env: dict[str, str], cwd: Path, *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"oabot {' '.join(args)} exited {proc.returncode}: {out.decode()[-2000:]}")


def replica_env(
    config: Config, db_url: str, redis_url: str, prefix: str, wecom: FakeWeCom, workdir: Path
) -> dict[str, str]:
    templates = workdir / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "replica_flow.yaml").write_text(FLOW_TEMPLATE, encoding="utf-8")
    (templates / "replica_chase.yaml").write_text(
        CHASE_TEMPLATE.replace("LIMIT", repr(config.chase_limit_hours)), encoding="utf-8"
    )
    return base_env(
        db_url,
        OABOT_REDIS_URL=redis_url,
        OABOT_REDIS_PREFIX=prefix,
        OABOT_API_TOKEN=API_TOKEN,
        OABOT_TEMPLATES_DIR=str(templates),
        # Every hour of today and tomorrow is working time (UTC; made working days below), so the
        # chased step's reminders come after seconds whenever the run happens.
        OABOT_TIMEZONE="UTC",
        OABOT_WORKING_HOURS="00:00-24:00",
        OABOT_LOG_LEVEL="INFO",
        OABOT_WECOM_CORP_ID=CORP_ID,
        OABOT_WECOM_AGENT_ID=str(AGENT_ID),
        OABOT_WECOM_SECRET=SECRET,
        OABOT_WECOM_TOKEN=TOKEN,
        OABOT_WECOM_AES_KEY=AES_KEY,
        OABOT_WECOM_API_BASE=wecom.base_url,
    )


async def run_replicas(
    config: Config, *, pg_url: str, redis_url: str, workdir: Path, say: Callable[[str], None] = print
) -> Outcome:
    """The whole scenario on a fresh schema and key prefix; returns the counted rows."""
    started = time.perf_counter()
    schema = await create_pg_schema(pg_url)
    prefix = f"oabot-replicas:{uuid.uuid4().hex[:12]}:"
    db_url = f"{pg_url}?options=-csearch_path%3D{schema}"
    wecom = await FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID).start()
    replicas: list[Replica] = []
    try:
        env = replica_env(config, db_url, redis_url, prefix, wecom, workdir)
        today = datetime.now(UTC).date()
        days_off = [d for d in (today, today + timedelta(days=1)) if not OFFICIAL.is_working_day(d)]
        if days_off:  # a weekend or holiday: make them working days for this run
            await bot_command(env, workdir, "migrate")
            for day in days_off:
                await bot_command(
                    env, workdir, "calendar", "add-workday", day.isoformat(), "--reason", "多副本基准"
                )
        replicas = [Replica(env, workdir / f"replica-{i}", i) for i in range(config.replicas)]
        await asyncio.gather(*(r.start() for r in replicas))
        say(
            f"{len(replicas)} replicas up on ports {', '.join(str(r.port) for r in replicas)}; schema {schema}"
        )
        async with httpx.AsyncClient(timeout=15) as http:
            scenario = Scenario(
                config,
                db_url=db_url,
                schema=schema,
                wecom=wecom,
                replicas=replicas,
                front=Front(replicas, http),
                say=say,
            )
            await scenario.run()
            rows = await scenario.count()
        notes = [
            *scenario.notes,
            f"callback failovers (replica down or restarting): {scenario.front.failovers}",
        ]
        return Outcome(rows, time.perf_counter() - started, notes)
    finally:
        for r in replicas:
            with contextlib.suppress(Exception):
                await r.stop()
        await wecom.stop()
        await drop_pg_schema(pg_url, schema)
        store = RedisStore(redis_url, prefix=prefix)
        await store.purge_prefix()
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("OABOT_TEST_DATABASE_URL"),
        help="PostgreSQL URL (postgresql+asyncpg://...); a schema of its own is made and dropped",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("OABOT_TEST_REDIS_URL"),
        help="Redis URL; a key prefix of its own is used and purged",
    )
    parser.add_argument("--flows", type=int, default=Config.flows)
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--keep-logs", type=Path, help="write the replicas' logs under this directory")
    args = parser.parse_args()
    if not args.url or not args.redis:
        parser.error("--url and --redis are needed (or OABOT_TEST_DATABASE_URL / OABOT_TEST_REDIS_URL)")
    config = Config(flows=args.flows, seed=args.seed)
    with contextlib.ExitStack() as stack:
        workdir = args.keep_logs or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="oabot-replicas-"))
        )
        workdir.mkdir(parents=True, exist_ok=True)
        outcome = asyncio.run(run_replicas(config, pg_url=args.url, redis_url=args.redis, workdir=workdir))
    print()
    print(f"{config.flows} flows, {config.replicas} replicas, seed {config.seed}: {outcome.seconds:.0f} s")
    print(outcome.table())
    for note in outcome.notes:
        print(f"note: {note}")
    print("OK" if outcome.ok else "MISMATCH")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())


def _is_supervise_card(card: dict[str, Any]) -> bool:
    """A manager's 督办 / 上报 card (its buttons are 催办, 转交, 代为处理, 查看), not a task card:
    the chases are counted from the trail, the task cards here."""
    keys = {b.get("key") for b in card.get("button_list") or []}
    return bool(keys & {"supervise_urge", "take_over"})
