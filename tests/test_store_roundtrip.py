"""Save → load → save: what the store writes is exactly what it reads back.

A request that went through several kinds of action (approve with a comment, add a signer,
transfer, a delegate acting for someone, an urge) is saved, loaded, saved again unchanged and
loaded again; the request with its steps and tasks, and the trail with its hash chain, come back
equal each time, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import copy
from datetime import timedelta

from approvals import engine
from approvals.engine import Action, Context
from approvals.model import ActionKind, Delegation, Request, SignerPosition, TaskStatus, TrailEvent
from approvals.trail import verify_chain
from storage import approval_store as store
from storage.db import Database
from tests.helpers import T0, TZ, demo_org, step, template, who

ORG = demo_org()


def _flow() -> tuple[Request, list[TrailEvent]]:
    tpl = template(
        step("leader", who("manager", 1), name="直接领导"),
        step("both", who("user", "u_li"), who("user", "u_zhang"), mode="all", name="会签"),
        step("gm", who("role", "gm"), name="总经理"),
    )
    away = Delegation(
        id="d1",
        delegator="u_zhang",
        delegate="u_wang",
        starts_at=T0,
        ends_at=T0 + timedelta(days=3),
        reason="出差",
    )
    now = T0

    def ctx() -> Context:
        return Context(template=tpl, org=ORG, now=now, tz=TZ, delegations=[away])

    out = engine.submit(ctx(), request_id="rt1", initiator="u_wu", form={"reason": "<b>采购</b> 'x' \"y\""})
    req, events = out.request, list(out.events)

    def do(kind: ActionKind, actor: str, **kw: object) -> None:
        nonlocal req, now
        now += timedelta(minutes=7)
        task = next((t for t in req.tasks if t.assignee == actor and t.status == TaskStatus.PENDING), None)
        action = Action(
            kind=kind,
            actor=actor,
            task_id=task.id if task else None,
            version=task.version if task else None,
            **kw,  # type: ignore[arg-type]
        )
        result = engine.act(ctx(), req, action)
        req = result.request
        events.extend(result.events)

    do(ActionKind.APPROVE, "u_sun", comment="同意，请尽快办理")
    do(ActionKind.URGE, "u_wu")
    do(ActionKind.ADD_SIGNER, "u_li", target="u_zhao", position=SignerPosition.AFTER, comment="请人事看一下")
    do(ActionKind.APPROVE, "u_li")
    do(ActionKind.TRANSFER, "u_wang", target="u_chen", comment="转交处理")
    return req, events


async def _load(db: Database, request_id: str) -> tuple[store.Loaded, list[TrailEvent]]:
    async with db.session() as s:
        loaded = await store.load_request(s, request_id=request_id)
        trail = await store.load_trail(s, request_id=request_id)
    assert loaded is not None
    return loaded, trail


async def test_request_tasks_and_trail_survive_save_load_save(db: Database) -> None:
    req, events = _flow()
    assert any(t.acting_for == "u_zhang" for t in req.tasks), "the flow should include a delegate's task"
    original = copy.deepcopy(req)

    async with db.transaction() as s:
        await store.insert_request(s, request=req, events=events, key=None)
    first, trail = await _load(db, req.id)
    assert first.request == original
    assert trail == events
    assert verify_chain(trail) == []

    async with db.transaction() as s:
        await store.save_request(s, loaded=first, events=[], key=None)
    second, trail_again = await _load(db, req.id)
    assert second.request == original
    assert second.version == first.version
    assert trail_again == events
