"""The workspace's notice pages /m/n/…: my notices (pinned announcements on top, unread first),
the notice page (opening it records opened; 已收到; the password prompt and the lock; restricted
content only here), compose (audience pickers, refusals shown next to the field), the author's
progress (x of y, who has not answered, 催办, 收回 refused naming who opened it). Signed-in people
only; every post carries the session's CSRF token. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

from aiohttp import web

from approvals.clock import ManualClock
from approvals.engine import Action
from approvals.model import ActionKind, TaskStatus
from bot.app import create_app
from bot.keys import NOTICES, SESSIONS, WORKFLOW
from notices.model import Audience, Confidentiality, NoticeKind, ReceiptState
from org.loader import load_org_file
from services.notices import NoticeDraft, NoticeView
from storage.db import Database
from storage.org_repo import import_org
from tests.conftest import DEMO_ORG, settings_for

CODES = re.compile(
    r">[^<]*\b(notice|announcement|published|pending_approval|acknowledged|defaulted|opened|sent|"
    r"internal|secret|None|u_[a-z]+)\b[^<]*<"
)


class Phone:
    """One person's browser: their session cookie and CSRF token."""

    def __init__(self, client: Any, session: Any) -> None:
        self.client, self.session = client, session
        self.headers = {"Cookie": f"oabot_session={session.id}"}

    async def get(self, path: str) -> tuple[int, str]:
        resp = await self.client.get(path, headers=self.headers, allow_redirects=False)
        return resp.status, await resp.text()

    async def post(self, path: str, data: dict[str, Any] | list[tuple[str, str]]) -> tuple[int, str]:
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        pairs.append(("csrf", self.session.csrf))
        resp = await self.client.post(path, data=pairs, headers=self.headers, allow_redirects=False)
        if resp.status == 303:
            cookie = resp.cookies.get("oabot_nflash")
            headers = dict(self.headers)
            if cookie is not None:
                headers["Cookie"] += f"; oabot_nflash={cookie.value}"
            follow = await self.client.get(resp.headers["Location"], headers=headers, allow_redirects=False)
            return follow.status, await follow.text()
        return resp.status, await resp.text()


async def _app(db: Database, aiohttp_client: Any, clock: ManualClock) -> tuple[web.Application, Any]:
    app = create_app(settings_for(db), clock=clock)
    return app, await aiohttp_client(app)


async def _phone(app: web.Application, client: Any, user: str) -> Phone:
    return Phone(client, await app[SESSIONS].start(user, via="test"))


async def _publish(app: web.Application, author: str = "u_sun", **changes: Any) -> NoticeView:
    draft = NoticeDraft(
        kind=changes.pop("kind", NoticeKind.NOTICE),
        title=changes.pop("title", "关于年底安全检查的通知"),
        audience=changes.pop("audience", Audience(people=("u_wu", "u_chen"))),
        body=changes.pop("body", "请各位于本周五前完成办公区域的安全自查。"),
        **changes,
    )
    return await app[NOTICES].create(author=author, draft=draft, channel="web")


def _flash(page: str) -> str:
    found = re.search(r'class="box ws-flash(?: bad)?" role=status>([^<]*)<', page)
    return found.group(1) if found else ""


async def test_opening_the_notice_page_records_opened_and_the_button_acknowledges(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    notice = await _publish(app)
    wu = await _phone(app, client, "u_wu")

    status, page = await wu.get(f"/m/n/{notice.id}")
    assert status == 200, page
    assert "关于年底安全检查的通知" in page and "请各位于本周五前完成办公区域的安全自查。" in page
    assert "孙丽" in page and "已收到" in page and "data-do=ack" in page
    assert not CODES.search(page), CODES.search(page)
    progress = await app[NOTICES].receipts(viewer="u_sun", notice_id=notice.id)
    mine = next(r for r in progress.receipts if r.person == "u_wu")
    assert mine.state == ReceiptState.OPENED and mine.opened_via == "web"

    status, page = await wu.post(f"/m/n/{notice.id}/ack", {})
    assert status == 200 and _flash(page) == "已确认收到。"
    assert "您已确认收到" in page and "data-do=ack" not in page
    status, page = await wu.post(f"/m/n/{notice.id}/ack", {})  # a second tap changes nothing
    assert status == 200 and "您已确认收到" in page
    progress = await app[NOTICES].receipts(viewer="u_sun", notice_id=notice.id)
    assert progress.acknowledged == 1


async def test_my_notices_list_pinned_announcements_first_then_unread(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    read = await _publish(app, title="已读的通知")
    clock.advance(timedelta(minutes=5))
    unread = await _publish(app, title="未读的通知")
    await app[NOTICES].get(viewer="u_wu", notice_id=read.id, channel="web")
    wu = await _phone(app, client, "u_wu")

    status, page = await wu.get("/m/n/")
    assert status == 200, page
    order = re.findall(r'data-notice="([^"]+)"', page)
    assert order.index(unread.id) < order.index(read.id)
    assert "收到的" in page and "我发的" in page and "未读" in page
    assert not CODES.search(page), CODES.search(page)

    sun = await _phone(app, client, "u_sun")
    status, page = await sun.get("/m/n/?box=sent")
    assert status == 200 and "0/2 人已确认" in page and f"/m/n/{unread.id}/receipts" in page


async def test_a_pinned_announcement_stays_on_top_until_it_expires(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    pending = await _publish(
        app,
        author="u_zhang",
        kind=NoticeKind.ANNOUNCEMENT,
        title="年终安全生产公告",
        audience=Audience(everyone=True),
        pinned_until=clock.now() + timedelta(days=2),
    )
    assert pending.approval_request  # an announcement goes to the office first
    req = await app[WORKFLOW].get(pending.approval_request)
    task = next(t for st in req.steps for t in st.tasks if t.status == TaskStatus.PENDING)
    await app[WORKFLOW].act(
        request_id=req.id,
        action=Action(kind=ActionKind.APPROVE, actor=task.assignee, task_id=task.id, version=task.version),
    )
    await app[NOTICES].get(viewer="u_wu", notice_id=pending.id, channel="web")  # read already
    clock.advance(timedelta(minutes=5))
    newer = await _publish(app, title="新的部门通知")
    wu = await _phone(app, client, "u_wu")

    _, page = await wu.get("/m/n/")
    order = re.findall(r'data-notice="([^"]+)"', page)
    assert order[:2] == [pending.id, newer.id], order
    assert "置顶" in page

    clock.advance(timedelta(days=3))
    _, page = await (await _phone(app, client, "u_wu")).get("/m/n/")
    order = re.findall(r'data-notice="([^"]+)"', page)
    assert order.index(newer.id) < order.index(pending.id)  # expired: back among the rest


async def test_the_workspace_lists_lead_to_my_notices_with_what_waits(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    await _publish(app)
    status, page = await (await _phone(app, client, "u_wu")).get("/m/")
    assert status == 200
    assert re.search(r'href="/m/n/">通知<b class=nt-badge>1</b>', page), page[:2000]


async def test_the_author_sees_progress_urges_the_unanswered_and_recall_is_refused_after_an_open(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    notice = await _publish(app)
    await app[NOTICES].acknowledge(person="u_wu", notice_id=notice.id, channel="web")
    sun = await _phone(app, client, "u_sun")

    status, page = await sun.get(f"/m/n/{notice.id}/receipts")
    assert status == 200, page
    assert "1 / 2" in page and "陈静" in page and "吴昊" in page
    assert "一键催办未回复的 1 人" in page
    assert not CODES.search(page), CODES.search(page)

    status, page = await sun.post(f"/m/n/{notice.id}/urge", {})
    assert status == 200 and _flash(page) == "已催办 1 人：陈静"
    status, page = await sun.post(f"/m/n/{notice.id}/urge", {})
    assert status == 200 and "ws-flash bad" in page  # once per 30 minutes

    status, page = await sun.post(f"/m/n/{notice.id}/recall", {})
    assert status == 200 and "ws-flash bad" in page and "吴昊" in _flash(page)
    assert (await app[NOTICES].load(notice.id)) is not None

    quiet = await _publish(app, title="还没人看的通知")
    status, page = await sun.get(f"/m/n/{quiet.id}/receipts")
    assert "data-do=recall" in page
    status, page = await sun.post(f"/m/n/{quiet.id}/recall", {})
    assert status == 200 and "已收回" in _flash(page)


async def test_only_the_author_opens_the_progress_page_and_strangers_not_the_notice(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    notice = await _publish(app)
    wu = await _phone(app, client, "u_wu")
    status, page = await wu.get(f"/m/n/{notice.id}/receipts")
    assert status == 403 and "无法查看" in page
    zheng = await _phone(app, client, "u_zheng")
    status, page = await zheng.get(f"/m/n/{notice.id}")
    assert status == 403 and "关于年底安全检查的通知" not in page
    status, page = await zheng.get("/m/n/n20261123-00000000")
    assert status == 404
    anonymous = await client.get(f"/m/n/{notice.id}", allow_redirects=False)
    assert anonymous.status == 303 and "/m/sign-in" in anonymous.headers["Location"]
    forged = await client.post(
        f"/m/n/{notice.id}/ack", data={"csrf": "forged"}, headers=wu.headers, allow_redirects=False
    )
    assert forged.status == 403


async def test_a_password_protected_item_asks_for_it_and_locks_after_five_wrong_tries(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    notice = await _publish(
        app,
        title="薪酬调整方案",
        body="机要内容：明年起调整绩效系数。",
        confidentiality=Confidentiality.SECRET,
        password="s3cret-pass",
    )
    wu = await _phone(app, client, "u_wu")

    status, page = await wu.get(f"/m/n/{notice.id}")
    assert status == 200 and "访问密码" in page and "明年起调整绩效系数" not in page
    status, page = await wu.post(f"/m/n/{notice.id}/unlock", {"password": "s3cret-pass"})
    assert status == 200 and "明年起调整绩效系数" in page

    chen = await _phone(app, client, "u_chen")
    for _ in range(5):
        status, page = await chen.post(f"/m/n/{notice.id}/unlock", {"password": "wrong"})
        assert "明年起调整绩效系数" not in page
    status, page = await chen.post(f"/m/n/{notice.id}/unlock", {"password": "s3cret-pass"})
    assert "明年起调整绩效系数" not in page and "锁定" in page
    assert not CODES.search(page), CODES.search(page)


async def test_compose_publishes_to_named_people_and_shows_refusals_next_to_the_field(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    sun = await _phone(app, client, "u_sun")

    status, page = await sun.get("/m/n/new")
    assert status == 200
    for words in (
        "通知",
        "公告",
        "会议通知",
        "调查",
        "市场部",
        "吴昊",
        "全体人员",
        "含下级部门",
        "机密",
        "总经理",
    ):
        assert words in page, words
    assert not CODES.search(page), CODES.search(page)

    status, page = await sun.post(
        "/m/n/new",
        [("kind", "notice"), ("title", "周五下午部门例会"), ("body", "请准时参加。"),
         ("person", "u_wu"), ("confidentiality", "internal")],
    )  # fmt: skip
    assert status == 200 and "已发出，共 1 人" in _flash(page), page
    assert "周五下午部门例会" in page
    (mine,) = await app[NOTICES].list_for(person="u_wu")
    assert mine.title == "周五下午部门例会" and mine.author == "u_sun"

    status, page = await sun.post(
        "/m/n/new",
        [("kind", "notice"), ("title", "机密文件"), ("person", "u_wu"), ("confidentiality", "confidential")],
    )
    assert status == 422 and '<div class="box ws-flash bad" role=alert>' in page
    status, page = await sun.post(
        "/m/n/new",
        [("kind", "notice"), ("title", "秘密文件"), ("dept", "marketing"), ("confidentiality", "secret")],
    )
    assert status == 422 and "class=err role=alert" in page
    status, page = await sun.post("/m/n/new", [("kind", "meeting"), ("title", "例会"), ("person", "u_wu")])
    assert status == 422 and "请填写会议地点" in page and "请选择会议开始时间" in page
    # a meeting in the year 1 (or any time already past) is refused in words, never a 500
    status, page = await sun.post(
        "/m/n/new",
        [("kind", "meeting"), ("title", "例会"), ("person", "u_wu"), ("place", "三楼"),
         ("confidentiality", "internal"), ("starts_at", "0001-01-01T00:00"), ("ends_at", "0001-01-01T01:00")],
    )  # fmt: skip
    assert status == 422 and "会议开始时间须晚于现在" in page, page
    # a job level in digits other than 0-9 (superscript two) is dropped, never a 500
    status, page = await sun.post("/m/n/new", [("kind", "notice"), ("title", "通知"), ("level", "²")])
    assert status == 422
    assert len(await app[NOTICES].list_for(person="u_wu")) == 1  # nothing else went out


async def test_the_author_sees_a_notice_waiting_for_the_office_and_its_refusal(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    sun = await _phone(app, client, "u_sun")
    status, page = await sun.post(
        "/m/n/new",
        [("kind", "notice"), ("title", "全员年终大扫除"), ("everyone", "1"), ("confidentiality", "internal")],
    )
    assert status == 200 and "已提交办公室审核" in _flash(page), page
    assert "正在等待办公室审核" in page and "查看审核进度" in page and "/receipts" not in page
    assert not CODES.search(page), CODES.search(page)
    (mine,) = await app[NOTICES].list_authored(author="u_sun")
    seen = await app[NOTICES].get(viewer="u_sun", notice_id=mine.id)
    assert seen.approval_request and f'href="/m/r/{seen.approval_request}"' in page
    req = await app[WORKFLOW].get(seen.approval_request)
    task = next(t for st in req.steps for t in st.tasks if t.status == TaskStatus.PENDING)
    await app[WORKFLOW].act(
        request_id=req.id,
        action=Action(
            kind=ActionKind.REJECT,
            actor=task.assignee,
            task_id=task.id,
            version=task.version,
            comment="范围太大",
        ),
    )
    status, page = await sun.get(f"/m/n/{mine.id}")
    assert status == 200 and "办公室未通过审核" in page and "范围太大" in page


async def test_compose_offers_job_levels_and_a_department_with_its_sub_departments(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    org = load_org_file(DEMO_ORG)
    for uid, level in (("u_zhang", 9), ("u_li", 8), ("u_sun", 5), ("u_wu", 3)):
        org.users[uid] = dataclasses.replace(org.users[uid], level=level)
    async with org_db.transaction() as s:
        await import_org(s, org, now=clock.now())
    app, client = await _app(org_db, aiohttp_client, clock)
    zhang = await _phone(app, client, "u_zhang")

    status, page = await zhang.get("/m/n/new")
    assert status == 200 and "按职级" in page and "3 级" in page and "9 级" in page

    status, page = await zhang.post(
        "/m/n/new",
        [("kind", "notice"), ("title", "总部全体会议安排"), ("dept", "gm_office"), ("dept_sub", "gm_office"),
         ("confidentiality", "internal")],
    )  # fmt: skip
    assert status == 200 and "已提交办公室审核" in _flash(page)  # several departments: the office first
    sun = await _phone(app, client, "u_sun")
    status, page = await sun.post(
        "/m/n/new",
        [("kind", "notice"), ("title", "市场部周会"), ("dept", "marketing"), ("dept_sub", "marketing"),
         ("confidentiality", "internal")],
    )  # fmt: skip
    assert status == 200 and "已发出，共 1 人" in _flash(page), _flash(page)  # her own department: direct

    status, page = await zhang.post(
        "/m/n/new",
        [
            ("kind", "notice"),
            ("title", "中层以上会议"),
            ("level", "5"),
            ("level", "8"),
            ("confidentiality", "internal"),
        ],
    )
    assert status == 200 and "已提交办公室审核" in _flash(page)  # levels: the office approves first
