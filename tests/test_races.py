"""Concurrent writers on one request: no decision is lost and none is taken twice.

Each "replica" is its own `Workflow` with its own `Database` (engine and pool) on the same
store, as two app processes would be: the same SQLite file, or the same PostgreSQL schema.
Races are started with `asyncio.gather` and settled by the database alone (the request row's
optimistic version check and, on SQLite, its single writer). On PostgreSQL a barrier makes
every racer load before anyone writes, so the lost-race path runs every time; where one
precise interleaving is needed, an `asyncio.Event` holds one caller at a known point.
Nothing waits on a timer.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
from sqlalchemy import Update, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from approvals.clock import ManualClock
from approvals.definitions import Policies, Template, WithdrawPolicy
from approvals.engine import Action
from approvals.errors import ApprovalError, RequestFinished, StaleTask, TaskAlreadyDecided
from approvals.model import ActionKind, RequestStatus, StepStatus, TaskStatus, TrailEvent
from approvals.template_loader import load_templates
from approvals.trail import verify_chain
from org.model import Org
from services.approval_views import RequestView, TaskView
from services.approvals import Workflow, WorkflowDeps
from services.directory import Directory
from services.links import PersonalLinks
from storage import approval_store as store
from storage.approval_models import IdempotencyRow, OutboxRow, RequestRow
from storage.db import Database
from storage.org_repo import load_org
from tests.helpers import TZ, step, template, who

FORM = {"reason": "并发测试"}


def race_templates() -> dict[str, Template]:
    """The built-in templates plus small ones whose routes the races below rely on."""
    two_steps = (
        step("leader", who("user", "u_sun"), name="部门领导"),
        step("vp", who("user", "u_li"), name="副总"),
    )
    return {
        **load_templates([]),
        "race_seq": template(*two_steps, key="race_seq"),
        "race_strict": template(
            *two_steps, key="race_strict", policies=Policies(withdraw=WithdrawPolicy.BEFORE_FIRST_DECISION)
        ),
        "race_all": template(
            step(
                "会签",
                who("user", "u_sun"),
                who("user", "u_li"),
                who("user", "u_zhou"),
                mode="all",
                name="会签",
            ),
            step("gm", who("user", "u_zhang"), name="总经理"),
            key="race_all",
        ),
    }


OrgLoader = Callable[[AsyncSession], Awaitable[Org]]
MakeReplicas = Callable[..., list[Workflow]]


class FirstWrites:
    """Holds each transaction's first write until `parties` transactions have reached theirs.

    So every racer has loaded the same version before anyone saves: the lost race, the reload
    and the engine's refusal happen on every run, not only when the scheduler happens to
    interleave them. PostgreSQL only: SQLite's BEGIN IMMEDIATE lets one transaction in at a
    time, so holding one there would wait for a writer that cannot start.
    """

    def __init__(self, parties: int) -> None:
        self._barrier = asyncio.Barrier(parties)
        self._left = parties

    async def reached(self) -> None:
        if self._left <= 0:
            return
        self._left -= 1
        async with asyncio.timeout(30):  # a guard against a hang, not a synchronisation
            await self._barrier.wait()


class _HeldSession:
    """The transaction's session, with its first write (an UPDATE or a flush) held."""

    def __init__(self, session: AsyncSession, writes: FirstWrites) -> None:
        self._session = session
        self._writes = writes
        self._wrote = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def _first_write(self) -> None:
        if not self._wrote:
            self._wrote = True
            await self._writes.reached()

    async def execute(self, statement: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(statement, Update):
            await self._first_write()
        return await self._session.execute(statement, *args, **kw)

    async def flush(self, *args: Any, **kw: Any) -> None:
        await self._first_write()
        await self._session.flush(*args, **kw)


class ReplicaDatabase(Database):
    """A replica's own engine on the shared store, optionally holding first writes together."""

    def __init__(self, url: str, *, schema: str | None, writes: FirstWrites | None) -> None:
        super().__init__(url, schema=schema)
        self._writes = writes

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with super().transaction() as session:
            yield session if self._writes is None else cast(AsyncSession, _HeldSession(session, self._writes))


@pytest.fixture
async def replicas(org_db: Database, clock: ManualClock) -> AsyncIterator[MakeReplicas]:
    """Builds workflows the way bot.wiring does, each on its own Database on the same store.

    `racing=n` holds the first write of the first n transactions until all n have loaded
    (PostgreSQL; on SQLite the database itself serialises them).
    """
    opened: list[Database] = []
    templates = race_templates()

    def make(n: int, *, racing: int = 0, org_loader: OrgLoader = load_org) -> list[Workflow]:
        writes = FirstWrites(racing) if racing and not org_db.is_sqlite else None
        made = []
        for _ in range(n):
            database = ReplicaDatabase(org_db.url, schema=org_db.schema, writes=writes)
            opened.append(database)
            deps = WorkflowDeps(
                db=database,
                templates=templates,
                tz=TZ,
                now=clock.now,
                links=PersonalLinks(
                    database,
                    secret="test-link-secret-0123456789",
                    public_url="http://oabot.test",
                    now=clock.now,
                ),
                directory=Directory(database, clock.now, load=org_loader),
            )
            made.append(Workflow(deps))
        return made

    yield make
    for database in opened:
        await database.dispose()


# -- reading the outcome back -------------------------------------------------------------------
async def trail_of(db: Database, request_id: str) -> list[TrailEvent]:
    async with db.session() as s:
        return await store.load_trail(s, request_id=request_id)


async def outbox_of(db: Database, request_id: str) -> Counter[tuple[str, str]]:
    async with db.session() as s:
        rows = (
            (await s.execute(select(OutboxRow).where(col(OutboxRow.request_id) == request_id)))
            .scalars()
            .all()
        )
    return Counter((r.kind, r.recipient) for r in rows)


def first_task(view: RequestView, step_index: int, assignee: str) -> TaskView:
    return next(t for t in view.steps[step_index].tasks if t.assignee == assignee)


def approve(task: TaskView, actor: str | None = None) -> Action:
    return Action(
        kind=ActionKind.APPROVE, actor=actor or task.assignee, task_id=task.id, version=task.version
    )


async def assert_trail_sound(workflow: Workflow, request_id: str) -> list[TrailEvent]:
    events = await trail_of(workflow.d.db, request_id)
    assert verify_chain(events) == []
    assert await workflow.verify_trail(request_id) == {}
    return events


def split(results: list[Any]) -> tuple[list[RequestView], list[BaseException]]:
    wins = [r for r in results if isinstance(r, RequestView)]
    losses = [r for r in results if isinstance(r, BaseException)]
    return wins, losses


# -- the same task, tapped at once ------------------------------------------------------------------
@pytest.mark.parametrize("calls", [2, 10])
async def test_concurrent_approvals_of_one_task_decide_it_exactly_once(
    replicas: MakeReplicas, calls: int
) -> None:
    (front,) = replicas(1)
    a, b = replicas(2, racing=calls)
    submitted = await front.submit(template_key="race_seq", initiator="u_wu", form=FORM)
    rid = submitted.id
    task = first_task(submitted, 0, "u_sun")

    results = await asyncio.gather(
        *((a, b)[i % 2].act(request_id=rid, action=approve(task)) for i in range(calls)),
        return_exceptions=True,
    )

    wins, losses = split(results)
    assert len(wins) == 1, results
    assert len(losses) == calls - 1
    assert all(isinstance(e, TaskAlreadyDecided | StaleTask) for e in losses), losses
    req = await a.load(rid)
    assert [s.status for s in req.steps] == [StepStatus.APPROVED, StepStatus.ACTIVE]
    assert req.version == submitted.version + 1, "exactly one change was saved"
    assert [(t.assignee, t.status) for t in req.tasks] == [
        ("u_sun", TaskStatus.APPROVED),
        ("u_li", TaskStatus.PENDING),
    ]
    events = await assert_trail_sound(b, rid)
    assert [e.kind for e in events if e.task_id == task.id].count("approved") == 1
    assert sum(e.kind == "step_approved" for e in events) == 1
    sent = await outbox_of(a.d.db, rid)
    assert sent[("card_closed", "u_sun")] == 1
    assert sent[("task_card", "u_li")] == 1


async def test_countersign_approvers_acting_at_once_all_count_and_the_step_completes_once(
    replicas: MakeReplicas,
) -> None:
    (front,) = replicas(1)
    workflows = replicas(3, racing=3)
    submitted = await front.submit(template_key="race_all", initiator="u_wu", form=FORM)
    rid = submitted.id
    people = ["u_sun", "u_li", "u_zhou"]

    results = await asyncio.gather(
        *(
            w.act(request_id=rid, action=approve(first_task(submitted, 0, p)))
            for w, p in zip(workflows, people, strict=True)
        ),
        return_exceptions=True,
    )

    wins, losses = split(results)
    assert len(wins) == 3 and not losses, losses
    req = await workflows[0].load(rid)
    assert [s.status for s in req.steps] == [StepStatus.APPROVED, StepStatus.ACTIVE]
    assert {t.assignee: t.status for t in req.tasks if t.step_index == 0} == dict.fromkeys(
        people, TaskStatus.APPROVED
    )
    assert [t.assignee for t in req.pending_tasks()] == ["u_zhang"]
    events = await assert_trail_sound(workflows[1], rid)
    assert Counter(e.actor for e in events if e.kind == "approved") == Counter(people)
    assert [e.step_index for e in events if e.kind == "step_approved"] == [0]
    assert (await outbox_of(workflows[0].d.db, rid))[("task_card", "u_zhang")] == 1


# -- approve against the initiator's withdraw ------------------------------------------------------
@pytest.mark.parametrize("approve_listed_first", [True, False])
@pytest.mark.parametrize("template_key", ["race_seq", "race_strict"])
async def test_approve_racing_withdraw_leaves_one_consistent_story(
    replicas: MakeReplicas, template_key: str, approve_listed_first: bool
) -> None:
    (front,) = replicas(1)
    a, b = replicas(2, racing=2)
    submitted = await front.submit(template_key=template_key, initiator="u_wu", form=FORM)
    rid = submitted.id
    task = first_task(submitted, 0, "u_sun")
    calls = {
        "approve": a.act(request_id=rid, action=approve(task)),
        "withdraw": b.act(request_id=rid, action=Action(kind=ActionKind.WITHDRAW, actor="u_wu")),
    }
    order = ["approve", "withdraw"] if approve_listed_first else ["withdraw", "approve"]

    results = dict(
        zip(order, await asyncio.gather(*(calls[k] for k in order), return_exceptions=True), strict=True)
    )

    for outcome in results.values():
        assert isinstance(outcome, RequestView | ApprovalError), f"unexpected failure: {outcome!r}"
    assert any(isinstance(r, RequestView) for r in results.values()), results
    req = await a.load(rid)
    events = await assert_trail_sound(b, rid)
    kinds = [e.kind for e in events]
    sun = req.task(task.id)
    assert sun is not None
    decisions = [e for e in events if e.task_id == task.id and e.kind in ("approved", "rejected", "returned")]
    assert len(decisions) <= 1
    if "request_withdrawn" in kinds:
        assert req.status == RequestStatus.WITHDRAWN
        assert isinstance(results["withdraw"], RequestView)
        withdrawn_at = kinds.index("request_withdrawn")
        assert "approved" not in kinds[withdrawn_at:], "nothing may be approved after the withdrawal"
        assert not req.pending_tasks()
    if "approved" in kinds:
        assert isinstance(results["approve"], RequestView)
        assert sun.status == TaskStatus.APPROVED
        if isinstance(results["withdraw"], ApprovalError):
            # Approved first and the template forbids withdrawing after a decision: refused, nothing lost.
            assert template_key == "race_strict"
            assert req.status == RequestStatus.RUNNING
            assert [t.assignee for t in req.pending_tasks()] == ["u_li"]
    else:
        # Withdrawn first: the approval is refused cleanly and the task was closed, not decided.
        assert isinstance(results["approve"], RequestFinished | TaskAlreadyDecided | StaleTask)
        assert sun.status == TaskStatus.CLOSED and sun.close_reason == "request_withdrawn"
        assert req.version == submitted.version + 1


# -- idempotency keys ------------------------------------------------------------------------------
async def test_one_submit_key_sent_five_times_at_once_creates_one_request(replicas: MakeReplicas) -> None:
    a, b = replicas(2, racing=5)

    views = await asyncio.gather(
        *(
            (a, b)[i % 2].submit(
                template_key="race_seq", initiator="u_wu", form=FORM, idempotency_key="form-7"
            )
            for i in range(5)
        )
    )

    assert len({v.id for v in views}) == 1
    async with a.d.db.session() as s:
        assert await store.count_requests(s) == 1
        assert (await s.execute(select(func.count()).select_from(IdempotencyRow))).scalar_one() == 1
        ids = (await s.execute(select(col(RequestRow.id)))).scalars().all()
    assert ids == [views[0].id]
    assert (await outbox_of(a.d.db, views[0].id))[("task_card", "u_sun")] == 1
    await assert_trail_sound(b, views[0].id)


async def test_repeated_action_with_the_same_key_returns_the_first_result_and_acts_once(
    replicas: MakeReplicas,
) -> None:
    a, b = replicas(2)
    submitted = await a.submit(template_key="race_seq", initiator="u_wu", form=FORM)
    rid = submitted.id
    task = first_task(submitted, 0, "u_sun")

    first = await a.act(request_id=rid, action=approve(task), idempotency_key="tap-1")
    again = await a.act(request_id=rid, action=approve(task), idempotency_key="tap-1")
    elsewhere = await b.act(request_id=rid, action=approve(task), idempotency_key="tap-1")

    assert again == first and elsewhere == first
    req = await a.load(rid)
    assert req.version == submitted.version + 1
    events = await assert_trail_sound(a, rid)
    assert [e.kind for e in events].count("approved") == 1
    with pytest.raises(TaskAlreadyDecided):
        await a.act(request_id=rid, action=approve(task), idempotency_key="tap-2")


class Gate:
    """Holds a replica inside its org lookup, i.e. after its idempotency check, until released."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def load_org(self, session: AsyncSession) -> Org:
        self.reached.set()
        await self.release.wait()
        return await load_org(session)


async def test_retry_arriving_while_the_first_call_is_in_flight_gets_the_first_result(
    replicas: MakeReplicas,
) -> None:
    (a,) = replicas(1)
    gate = Gate()
    (retry_replica,) = replicas(1, org_loader=gate.load_org)
    submitted = await a.submit(template_key="race_seq", initiator="u_wu", form=FORM)
    rid = submitted.id
    task = first_task(submitted, 0, "u_sun")

    retry = asyncio.ensure_future(
        retry_replica.act(request_id=rid, action=approve(task), idempotency_key="tap-1")
    )
    await gate.reached.wait()  # the retry found no stored response: the first call has not committed
    first = await a.act(request_id=rid, action=approve(task), idempotency_key="tap-1")
    gate.release.set()
    answer: RequestView | BaseException = (await asyncio.gather(retry, return_exceptions=True))[0]

    events = await assert_trail_sound(a, rid)
    assert [e.kind for e in events].count("approved") == 1, "whatever the answer, the task is decided once"
    assert answer == first
