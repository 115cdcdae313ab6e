"""Publishing a notice is idempotent: `Notices.create(idempotency_key=…)`, the REST body's
`idempotency_key` (as for requests) and the compose page's per-form token. The same key twice
(or two calls racing) publishes once and answers with the same notice; different keys publish
two. Direct and through the office's approval. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from sqlalchemy import func, select

from approvals.clock import ManualClock
from bot.app import create_app
from bot.keys import NOTICES, SESSIONS
from notices.model import Audience, NoticeKind, NoticeStatus
from services.notices import NoticeDraft
from storage.approval_models import OutboxRow, RequestRow
from storage.db import Database
from storage.notice_models import NoticeRow
from tests.conftest import Api, settings_for

NOTICE = {
    "kind": "notice",
    "title": "关于年底安全检查的通知",
    "body": "请各位于本周五前完成办公区域的安全自查。",
    "audience": {"people": ["u_wu", "u_chen"]},
    "author": "u_sun",
}


async def count(db: Database, table: Any) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


async def cards(db: Database) -> int:
    async with db.session() as s:
        rows = (await s.execute(select(OutboxRow))).scalars()
        return sum(1 for r in rows if r.kind == "task_card" and str(r.task_id or "").startswith("nt"))


async def test_the_same_key_twice_publishes_once_and_answers_the_same(api: Api, org_db: Database) -> None:
    first = await api.call("POST", "/notices", {**NOTICE, "idempotency_key": "k-1"}, expect=201)
    again = await api.call("POST", "/notices", {**NOTICE, "idempotency_key": "k-1"}, expect=201)

    assert again[1] == first[1]
    assert await count(org_db, NoticeRow) == 1 and await cards(org_db) == 2  # one card each, once
    other = await api.call("POST", "/notices", {**NOTICE, "idempotency_key": "k-2"}, expect=201)
    plain = await api.call("POST", "/notices", NOTICE, expect=201)
    assert len({first[1]["id"], other[1]["id"], plain[1]["id"]}) == 3  # type: ignore[index]
    assert await count(org_db, NoticeRow) == 3
    # a key is the author's own: another author's notice with the same key is their own
    mine = await api.call(
        "POST", "/notices", {**NOTICE, "author": "u_wang", "idempotency_key": "k-1"}, expect=201
    )
    assert mine[1]["id"] != first[1]["id"] and mine[1]["author"] == "u_wang"  # type: ignore[index]


async def test_a_bad_key_is_refused_in_words_and_publishes_nothing(api: Api, org_db: Database) -> None:
    status, body = await api.call("POST", "/notices", {**NOTICE, "idempotency_key": "x" * 201})
    assert status == 422 and "idempotency_key" in str(body)
    assert await count(org_db, NoticeRow) == 0


async def test_a_notice_for_the_office_with_the_same_key_is_submitted_once(
    api: Api, org_db: Database
) -> None:
    body = {**NOTICE, "audience": {"everyone": True}, "idempotency_key": "all-1"}
    first = await api.call("POST", "/notices", body, expect=201)
    again = await api.call("POST", "/notices", body, expect=201)

    assert first[1]["status"] == "pending_approval" and again[1]["id"] == first[1]["id"]  # type: ignore[index]
    assert await count(org_db, NoticeRow) == 1 and await count(org_db, RequestRow) == 1


async def test_two_racing_calls_with_one_key_publish_once(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    await aiohttp_client(app)
    service = app[NOTICES]
    direct = NoticeDraft(kind=NoticeKind.NOTICE, title="周五例会", audience=Audience(people=("u_wu",)))
    office = NoticeDraft(kind=NoticeKind.NOTICE, title="全员通知", audience=Audience(everyone=True))

    for draft in (direct, office):
        views = await asyncio.gather(
            *(
                service.create(author="u_sun", draft=draft, idempotency_key=f"race-{draft.title}")
                for _ in range(3)
            )
        )
        assert len({v.id for v in views}) == 1, [v.id for v in views]
    assert await count(org_db, NoticeRow) == 2 and await count(org_db, RequestRow) == 1
    statuses = {s.title: s.status for s in await service.list_authored(author="u_sun")}
    assert statuses == {"周五例会": NoticeStatus.PUBLISHED, "全员通知": NoticeStatus.PENDING_APPROVAL}


async def test_a_double_submit_of_the_compose_page_publishes_once(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    client = await aiohttp_client(app)
    session = await app[SESSIONS].start("u_sun", via="test")
    headers = {"Cookie": f"oabot_session={session.id}"}
    page = await (await client.get("/m/n/new", headers=headers)).text()
    token = re.search(r'name=form_token value="([0-9a-f]+)"', page)
    assert token, page[:2000]
    form = [
        ("kind", "notice"), ("title", "周五下午部门例会"), ("person", "u_wu"), ("person", "u_chen"),
        ("confidentiality", "internal"), ("form_token", token.group(1)), ("csrf", session.csrf),
    ]  # fmt: skip

    posts = [
        await client.post("/m/n/new", data=form, headers=headers, allow_redirects=False) for _ in range(2)
    ]

    assert [p.status for p in posts] == [303, 303]
    assert posts[0].headers["Location"] == posts[1].headers["Location"]
    assert await count(org_db, NoticeRow) == 1 and await cards(org_db) == 2
    fresh = await (await client.get("/m/n/new", headers=headers)).text()
    assert f'value="{token.group(1)}"' not in fresh  # every form gets its own token
