"""The demo's notices: what `oabot serve --demo` publishes, once, so the console and the
workspace's 通知 list (/m/n/) show a notice, a meeting notice and a poll at once.

They are written by the office (the first active holder of OABOT_OFFICE_ROLE) through
`services.notices.Notices`, like any other notice: the audience is resolved, the cards go out,
a meeting gets its reminders, anything that needs the office's approval goes through
`notice_publish` (approved at once, the author being the office). Only when the database holds
no notice at all, and each with an idempotency key (`demo-<kind>`), so restarts (or two roles starting at once)
never double them.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta, tzinfo

from aiohttp import web

from bot.keys import NOTICES, SETTINGS
from notices.model import Audience, DeptPick, Meeting, NoticeKind, NoticeStatus, Poll, Question
from org.model import Org
from services.notices import NoticeDraft, Notices

logger = logging.getLogger(__name__)

# The department the demo's 通知 goes to, when the org has it (else the first other department
# with people in it).
DEMO_DEPARTMENT = "admin_service"
DEMO_NOTICE_TITLE = "关于规范印章使用登记的通知"
DEMO_MEETING_TITLE = "部门负责人工作例会"
DEMO_POLL_TITLE = "年终总结会时间意向调查"
MEETING_AT = time(10, 0)
MEETING_LENGTH = timedelta(hours=1)
POLL_WORKING_DAYS = 3  # the poll closes at the end of the third working day ahead


def _office(org: Org, role: str) -> str | None:
    holders = org.role_holders(role) or org.role_holders("hr_manager")
    return holders[0] if holders else None


def _department(org: Org, author: str) -> str | None:
    """The demo department, or the first other department with active people."""
    own = org.user(author)
    candidates = [DEMO_DEPARTMENT, *org.departments]
    for dept_id in candidates:
        dept = org.department(dept_id)
        if dept is None or not dept.active or (own is not None and dept_id == own.department):
            continue
        if any(p != author and org.is_active(p) for p in org.members_of(dept_id)):
            return dept_id
    return None


def _heads(org: Org, author: str) -> tuple[str, ...]:
    """Every department's leader (the meeting's attendees), the author left out."""
    seen: list[str] = []
    for dept in org.departments.values():
        if dept.active and dept.leader and dept.leader != author and org.is_active(dept.leader):
            if dept.leader not in seen:
                seen.append(dept.leader)
    return tuple(seen)


def demo_drafts(service: Notices, org: Org, author: str, tz: tzinfo) -> list[NoticeDraft]:
    """The three demo notices: a 通知 to a department, a 会议通知 on the next working day and a
    调查 closing at the end of the third working day ahead."""
    days = service.working_days_ahead(POLL_WORKING_DAYS)
    day_end = service.working_periods()[-1][1]
    drafts: list[NoticeDraft] = []
    dept = _department(org, author)
    if dept is not None:
        drafts.append(
            NoticeDraft(
                kind=NoticeKind.NOTICE,
                title=DEMO_NOTICE_TITLE,
                audience=Audience(departments=(DeptPick(dept, with_sub=False),)),
                body=(
                    "各位同事：\n为加强印章管理，自下周一起，凡使用公章、合同章，请先在系统中提交"
                    "「用章申请」，经部门负责人审批后到印章管理员处登记用印。\n请阅知后点击「已收到」。"
                ),
            )
        )
    heads = _heads(org, author)
    if heads and days:
        starts = datetime.combine(days[0], MEETING_AT, tzinfo=tz)
        drafts.append(
            NoticeDraft(
                kind=NoticeKind.MEETING,
                title=DEMO_MEETING_TITLE,
                audience=Audience(people=heads),
                body="请各部门负责人准时参加，不能参加的请在回执中说明原因或委派他人参加。",
                meeting=Meeting(
                    starts_at=starts,
                    ends_at=starts + MEETING_LENGTH,
                    place="总部三楼第一会议室",
                    agenda="一、本周工作进展\n二、年终总结安排\n三、其他事项",
                    organiser=author,
                ),
            )
        )
    if days:
        closes = datetime.combine(days[-1], day_end, tzinfo=tz)
        drafts.append(
            NoticeDraft(
                kind=NoticeKind.POLL,
                title=DEMO_POLL_TITLE,
                audience=Audience(everyone=True),
                body="年终总结会的时间请大家选一选，也欢迎留下建议。",
                poll=Poll(
                    questions=(
                        Question(
                            id="q1",
                            text="年终总结会安排在哪天合适？",
                            options=("12月第三周周五下午", "12月第四周周五下午", "元旦后第一周周五下午"),
                            free_text=True,
                        ),
                    ),
                    closes_at=closes,
                ),
            )
        )
    return drafts


async def ready_demo_notices(app: web.Application) -> list[str]:
    """Publish the demo's notices when the database holds none yet; their ids (empty when
    there was nothing to do)."""
    service = app[NOTICES]
    if await service.any_notices():
        return []
    org = await service.org()
    author = _office(org, app[SETTINGS].office_role)
    if author is None:
        logger.warning("no demo notices: nobody holds the office role")
        return []
    ids = []
    for n, draft in enumerate(demo_drafts(service, org, author, app[SETTINGS].tz), start=1):
        key = f"demo-{draft.kind.value}"
        view = await service.create(author=author, draft=draft, channel="console", idempotency_key=key)
        if view.status != NoticeStatus.PUBLISHED:
            logger.warning("demo notice not published", extra={"notice_id": view.id, "status": view.status})
        ids.append(view.id)
        logger.info("demo notice ready", extra={"notice_id": view.id, "kind": draft.kind.value, "n": n})
    return ids
