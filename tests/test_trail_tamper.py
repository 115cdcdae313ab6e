"""The trail is tamper-evident: what someone with database access but without the trail key
changes shows in `verify_trails`, the trail table refuses UPDATE and DELETE, and `as_admin` is
only for org admins. On SQLite and PostgreSQL.

The tamperer here disables the append-only trigger first, as the database owner could."""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from approvals.engine import Action
from approvals.errors import ActionNotAllowed, UnknownUser
from approvals.model import ActionKind
from approvals.template_loader import load_templates
from approvals.trail import LEGACY, TrailKey, TrailKeys, compute_hash, event_mac, head_mac
from services.approvals import Workflow, WorkflowDeps, rekey_trails, verify_trails
from services.directory import Directory
from services.links import PersonalLinks
from storage import approval_store as store
from storage import migrate
from storage.approval_models import TRAIL_APPEND_ONLY, RequestRow, TrailRow
from storage.db import Database
from tests.conftest import import_demo_org
from tests.helpers import T0

KEY = TrailKey.of(b"the-real-trail-key-0123456789abcdef")
KEYS = TrailKeys(KEY)
OTHER = TrailKey.of(b"a-key-the-tamperer-made-up-0123456789")
ADMINS = frozenset({"admin", "hr_manager"})  # u_zhao holds hr_manager in the demo org
FORM = {
    "seal": "公章",
    "reason": "合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["a.pdf"],
    "copies": 1,
    "take_out": False,
}


def workflow(db: Database, keys: TrailKeys | None = KEYS) -> Workflow:
    return Workflow(
        WorkflowDeps(
            db=db,
            templates=load_templates([]),
            tz=ZoneInfo("Asia/Shanghai"),
            now=lambda: T0,
            links=PersonalLinks(
                db, secret="test-link-secret-0123456789", public_url="http://x", now=lambda: T0
            ),
            directory=Directory(db, lambda: T0),
            trail_keys=keys,
            admin_roles=ADMINS,
        )
    )


async def rejected_request(wf: Workflow) -> str:
    req = await wf.submit(template_key="seal_use", initiator="u_wu", form=FORM)
    task = req.steps[0].tasks[0]
    action = Action(ActionKind.REJECT, actor="u_sun", task_id=task.id, version=task.version, comment="不同意")
    await wf.act(request_id=req.id, action=action)
    return req.id


async def tamper(db: Database, *statements: str) -> None:
    """Run `statements` with the append-only trigger out of the way, as the database owner could."""
    async with db.transaction() as s:
        if db.engine.dialect.name == "postgresql":
            await s.execute(text("ALTER TABLE trail_events DISABLE TRIGGER USER"))
        else:
            await s.execute(text("DROP TRIGGER trail_events_no_update"))
            await s.execute(text("DROP TRIGGER trail_events_no_delete"))
        for statement in statements:
            await s.execute(text(statement))
        if db.engine.dialect.name == "postgresql":
            await s.execute(text("ALTER TABLE trail_events ENABLE TRIGGER USER"))
        else:
            for statement in TRAIL_APPEND_ONLY["sqlite"]:
                await s.execute(text(statement))


async def rewrite_chain(db: Database, rid: str, *, comment: str, key: TrailKey | None) -> None:
    """Edit the rejection's comment, recompute every hash after it (sealed with `key`, if any) and
    move the request's head: a consistent rewritten chain, as a tamperer without our key makes it."""
    async with db.session() as s:
        events = await store.load_trail(s, request_id=rid)
    prev = events[0].prev_hash
    rewritten = []
    for e in events:
        e = replace(e, prev_hash=prev, comment=comment if e.kind == "rejected" else e.comment)
        e = replace(e, hash=compute_hash(prev, e))
        rewritten.append(e)
        prev = e.hash
    statements = []
    for e in rewritten:
        mac = f"'{event_mac(key, e)}'" if key else "NULL"
        statements.append(
            f"UPDATE trail_events SET comment = {_quoted(e.comment)}, prev_hash = '{e.prev_hash}', "
            f"hash = '{e.hash}', mac = {mac} WHERE request_id = '{rid}' AND seq = {e.seq}"
        )
    last = rewritten[-1]
    head = f"'{head_mac(key, rid, last.seq, last.hash)}'" if key else "NULL"
    statements.append(
        f"UPDATE approval_requests SET last_hash = '{last.hash}', head_mac = {head} WHERE id = '{rid}'"
    )
    await tamper(db, *statements)


def _quoted(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


# -- what verify finds ----------------------------------------------------------------------------


async def test_an_untouched_trail_verifies(org_db: Database) -> None:
    rid = await rejected_request(workflow(org_db))

    assert await verify_trails(org_db, keys=KEYS) == {}
    assert await verify_trails(org_db, keys=KEYS, request_id=rid) == {}


async def test_a_status_changed_from_rejected_to_approved_in_the_database_is_reported(
    org_db: Database,
) -> None:
    rid = await rejected_request(workflow(org_db))
    other = await workflow(org_db).submit(template_key="seal_use", initiator="u_zheng", form=FORM)

    async with org_db.transaction() as s:  # the request and task rows are not append-only
        await s.execute(update(RequestRow).where(RequestRow.id == rid).values(status="approved"))  # type: ignore[arg-type]
        await s.execute(
            text(
                f"UPDATE approval_tasks SET status = 'approved' WHERE request_id = '{rid}' AND status = 'rejected'"
            )
        )

    problems = await verify_trails(org_db, keys=KEYS)
    assert set(problems) == {rid}, f"only the edited request ({other.id} is fine)"
    assert "replay: status: the trail says rejected, the table says approved" in problems[rid]
    assert any(
        "decided: the trail says rejected by u_sun, the table says approved by u_sun" in p
        for p in problems[rid]
    )


async def test_a_pending_task_moved_to_someone_else_is_reported(org_db: Database) -> None:
    req = await workflow(org_db).submit(template_key="seal_use", initiator="u_wu", form=FORM)
    task = req.steps[0].tasks[0]

    async with org_db.transaction() as s:
        await s.execute(text(f"UPDATE approval_tasks SET assignee = 'u_zheng' WHERE id = '{task.id}'"))

    problems = await verify_trails(org_db, keys=KEYS)
    assert problems[req.id] == [
        f"replay: task {task.id} pending with: the trail says u_sun, the table says u_zheng"
    ]


@pytest.mark.parametrize("key", [None, OTHER], ids=["unkeyed", "wrong-key"])
async def test_a_chain_rewritten_with_recomputed_hashes_is_reported(
    org_db: Database, key: TrailKey | None
) -> None:
    rid = await rejected_request(workflow(org_db))

    await rewrite_chain(org_db, rid, comment="同意", key=key)

    async with org_db.session() as s:
        assert [e.comment for e in await store.load_trail(s, request_id=rid) if e.kind == "rejected"] == [
            "同意"
        ]
    problems = await verify_trails(org_db, keys=KEYS)
    assert list(problems) == [rid]
    lines = problems[rid]
    assert not any("previous-hash" in p or "content does not match" in p for p in lines), "a consistent chain"
    if key is None:  # stripped of every seal: it looks legacy, which verify still reports
        assert len(lines) == 1 and lines[0].endswith(LEGACY), lines
    else:
        assert "#1: the keyed seal does not match (rewritten?)" in lines, lines
        assert any("the anchored chain head does not match" in p for p in lines), lines


async def test_a_deleted_tail_entry_is_reported_even_with_the_head_moved_back(org_db: Database) -> None:
    rid = await rejected_request(workflow(org_db))
    async with org_db.session() as s:
        events = await store.load_trail(s, request_id=rid)
    last, before = events[-1], events[-2]

    await tamper(
        org_db,
        f"DELETE FROM trail_events WHERE request_id = '{rid}' AND seq = {last.seq}",
        f"UPDATE approval_requests SET last_seq = {before.seq}, last_hash = '{before.hash}' WHERE id = '{rid}'",
    )

    problems = await verify_trails(org_db, keys=KEYS)
    assert any("the anchored chain head does not match" in p for p in problems[rid]), problems


async def test_a_deleted_middle_entry_is_reported(org_db: Database) -> None:
    rid = await rejected_request(workflow(org_db))

    await tamper(org_db, f"DELETE FROM trail_events WHERE request_id = '{rid}' AND seq = 2")

    assert any("expected event #2" in p for p in (await verify_trails(org_db, keys=KEYS))[rid])


# -- the append-only table ------------------------------------------------------------------------


async def test_the_trail_table_refuses_update_and_delete(org_db: Database) -> None:
    rid = await rejected_request(workflow(org_db))

    for statement in (
        f"UPDATE trail_events SET comment = '同意' WHERE request_id = '{rid}'",
        f"DELETE FROM trail_events WHERE request_id = '{rid}'",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with org_db.transaction() as s:
                await s.execute(text(statement))
    if org_db.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            async with org_db.transaction() as s:
                await s.execute(text("TRUNCATE trail_events"))

    assert await verify_trails(org_db, keys=KEYS) == {}
    async with org_db.session() as s:
        assert (await s.execute(select(func.count()).select_from(TrailRow))).scalar_one() > 3


async def test_the_migration_makes_the_trail_table_append_only(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)
    await import_demo_org(empty_db)
    rid = await rejected_request(workflow(empty_db))

    with pytest.raises(DBAPIError, match="append-only"):
        async with empty_db.transaction() as s:
            await s.execute(text(f"DELETE FROM trail_events WHERE request_id = '{rid}'"))
    with pytest.raises(DBAPIError, match="append-only"):
        async with empty_db.transaction() as s:
            await s.execute(text("UPDATE trail_events SET actor = 'u_zhang'"))
    assert await verify_trails(empty_db, keys=KEYS) == {}


# -- legacy trails and keys -----------------------------------------------------------------------


async def test_a_legacy_trail_is_reported_until_rekey_anchors_it_and_then_stays_sealed(
    org_db: Database,
) -> None:
    legacy = workflow(org_db, keys=None)  # as written before the trail key existed
    req = await legacy.submit(template_key="seal_use", initiator="u_wu", form=FORM)
    broken = await rejected_request(legacy)
    async with org_db.transaction() as s:  # an old edit the unkeyed chain still shows
        await s.execute(text(f"UPDATE approval_requests SET status = 'approved' WHERE id = '{broken}'"))

    before = await verify_trails(org_db, keys=KEYS)
    assert any(p.endswith(LEGACY) for p in before[req.id])

    done = await rekey_trails(org_db, keys=KEYS)

    assert done.anchored == [req.id] and list(done.refused) == [broken]
    assert req.id not in await verify_trails(org_db, keys=KEYS)
    task = req.steps[0].tasks[0]
    action = Action(ActionKind.APPROVE, actor="u_sun", task_id=task.id, version=task.version)
    await workflow(org_db).act(request_id=req.id, action=action)  # keyed events after legacy ones
    assert req.id not in await verify_trails(org_db, keys=KEYS)
    assert (await rekey_trails(org_db, keys=KEYS)).anchored == [], "anchored once"


async def test_after_a_key_rotation_old_entries_verify_with_the_retired_key(org_db: Database) -> None:
    req = await workflow(org_db).submit(template_key="seal_use", initiator="u_wu", form=FORM)
    rotated = TrailKeys(OTHER, old=(KEY,))
    task = req.steps[0].tasks[0]
    action = Action(ActionKind.APPROVE, actor="u_sun", task_id=task.id, version=task.version)
    await workflow(org_db, keys=rotated).act(request_id=req.id, action=action)

    assert await verify_trails(org_db, keys=rotated) == {}
    problems = await verify_trails(org_db, keys=TrailKeys(OTHER))
    assert any(f"sealed with key {KEY.id}, which is not configured" in p for p in problems[req.id])


# -- as_admin -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("actor", "error"), [("u_zheng", ActionNotAllowed), ("nobody", UnknownUser)])
async def test_as_admin_by_someone_who_is_not_an_org_admin_is_refused_and_nothing_is_written(
    org_db: Database, actor: str, error: type[Exception]
) -> None:
    wf = workflow(org_db)
    req = await wf.submit(template_key="seal_use", initiator="u_wu", form=FORM)
    before = await wf.get(req.id)

    with pytest.raises(error) as refused:
        await wf.act(request_id=req.id, action=Action(ActionKind.TERMINATE, actor=actor, is_admin=True))

    if error is ActionNotAllowed:
        assert refused.value.reason == "action_not_allowed.not_admin"  # type: ignore[attr-defined]
    assert await wf.get(req.id) == before


async def test_as_admin_by_an_active_org_admin_terminates_and_is_recorded_as_them(org_db: Database) -> None:
    wf = workflow(org_db)
    req = await wf.submit(template_key="seal_use", initiator="u_wu", form=FORM)

    ended = await wf.act(
        request_id=req.id, action=Action(ActionKind.TERMINATE, actor="u_zhao", is_admin=True)
    )

    assert ended.status == "terminated"
    assert [e.actor for e in (await wf.get(req.id)).trail if e.kind == "request_terminated"] == ["u_zhao"]
    assert await verify_trails(org_db, keys=KEYS) == {}
