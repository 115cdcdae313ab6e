"""The notice service on SQLite and PostgreSQL: publishing (directly or after the office's
approval), receipts opened / acknowledged / defaulted on the working calendar, the default
timer racing across replicas, recall, confidentiality, the access password, 催办, card taps
and the digests' list of unanswered notices."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import select
from sqlmodel import col

from approvals.clock import ManualClock
from approvals.engine import Action
from approvals.errors import ActionNotAllowed
from approvals.model import ActionKind, RequestStatus
from approvals.template_loader import load_templates
from deadlines import digest
from deadlines.org_calendar import OrgCalendar
from deadlines.timer_kinds import TimerKinds, TimerScanner
from deadlines.timers import TimerKind
from handlers.chat import root_router
from handlers.deps import ChatDeps
from handlers.events import CardAction, Sender
from handlers.notice_cards import on_notice_tap
from notices.errors import (
    ConfidentialityRefused,
    IllegalReceiptMove,
    LockedOut,
    NotAuthor,
    NotRecipient,
    RecallRefused,
    RestrictedAudience,
    UrgeTooSoon,
    WrongPassword,
)
from notices.model import Audience, Confidentiality, DeptPick, NoticeKind, NoticeStatus, ReceiptState
from notifications.messages import message_for
from services.approvals import Workflow, WorkflowDeps
from services.directory import Directory
from services.links import PersonalLinks
from services.notices import NoticeDraft, Notices, NoticesDeps, NoticeView
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.notice_models import NoticeEventRow, NoticeReceiptRow, NoticeRow, NoticeViewRow
from storage.org_repo import import_org
from storage.timer_models import TimerRow
from tests.helpers import TZ
from tests.notice_org import notice_org

FRIDAY = datetime(2026, 11, 27, 15, 0, tzinfo=TZ)


@dataclass
class World:
    db: Database
    clock: ManualClock
    notices: Notices
    workflow: Workflow
    kinds: TimerKinds
    calendar: OrgCalendar

    def at(self, when: datetime) -> None:
        self.clock.set(when.astimezone(UTC))


def build(db: Database, clock: ManualClock, calendar: OrgCalendar, kinds: TimerKinds | None = None) -> World:
    links = PersonalLinks(
        db, secret="test-link-secret-0123456789", public_url="http://oabot.test", now=clock.now
    )
    directory = Directory(db, clock.now)
    workflow = Workflow(
        WorkflowDeps(
            db=db,
            templates=load_templates([]),
            tz=TZ,
            now=clock.now,
            directory=directory,
            links=links,
            admin_roles=frozenset({"admin", "hr_manager"}),
        )
    )
    kinds = kinds or TimerKinds()
    notices = Notices(
        NoticesDeps(
            db=db,
            directory=directory,
            links=links,
            tz=TZ,
            now=clock.now,
            calendar=calendar,
            admin_roles=frozenset({"admin", "hr_manager"}),
            office_role="hr_manager",
            kinds=kinds,
            workflow=workflow,
        )
    )
    workflow.d.hooks.append(notices.on_approval_outcome)
    workflow.d.validators.append(notices.check_submission)  # as bot.wiring does
    workflow.d.system_templates = frozenset({"notice_publish"})
    return World(db, clock, notices, workflow, kinds, calendar)


def working_calendar() -> OrgCalendar:
    """09:00-12:00, 13:30-18:00 (the default working hours)."""
    return OrgCalendar(TZ, ((time(9, 0), time(12, 0)), (time(13, 30), time(18, 0))))


@pytest.fixture
async def world(db: Database) -> World:
    clock = ManualClock(FRIDAY.astimezone(UTC))
    async with db.transaction() as s:
        await import_org(s, notice_org(), now=clock.now())
    calendar = working_calendar()
    calendar.set_overrides(frozenset(), frozenset())
    return build(db, clock, calendar)


def draft(audience: Audience, **kw: Any) -> NoticeDraft:
    return NoticeDraft(
        kind=kw.pop("kind", NoticeKind.NOTICE),
        title=kw.pop("title", "关于年底安全检查的通知"),
        body=kw.pop("body", "请各部门于周五前完成自查。"),
        audience=audience,
        **kw,
    )


async def rows(db: Database, model: Any, *where: Any, order: Any = None) -> list[Any]:
    async with db.session() as s:
        q = select(model).where(*where)
        if order is not None:
            q = q.order_by(order)
        return list((await s.execute(q)).scalars())


async def outbox(db: Database, kind: str, recipient: str | None = None) -> list[OutboxRow]:
    where = [col(OutboxRow.kind) == kind]
    if recipient is not None:
        where.append(col(OutboxRow.recipient) == recipient)
    return await rows(db, OutboxRow, *where, order=col(OutboxRow.id))


async def events(db: Database, notice_id: str, kind: str | None = None) -> list[NoticeEventRow]:
    where = [col(NoticeEventRow.notice_id) == notice_id]
    if kind is not None:
        where.append(col(NoticeEventRow.kind) == kind)
    return await rows(db, NoticeEventRow, *where, order=col(NoticeEventRow.id))


async def receipts(db: Database, notice_id: str) -> dict[str, NoticeReceiptRow]:
    found = await rows(db, NoticeReceiptRow, col(NoticeReceiptRow.notice_id) == notice_id)
    return {r.person: r for r in found}


# -- publishing and audiences ---------------------------------------------------------------------


async def test_own_department_goes_out_directly_one_card_per_member(world: World) -> None:
    view = await world.notices.create(
        author="u_zhou", draft=draft(Audience(departments=(DeptPick("engineering"),)))
    )
    assert view.status == NoticeStatus.PUBLISHED and view.total == 1
    assert set(await receipts(world.db, view.id)) == {"u_zheng"}
    (card,) = await outbox(world.db, "task_card", "u_zheng")
    assert card.task_id == f"nt{view.id}-1" and card.payload["card"]["subtitle"] == "关于年底安全检查的通知"
    actions = [b["action"] for b in card.payload["card"]["buttons"]]
    assert actions == ["notice_ack", "open"]
    assert card.payload["card"]["buttons"][1]["url"].startswith("http://oabot.test/")
    # deadline: the end of the next working day after Friday, over the weekend
    assert view.ack_deadline == datetime(2026, 11, 30, 18, 0, tzinfo=TZ)


async def test_department_with_sub_departments_waits_for_the_office_then_goes_out(world: World) -> None:
    audience = Audience(departments=(DeptPick("marketing", with_sub=True),))
    view = await world.notices.create(author="u_sun", draft=draft(audience))
    assert view.status == NoticeStatus.PENDING_APPROVAL and view.approval_request
    assert await outbox(world.db, "task_card", "u_wu") == []
    (task,) = [
        t for t in await world.workflow.pending_tasks("u_zhao") if t.request_id == view.approval_request
    ]
    await world.workflow.act(
        request_id=task.request_id,
        action=Action(kind=ActionKind.APPROVE, actor="u_zhao", task_id=task.task_id, version=task.version),
    )
    published = await world.notices.get(viewer="u_sun", notice_id=view.id)
    assert published.status == NoticeStatus.PUBLISHED
    assert set(await receipts(world.db, view.id)) == {"u_wu", "u_feng"}  # not u_gone (left), not the author
    assert len(await outbox(world.db, "task_card", "u_feng")) == 1
    told = [r.payload["text"] for r in await outbox(world.db, "text", "u_sun")]
    assert any("已通过审核并发布，共 2 人" in t for t in told)
    kinds = [e.kind for e in await events(world.db, view.id)]
    assert kinds[:4] == ["created", "submitted", "approved", "published"]


async def test_nobody_files_the_publishing_approval_by_hand(world: World) -> None:
    assert "notice_publish" not in [t.key for t in world.workflow.startable_templates()]
    assert "leave" in [t.key for t in world.workflow.startable_templates()]
    form = {
        "notice_id": "n20261127-00000000",
        "kind": "通知",
        "subject": "手工提交",
        "audience": "全体",
        "confidentiality": "公开",
        "recipients": 3,
        "office": ["u_zhao"],
    }
    with pytest.raises(ActionNotAllowed) as refused:
        await world.workflow.submit(template_key="notice_publish", initiator="u_sun", form=form)
    assert message_for(refused.value).startswith("「通知发布审批」由系统在发布通知时提交，不能手工发起")
    assert await world.workflow.pending_tasks("u_zhao") == []


async def test_rejected_by_the_office_the_author_is_told_why_and_nothing_goes_out(world: World) -> None:
    view = await world.notices.create(
        author="u_sun", draft=draft(Audience(everyone=True), kind=NoticeKind.ANNOUNCEMENT)
    )
    (task,) = [
        t for t in await world.workflow.pending_tasks("u_zhao") if t.request_id == view.approval_request
    ]
    await world.workflow.act(
        request_id=task.request_id,
        action=Action(
            kind=ActionKind.REJECT,
            actor="u_zhao",
            task_id=task.task_id,
            version=task.version,
            comment="措辞需修改",
        ),
    )
    after = await world.notices.get(viewer="u_sun", notice_id=view.id)
    assert after.status == NoticeStatus.REJECTED and after.reject_reason == "措辞需修改"
    assert await receipts(world.db, view.id) == {}
    assert [r for r in await outbox(world.db, "task_card") if (r.task_id or "").startswith("nt")] == []
    told = [r.payload["text"] for r in await outbox(world.db, "text", "u_sun")]
    assert any("未通过办公室审核" in t and "措辞需修改" in t for t in told)


async def test_the_office_publishing_to_a_level_and_a_mix_goes_out_at_once(world: World) -> None:
    view = await world.notices.create(
        author="u_zhao", draft=draft(Audience(levels=(7,), roles=("seal_keeper",), people=("u_gone", "u_wu")))
    )
    req = await world.workflow.load(view.approval_request or "")
    assert view.status == NoticeStatus.PUBLISHED  # the office is the approver: approved at submission
    assert set(await receipts(world.db, view.id)) == {"u_wang", "u_qian", "u_sun", "u_zhou", "u_chen", "u_wu"}
    assert req.status == RequestStatus.APPROVED


async def test_confidential_is_refused_and_secret_only_to_named_people(world: World) -> None:
    with pytest.raises(ConfidentialityRefused) as refused:
        await world.notices.create(
            author="u_zhou",
            draft=draft(Audience(people=("u_zheng",)), confidentiality=Confidentiality.CONFIDENTIAL),
        )
    assert "机密" in message_for(refused.value) and "不通过本系统" in message_for(refused.value)
    with pytest.raises(RestrictedAudience) as restricted:
        await world.notices.create(
            author="u_zhou",
            draft=draft(
                Audience(departments=(DeptPick("engineering"),)), confidentiality=Confidentiality.SECRET
            ),
        )
    assert "只能发给指定人员" in message_for(restricted.value)
    assert await rows(world.db, NoticeRow) == [] and await outbox(world.db, "task_card") == []
    view = await world.notices.create(
        author="u_zhou", draft=draft(Audience(people=("u_zheng",)), confidentiality=Confidentiality.SECRET)
    )
    (card,) = await outbox(world.db, "task_card", "u_zheng")
    shown = str(card.payload["card"]["fields"])
    assert "自查" not in shown and "秘密" in shown  # the title only, never the body
    assert view.restricted


# -- receipts ---------------------------------------------------------------------------------------


async def test_open_acknowledge_and_default_on_the_calendar_with_two_replicas(world: World) -> None:
    world.calendar.set_overrides(frozenset({date(2026, 11, 30)}), frozenset({date(2026, 11, 28)}))
    audience = Audience(people=("u_wu", "u_chen", "u_liu", "u_zheng"))
    view = await world.notices.create(author="u_zhou", draft=draft(audience))
    assert view.ack_deadline == datetime(2026, 11, 28, 18, 0, tzinfo=TZ)  # Saturday, a 调休 working day
    world.at(FRIDAY + timedelta(minutes=5))
    seen = await world.notices.get(viewer="u_wu", notice_id=view.id, channel="wecom")
    assert seen.my_receipt is not None and seen.my_receipt.state == ReceiptState.OPENED
    await world.notices.get(viewer="u_wu", notice_id=view.id, channel="web")  # a second view
    acked = await world.notices.acknowledge(person="u_chen", notice_id=view.id, channel="dingtalk")
    assert acked.state == ReceiptState.ACKNOWLEDGED and acked.opened_via == "dingtalk"
    stored = await receipts(world.db, view.id)
    assert (stored["u_wu"].state, stored["u_wu"].opened_via) == ("opened", "wecom")
    (closed,) = await outbox(world.db, "card_closed", "u_chen")
    assert (
        closed.payload["outcome"] == "已收到" and closed.task_id == f"nt{view.id}-{stored['u_chen'].card_no}"
    )

    world.at(datetime(2026, 11, 28, 18, 1, tzinfo=TZ))
    other = TimerScanner(db=world.db, kinds=world.kinds, now=world.clock.now)
    mine = TimerScanner(db=world.db, kinds=world.kinds, now=world.clock.now)
    stats = await asyncio.gather(mine.scan_once(), other.scan_once())
    assert sum(s.fired_by_kind[TimerKind.NOTICE_DEFAULT.value] for s in stats) == 1
    stored = await receipts(world.db, view.id)
    assert {p: r.state for p, r in stored.items()} == {
        "u_wu": "defaulted",
        "u_chen": "acknowledged",
        "u_liu": "defaulted",
        "u_zheng": "defaulted",
    }
    assert len(await events(world.db, view.id, "defaulted")) == 3
    defaulted_cards = [
        r for r in await outbox(world.db, "card_closed") if r.payload["outcome"] == "默认已收到"
    ]
    assert sorted(r.recipient for r in defaulted_cards) == ["u_liu", "u_wu", "u_zheng"]
    assert (await mine.scan_once()).fired == 0  # once

    with pytest.raises(IllegalReceiptMove) as late:
        await world.notices.acknowledge(person="u_liu", notice_id=view.id)
    assert message_for(late.value) == "已过确认期限，系统已记为默认收到，无需再操作"
    progress = await world.notices.receipts(viewer="u_zhou", notice_id=view.id)
    assert (progress.total, progress.acknowledged, progress.defaulted, progress.unanswered) == (4, 1, 3, 0)
    with pytest.raises(NotAuthor):
        await world.notices.receipts(viewer="u_wu", notice_id=view.id)
    assert (await world.notices.receipts(viewer="u_zhao", notice_id=view.id)).total == 4  # an org admin


async def test_the_default_waits_for_the_next_working_day_over_a_weekend(world: World) -> None:
    view = await world.notices.create(author="u_zhou", draft=draft(Audience(people=("u_wu",))))
    world.at(datetime(2026, 11, 29, 20, 0, tzinfo=TZ))  # Sunday evening
    assert (await TimerScanner(db=world.db, kinds=world.kinds, now=world.clock.now).scan_once()).fired == 0
    assert (await receipts(world.db, view.id))["u_wu"].state == "sent"
    world.at(datetime(2026, 11, 30, 18, 0, tzinfo=TZ))
    assert (await TimerScanner(db=world.db, kinds=world.kinds, now=world.clock.now).scan_once()).fired == 1
    assert (await receipts(world.db, view.id))["u_wu"].state == "defaulted"


async def test_someone_outside_the_audience_cannot_read_it(world: World) -> None:
    view = await world.notices.create(author="u_zhou", draft=draft(Audience(people=("u_wu",))))
    with pytest.raises(NotRecipient):
        await world.notices.get(viewer="u_chen", notice_id=view.id)


# -- recall -------------------------------------------------------------------------------------------


async def test_recall_before_anyone_opened_updates_the_cards_in_place(world: World) -> None:
    view = await world.notices.create(author="u_zhou", draft=draft(Audience(people=("u_wu", "u_chen"))))
    recalled = await world.notices.recall(author="u_zhou", notice_id=view.id)
    assert recalled.status == NoticeStatus.RECALLED
    closed = await outbox(world.db, "card_closed")
    assert sorted(r.recipient for r in closed) == ["u_chen", "u_wu"]
    assert {r.payload["outcome"] for r in closed} == {"已收回"}
    (timer,) = await rows(world.db, TimerRow, col(TimerRow.kind) == "notice_default")
    assert timer.status == "cancelled"
    with pytest.raises(Exception) as again:
        await world.notices.acknowledge(person="u_wu", notice_id=view.id)
    assert "已收回" in message_for(cast(Any, again.value))


async def test_recall_after_an_open_is_refused_naming_who_opened_it_and_when(world: World) -> None:
    view = await world.notices.create(author="u_zhou", draft=draft(Audience(people=("u_wu", "u_chen"))))
    world.at(FRIDAY + timedelta(minutes=7))
    await world.notices.get(viewer="u_wu", notice_id=view.id)
    with pytest.raises(RecallRefused) as refused:
        await world.notices.recall(author="u_zhou", notice_id=view.id)
    assert message_for(refused.value) == "已有 1 人打开过这条通知，不能收回：吴昊（11-27 15:07）"
    assert (await world.notices.get(viewer="u_zhou", notice_id=view.id)).status == NoticeStatus.PUBLISHED
    assert await outbox(world.db, "card_closed") == []
    with pytest.raises(NotAuthor):
        await world.notices.recall(author="u_wu", notice_id=view.id)


# -- the access password --------------------------------------------------------------------------------


async def test_five_wrong_passwords_lock_that_person_out_for_fifteen_minutes(world: World) -> None:
    view = await world.notices.create(
        author="u_zhou",
        draft=draft(
            Audience(people=("u_wu", "u_chen")), confidentiality=Confidentiality.SECRET, password="lan-2026"
        ),
    )
    (row,) = await rows(world.db, NoticeRow)
    assert (
        row.password_hash and row.password_hash.startswith("scrypt$") and "lan-2026" not in row.password_hash
    )
    prompt = await world.notices.get(viewer="u_wu", notice_id=view.id)
    assert prompt.needs_password and prompt.body is None
    assert (await receipts(world.db, view.id))["u_wu"].state == "sent"  # the prompt is not an open
    for left in (4, 3, 2, 1):
        with pytest.raises(WrongPassword) as wrong:
            await world.notices.unlock(viewer="u_wu", notice_id=view.id, password="guess")
        assert wrong.value.context["tries_left"] == left
    with pytest.raises(LockedOut) as locked:
        await world.notices.unlock(viewer="u_wu", notice_id=view.id, password="guess")
    assert "15:15" in message_for(locked.value)
    with pytest.raises(LockedOut):  # even the right one, while locked
        await world.notices.unlock(viewer="u_wu", notice_id=view.id, password="lan-2026")
    # another person is not locked out
    assert (await world.notices.unlock(viewer="u_chen", notice_id=view.id, password="lan-2026")).body
    world.at(FRIDAY + timedelta(minutes=15))
    opened = await world.notices.unlock(
        viewer="u_wu", notice_id=view.id, password="lan-2026", channel="wecom"
    )
    assert (
        opened.body == "请各部门于周五前完成自查。"
        and opened.my_receipt
        and opened.my_receipt.state == ReceiptState.OPENED
    )
    kinds = [e.kind for e in await events(world.db, view.id) if e.actor == "u_wu"]
    assert kinds == ["unlock_failed"] * 5 + ["locked", "unlocked", "opened"]
    views = await rows(world.db, NoticeViewRow, col(NoticeViewRow.notice_id) == view.id)
    assert [(v.person, v.channel) for v in views] == [("u_chen", "web"), ("u_wu", "wecom")]
    progress = await world.notices.receipts(viewer="u_zhou", notice_id=view.id)
    assert [v.name for v in progress.views] == ["陈静", "吴昊"]


# -- 催办 -------------------------------------------------------------------------------------------------


async def test_urge_reaches_only_those_who_have_not_answered_once_per_half_hour(world: World) -> None:
    view = await world.notices.create(
        author="u_zhou", draft=draft(Audience(people=("u_wu", "u_chen", "u_liu")))
    )
    await world.notices.acknowledge(person="u_chen", notice_id=view.id)
    await world.notices.get(viewer="u_liu", notice_id=view.id)  # opened, not answered
    urged = await world.notices.urge(author="u_zhou", notice_id=view.id)
    assert sorted(urged.reminded) == ["u_liu", "u_wu"]
    texts = await outbox(world.db, "text")
    assert sorted(r.recipient for r in texts) == ["u_liu", "u_wu"]
    assert "【催办】周杰 提醒您确认收到通知" in texts[0].payload["text"]
    world.at(FRIDAY + timedelta(minutes=20))
    with pytest.raises(UrgeTooSoon) as soon:
        await world.notices.urge(author="u_zhou", notice_id=view.id)
    assert message_for(soon.value) == "每条通知 30 分钟内只能催办一次，15:30 后可再次催办"
    world.at(FRIDAY + timedelta(minutes=30))
    assert len((await world.notices.urge(author="u_zhou", notice_id=view.id)).reminded) == 2


# -- card taps ---------------------------------------------------------------------------------------------


def deps_for(world: World, user_id: str) -> ChatDeps:
    user = notice_org().users[user_id]
    return ChatDeps(
        workflow=world.workflow,
        tz=TZ,
        now=world.clock.now,
        user=user,
        todo=cast(Any, None),
        notices=world.notices,
    )


def tap(task_id: str, platform: str = "wecom") -> CardAction:
    return CardAction(
        sender=Sender(platform, "x"), event_id="e1", task_id=task_id, version=1, action="notice_ack"
    )


async def test_a_card_tap_acknowledges_and_a_repeated_tap_changes_nothing(world: World) -> None:
    view = await world.notices.create(author="u_zhou", draft=draft(Audience(people=("u_wu", "u_chen"))))
    (card,) = await outbox(world.db, "task_card", "u_wu")
    assert card.task_id is not None
    assert root_router().resolve(tap(card.task_id)) is on_notice_tap
    assert await on_notice_tap(tap(card.task_id), deps_for(world, "u_wu")) is None
    stored = await receipts(world.db, view.id)
    assert (stored["u_wu"].state, stored["u_wu"].acknowledged_via) == ("acknowledged", "wecom")
    again = await on_notice_tap(tap(card.task_id), deps_for(world, "u_wu"))
    assert again == "您已确认收到，无需重复操作"
    assert len(await outbox(world.db, "card_closed", "u_wu")) == 1
    assert len(await events(world.db, view.id, "acknowledged")) == 1
    # someone else's card
    assert (
        await on_notice_tap(tap(card.task_id), deps_for(world, "u_chen"))
        == "这张卡片不是发给您的，您的点击没有产生任何变更"
    )
    assert (await receipts(world.db, view.id))["u_chen"].state == "sent"
    progress = await world.notices.receipts(viewer="u_zhou", notice_id=view.id)
    assert (progress.acknowledged, [p.person for p in progress.pending]) == (1, ["u_chen"])


# -- digests --------------------------------------------------------------------------------------------------


async def test_the_digest_lists_each_persons_unanswered_notices(world: World) -> None:
    view = await world.notices.create(author="u_zhou", draft=draft(Audience(people=("u_wu", "u_chen"))))
    await world.notices.acknowledge(person="u_chen", notice_id=view.id)
    items = await world.notices.digest_items()
    assert [(i.recipient, i.title) for i in items] == [("u_wu", "关于年底安全检查的通知")]
    org = notice_org()
    (message,) = digest.person_digests(
        [], org=org, tz=TZ, now=world.clock.now(), public_url="http://x", notices=items
    )
    assert message.recipient == "u_wu"
    assert message.payload["text"].startswith("【通知汇总】您有 1 条通知未确认收到")
    assert "「关于年底安全检查的通知」（周杰 发布，11-30 18:00 起视为已收到）" in message.payload["text"]
    assert [n["notice_id"] for n in message.payload["notices"]] == [view.id]
    assert [s.id for s in await world.notices.unanswered_for("u_wu")] == [view.id]
    assert await world.notices.unanswered_for("u_chen") == []
    mine: list[NoticeView] = [await world.notices.get(viewer="u_zhou", notice_id=view.id)]
    assert (mine[0].total, mine[0].acknowledged) == (2, 1)


async def test_a_delegate_added_later_gets_a_card_and_a_receipt_of_their_own(world: World) -> None:
    view = await world.notices.create(author="u_zhou", draft=draft(Audience(people=("u_wu",))))
    async with world.db.transaction() as s:
        added = await world.notices.add_recipient_in(
            s, notice_id=view.id, person="u_chen", added_by="u_wu", now=world.clock.now()
        )
        again = await world.notices.add_recipient_in(
            s, notice_id=view.id, person="u_wu", added_by="u_wu", now=world.clock.now()
        )
    assert added is not None and added.card_no == 2 and again is None
    (card,) = await outbox(world.db, "task_card", "u_chen")
    assert card.task_id == f"nt{view.id}-2"
    stored = await receipts(world.db, view.id)
    assert stored["u_chen"].added_by == "u_wu"
    progress = await world.notices.receipts(viewer="u_zhou", notice_id=view.id)
    assert progress.total == 2 and {p.added_by_name for p in progress.receipts} == {None, "吴昊"}


async def test_the_digest_slot_sends_a_notice_only_digest_through_the_deadline_service(world: World) -> None:
    from services.deadlines import DeadlineService

    DeadlineService(
        db=world.db,
        workflow=world.workflow,
        kinds=world.kinds,
        calendar=world.calendar,
        tz=TZ,
        now=world.clock.now,
        public_url="http://oabot.test",
        notice_items=world.notices.digest_items,
    )
    view = await world.notices.create(author="u_zhou", draft=draft(Audience(people=("u_wu", "u_chen"))))
    await world.notices.acknowledge(person="u_chen", notice_id=view.id)
    from deadlines import timers as timer_rows

    async with world.db.transaction() as s:
        await timer_rows.schedule_once(
            s,
            kind=TimerKind.DIGEST,
            key="digest:test",
            due_at=datetime(2026, 11, 30, 10, 0, tzinfo=TZ),
            now=world.clock.now(),
        )
    world.at(datetime(2026, 11, 30, 10, 0, tzinfo=TZ))
    stats = await TimerScanner(db=world.db, kinds=world.kinds, now=world.clock.now).scan_once()
    assert stats.fired_by_kind["digest"] == 1
    digests = await outbox(world.db, "digest")
    assert [d.recipient for d in digests] == ["u_wu"]
    assert "「关于年底安全检查的通知」" in digests[0].payload["text"]
    assert digests[0].payload["link"].startswith("http://oabot.test/")


async def test_the_notice_trail_is_append_only(world: World) -> None:
    from sqlalchemy import delete, update

    view = await world.notices.create(author="u_zhou", draft=draft(Audience(people=("u_wu",))))
    for statement in (
        update(NoticeEventRow).where(col(NoticeEventRow.notice_id) == view.id).values(actor="u_x"),
        delete(NoticeEventRow).where(col(NoticeEventRow.notice_id) == view.id),
    ):
        with pytest.raises(Exception, match="append-only"):
            async with world.db.transaction() as s:
                await s.execute(statement)
    assert [e.kind for e in await events(world.db, view.id)] == ["created", "published"]


async def test_a_protected_meetings_agenda_is_hidden_with_its_body(world: World) -> None:
    """The meeting's place and agenda are content: a recipient who has not given the access
    password, and an org admin outside a restricted item's audience, see neither."""
    from notices.model import Meeting

    starts = FRIDAY + timedelta(days=3)
    meeting = Meeting(
        starts_at=starts, ends_at=starts + timedelta(hours=1), place="三楼保密室", agenda="并购方案"
    )
    view = await world.notices.create(
        author="u_zhou",
        draft=draft(
            Audience(people=("u_wu", "u_chen")),
            kind=NoticeKind.MEETING,
            meeting=meeting,
            confidentiality=Confidentiality.SECRET,
            password="lan-2026",
        ),
    )
    prompt = await world.notices.get(viewer="u_wu", notice_id=view.id)
    assert prompt.body is None and prompt.meeting is None
    admin = await world.notices.get(viewer="u_zhao", notice_id=view.id)
    assert admin.body is None and admin.meeting is None
    opened = await world.notices.unlock(viewer="u_wu", notice_id=view.id, password="lan-2026")
    assert opened.meeting is not None and opened.meeting.agenda == "并购方案"
    assert (await world.notices.get(viewer="u_zhou", notice_id=view.id)).meeting == opened.meeting


async def test_wrong_passwords_tried_at_once_still_lock_after_five(world: World) -> None:
    """Ten guesses sent together (REST and the page share one count) get five tries, not ten."""
    view = await world.notices.create(
        author="u_zhou",
        draft=draft(Audience(people=("u_wu",)), confidentiality=Confidentiality.SECRET, password="lan-2026"),
    )

    async def guess(n: int) -> str:
        try:
            await world.notices.unlock(viewer="u_wu", notice_id=view.id, password=f"guess-{n}")
        except (WrongPassword, LockedOut) as exc:
            return type(exc).__name__
        return "opened"

    answers = await asyncio.gather(*(guess(n) for n in range(10)))
    assert sorted(answers) == ["LockedOut"] * 6 + ["WrongPassword"] * 4
    assert len(await events(world.db, view.id, "unlock_failed")) == 5
    with pytest.raises(LockedOut):
        await world.notices.unlock(viewer="u_wu", notice_id=view.id, password="lan-2026")


@pytest.mark.parametrize(
    "protection",
    [{"confidentiality": Confidentiality.SECRET}, {"password": "lan-2026"}],
    ids=["secret", "password"],
)
async def test_the_publishing_approval_does_not_carry_protected_text(
    world: World, protection: dict[str, Any]
) -> None:
    """An announcement waits for the office; the request's form (seen by the office, in lists
    and exports) must not hold the text of a restricted or password-protected item."""
    view = await world.notices.create(
        author="u_zhou",
        draft=draft(
            Audience(people=("u_wu", "u_chen")),
            kind=NoticeKind.ANNOUNCEMENT,
            body="并购谈判底价为八千万。",
            **protection,
        ),
    )
    assert view.status == NoticeStatus.PENDING_APPROVAL and view.approval_request
    req = await world.workflow.load(view.approval_request)
    assert "八千万" not in str(req.form)
    assert req.form["subject"] == "关于年底安全检查的通知"


async def test_a_password_protected_notices_card_does_not_show_its_text(world: World) -> None:
    """The card goes to chat and the console: the text the password protects stays off it."""
    view = await world.notices.create(
        author="u_zhou",
        draft=draft(Audience(people=("u_wu",)), body="保险柜密码为 8848。", password="lan-2026"),
    )
    (card,) = await outbox(world.db, "task_card", "u_wu")
    assert "8848" not in str(card.payload) and card.payload["title"] == "关于年底安全检查的通知"
    await world.notices.recall(author="u_zhou", notice_id=view.id)
    (closed,) = await outbox(world.db, "card_closed", "u_wu")
    assert "8848" not in str(closed.payload)


async def test_the_author_cannot_rewrite_the_publishing_request_the_office_returned(world: World) -> None:
    """The office reads the notice through the request's form: returned to its author, the form
    cannot be resubmitted rewritten (an audience of 市场部 shown for a notice to everyone)."""
    audience = Audience(departments=(DeptPick("marketing", with_sub=True),))
    view = await world.notices.create(author="u_sun", draft=draft(audience))
    assert view.approval_request
    (task,) = [
        t for t in await world.workflow.pending_tasks("u_zhao") if t.request_id == view.approval_request
    ]
    await world.workflow.act(
        request_id=task.request_id,
        action=Action(
            kind=ActionKind.RETURN, actor="u_zhao", task_id=task.task_id, version=task.version, target="initiator",
            comment="请说明范围",
        ),
    )  # fmt: skip
    req = await world.workflow.load(view.approval_request)
    assert req.status == RequestStatus.RETURNED
    with pytest.raises(ActionNotAllowed):
        await world.workflow.act(
            request_id=req.id,
            action=Action(kind=ActionKind.RESUBMIT, actor="u_sun", form={**req.form, "audience": "仅本部门"}),
        )
    assert (await world.workflow.load(req.id)).form["audience"] == req.form["audience"]


async def test_the_returned_publishing_request_may_be_resubmitted_as_it_was(world: World) -> None:
    """Resubmitting the office's returned request unchanged (as the request page posts it) is allowed."""
    audience = Audience(departments=(DeptPick("marketing", with_sub=True),))
    view = await world.notices.create(author="u_sun", draft=draft(audience))
    assert view.approval_request
    (task,) = [
        t for t in await world.workflow.pending_tasks("u_zhao") if t.request_id == view.approval_request
    ]
    await world.workflow.act(
        request_id=task.request_id,
        action=Action(
            kind=ActionKind.RETURN, actor="u_zhao", task_id=task.task_id, version=task.version, target="initiator",
            comment="请说明范围",
        ),
    )  # fmt: skip
    req = await world.workflow.load(view.approval_request)
    again = await world.workflow.act(
        request_id=req.id, action=Action(kind=ActionKind.RESUBMIT, actor="u_sun", form=dict(req.form))
    )
    assert again.status == RequestStatus.RUNNING
