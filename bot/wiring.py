"""Wires the approval workflow into the app: templates, the workflow service, the deadline
service, deliveries and the outbox dispatcher loop, and the timer scan.

The timer kind registry is made at build time; the services register their kinds on it while
`workflow_ctx` (and the stats and check-in wiring) build them, and `timers_ctx`, the last
cleanup_ctx, then seeds the recurring timers and starts the one scan (and stops it first).

The settings' role says which loops run: the inbox worker, the outbox dispatcher and the timer
scan run in the `worker` and `all` roles; `web` only stores and acknowledges callbacks (through
the inbox's group-commit writer) and serves pages and the API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from aiohttp import web

from approvals.confidentiality import level_of
from approvals.definitions import Template
from approvals.forms import WorkingDays
from approvals.model import Request, Step, Task
from approvals.template_loader import load_templates
from bot.checkin_wiring import checkin_config, setup_checkins
from bot.keys import (
    API_TOKENS,
    CHAT,
    CHECKINS,
    CLOCK,
    CONSOLE,
    DB,
    DEADLINES,
    DISPATCHER,
    HTTP,
    INBOX,
    KV,
    LINKS,
    METRICS,
    NOTICE_RESPONSES,
    NOTICES,
    ORG_SYNC,
    SCHEDULER,
    SESSIONS,
    SETTINGS,
    SUPERVISION,
    TIMER_KINDS,
    TIMERS,
    WORKFLOW,
    WORKSPACE_LISTS,
)
from bot.org_sync_wiring import build_org_sync
from bot.platforms.dingtalk import dingtalk_delivery, setup_dingtalk
from bot.platforms.inbox import Inbox, kv_first_delivery
from bot.platforms.wecom import setup_wecom, wecom_delivery
from bot.settings import Settings
from bot.trail_key import load_trail_keys
from bot.web.admin import setup_admin
from bot.web.api import setup_api
from bot.web.api_calendar import setup_deadlines
from bot.web.api_stats import setup_stats
from bot.web.console.pages import setup_console
from bot.web.openapi import setup_openapi
from bot.web.workspace import setup_workspace
from deadlines.calendar import WorkingCalendar
from deadlines.org_calendar import OrgCalendar
from deadlines.timer_kinds import TimerKinds, TimerScanner
from handlers.chat import ChatService
from notices.model import Confidentiality
from notices.rules import NoticeRules
from notifications.console import ConsoleDelivery
from notifications.delivery import Delivery
from notifications.dispatcher import OutboxDispatcher
from notifications.send_limits import SendLimits
from services.api_tokens import ApiTokens
from services.approvals import Workflow, WorkflowDeps
from services.chat_todo import ChatTodo
from services.checkins import CheckinService
from services.console import ConsoleService
from services.deadlines import DeadlineHooks, DeadlineService
from services.directory import Directory
from services.documents import Documents
from services.identity import Sessions
from services.links import PersonalLinks
from services.notice_responses import NoticeResponses
from services.notices import PUBLISH_TEMPLATE, Notices, NoticesDeps
from services.supervision import Supervision
from services.workspace_lists import WorkspaceLists
from storage.inbox_writer import InboxWriter

logger = logging.getLogger(__name__)
TODO_LIST_PATH = "/m/"  # the workspace task list a coalesced-cards digest links to


def load_all_templates(settings: Settings) -> dict[str, Template]:
    dirs = [Path(settings.templates_dir)] if settings.templates_dir else []
    return load_templates(dirs)


def working_calendar(settings: Settings) -> WorkingCalendar:
    return WorkingCalendar(settings.tz, settings.working_hours)


def make_deadline_fn(calendar: WorkingCalendar | OrgCalendar):  # type: ignore[no-untyped-def]
    """A task is due after its step's working-hour limit, capped by the request's urgency."""

    def due(request: Request, step: Step, task: Task, now: datetime) -> datetime | None:
        by_step = calendar.add_working_time(now, timedelta(hours=step.time_limit_hours))
        return min(by_step, request.deadline())

    return due


def make_working_days(calendar: OrgCalendar) -> WorkingDays:
    """Working days from one date to another, both included (a leave's length), with the
    organisation's own holidays and working days."""

    def count(first: date, last: date) -> int:
        days = (first + timedelta(days=i) for i in range((last - first).days + 1))
        return sum(calendar.current.is_working_day(d) for d in days)

    return count


def notice_rules(settings: Settings) -> NoticeRules:
    """The notice rules as the organisation configured them (OABOT_NOTICE_*)."""
    return NoticeRules(
        refuse_from=(
            Confidentiality(settings.confidentiality_refused_from)
            if settings.confidentiality_refused_from
            else None
        ),
        direct_own_department=settings.notice_direct_own_department,
        direct_named_people=settings.notice_direct_named,
        approval_always=settings.notice_approval_always,
        ack_working_days=settings.notice_ack_working_days,
    )


async def workflow_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    clock = app[CLOCK]
    db = app[DB]
    calendar = OrgCalendar(settings.tz, settings.working_hours)
    await calendar.reload(db, now=clock.now())
    trail_keys = load_trail_keys(settings)
    deadline_hooks = DeadlineHooks(calendar=calendar, tz=settings.tz, trail_key=trail_keys.current)
    directory = Directory(db, clock.now)
    checkins = CheckinService(db, directory.org, checkin_config(settings), clock.now, app[TIMER_KINDS])
    app[CHECKINS] = checkins
    links = PersonalLinks(
        db, secret=settings.checkins.link_secret, public_url=settings.public_url, now=clock.now
    )
    app[LINKS] = links
    documents = Documents(
        tz=settings.tz,
        pattern=settings.doc_number_pattern,
        refused_from=level_of(settings.confidentiality_refused_from),
    )
    app[NOTICE_RESPONSES] = NoticeResponses(
        db=db,
        directory=directory,
        links=links,
        calendar=calendar,
        tz=settings.tz,
        now=clock.now,
        kinds=app[TIMER_KINDS],
        rules=notice_rules(settings),
    )
    workflow = Workflow(
        WorkflowDeps(
            db=db,
            templates=load_all_templates(settings),
            tz=settings.tz,
            now=clock.now,
            directory=directory,
            links=links,
            deadline_fn=make_deadline_fn(calendar),
            hooks=[*deadline_hooks.hooks, checkins.on_outcome],
            delegation_hooks=deadline_hooks.delegation_hooks,
            validators=[checkins.check_submission, documents.check_submission],
            working_days=make_working_days(calendar),
            trail_keys=trail_keys,
            admin_roles=settings.admin_roles,
            documents=documents,
        )
    )
    app[WORKFLOW] = workflow
    notices = Notices(
        NoticesDeps(
            db=db,
            directory=directory,
            links=links,
            tz=settings.tz,
            now=clock.now,
            calendar=calendar,
            rules=notice_rules(settings),
            admin_roles=settings.admin_roles,
            office_role=settings.office_role,
            kinds=app[TIMER_KINDS],
            workflow=workflow,
        )
    )
    workflow.d.hooks.append(notices.on_approval_outcome)  # publishes a notice the office approved
    workflow.d.validators.append(notices.check_submission)  # notice_publish is the service's alone
    workflow.d.system_templates = frozenset({PUBLISH_TEMPLATE})
    notices.publish_hooks.append(app[NOTICE_RESPONSES].schedule_meeting_reminders)
    notices.publish_hooks.append(app[NOTICE_RESPONSES].schedule_poll_close)  # closes at closes_at
    app[NOTICE_RESPONSES].unlock = notices.unlock  # the access password of a meeting or poll
    app[NOTICE_RESPONSES].add_recipient = notices.add_recipient_in  # a 委派 delegate joins the list
    app[NOTICES] = notices
    deadlines = DeadlineService(
        db=db,
        workflow=workflow,
        kinds=app[TIMER_KINDS],
        calendar=calendar,
        tz=settings.tz,
        now=clock.now,
        public_url=settings.public_url,
        digest_times=settings.digest_times,
        office_role=settings.office_role,
        escalate_to=settings.escalate_to,
        notice_items=notices.digest_items,
    )
    app[DEADLINES] = deadlines
    lists = WorkspaceLists(workflow, db, settings.tz, clock.now)
    app[WORKSPACE_LISTS] = lists
    supervision = Supervision(
        workflow,
        admin_roles=settings.admin_roles,
        escalate_to=settings.escalate_to,
        tz=settings.tz,
        now=clock.now,
    )
    app[SUPERVISION] = supervision
    chat = ChatService(
        workflow,
        kv_first_delivery(app[KV]),
        settings.tz,
        clock.now,
        todo=ChatTodo(lists, app[KV]),
        checkins=checkins,
        supervision=supervision,
        notices=notices,
        notice_responses=app[NOTICE_RESPONSES],
    )
    app[CHAT] = chat
    app[CONSOLE] = ConsoleService(db, clock.now)
    app[SESSIONS] = Sessions(app[KV], directory, clock.now)
    if settings.wecom is not None or settings.dingtalk is not None:
        app[ORG_SYNC] = build_org_sync(
            settings,
            db=db,
            http=app[HTTP],
            kv=app[KV],
            workflow=workflow,
            now=clock.now,
            sessions=app[SESSIONS],
            directory=directory,
            kinds=app[TIMER_KINDS],
        )
    app[API_TOKENS] = ApiTokens(
        db, directory, clock.now, bootstrap=settings.api_token, admin_roles=settings.admin_roles
    )
    refusals = app[METRICS].counter(
        "callback_refusals",
        "Platform callbacks refused (unsigned, stale, replayed, or signed with unusable content).",
        ("platform", "reason"),
    )
    inbox = Inbox(
        db,
        app[KV],
        chat.process,
        now=clock.now,
        on_refusal=lambda platform, reason: refusals.labels(platform=platform, reason=reason).inc(),
        lease=timedelta(seconds=settings.inbox_lease_s),
        writer=InboxWriter(
            db, max_rows=settings.inbox_batch_rows, max_wait_s=settings.inbox_batch_wait_ms / 1000
        ),
    )
    app[INBOX] = inbox
    dispatcher = OutboxDispatcher(
        db,
        deliveries(app),
        org=workflow.org,
        now=clock.now,
        limits=send_limits(app),
        todo_link=lambda user: links.url(user, TODO_LIST_PATH),
        count=send_limit_counter(app),
        lease=timedelta(seconds=settings.outbox_lease_s),
    )
    app[DISPATCHER] = dispatcher
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    if settings.runs_worker:
        tasks.append(asyncio.create_task(dispatcher.run_forever(stop, settings.dispatch_interval_s)))
        tasks.append(asyncio.create_task(inbox.run_forever(stop, settings.dispatch_interval_s)))
    await deadlines.start()
    yield
    stop.set()
    await inbox.close()
    for task in tasks:
        try:
            await asyncio.wait_for(task, timeout=5)
        except TimeoutError:
            task.cancel()


async def timers_ctx(app: web.Application) -> AsyncIterator[None]:
    """The one timer scan: after every service registered its kinds, stopped before they close."""
    scanner = TimerScanner(
        db=app[DB],
        kinds=app[TIMER_KINDS],
        now=app[CLOCK].now,
        scan_interval_s=app[SETTINGS].timer_scan_interval_s,
        lease=timedelta(seconds=app[SETTINGS].timer_lease_s),
    )
    app[TIMERS] = scanner
    if app[SETTINGS].role == "web":  # the web role leaves timers to the workers
        yield
        return
    await scanner.start(app[SCHEDULER])
    yield
    await scanner.stop(app[SCHEDULER])


def send_limits(app: web.Application) -> SendLimits:
    """Per-person messages per minute on each platform, counted in the shared key-value store."""
    settings = app[SETTINGS]
    per_minute: dict[str, int] = {}
    if settings.wecom is not None:
        per_minute["wecom"] = settings.wecom.send_per_minute
    if settings.dingtalk is not None:
        per_minute["dingtalk"] = settings.dingtalk.send_per_minute
    return SendLimits(app[KV], per_minute, app[CLOCK].now)


def send_limit_counter(app: web.Application) -> Callable[[str, str], None]:
    counter = app[METRICS].counter(
        "outbox_send_limited",
        "Outbox messages a send limit changed: task cards coalesced into a digest, messages held "
        "for a person's limit, and platform frequency-limit answers.",
        ("event", "channel"),
    )
    return lambda event, channel: counter.labels(event=event, channel=channel or "none").inc()


def deliveries(app: web.Application) -> list[Delivery]:
    """Every channel configured: the console, WeCom, DingTalk (a person may be on several)."""
    settings = app[SETTINGS]
    out: list[Delivery] = []
    if settings.console:
        out.append(ConsoleDelivery(app[DB], app[CLOCK].now))
    if settings.wecom is not None:
        out.append(wecom_delivery(app))
    if settings.dingtalk is not None:
        out.append(dingtalk_delivery(app))
    return out


def setup_workflow(app: web.Application) -> None:
    settings = app[SETTINGS]
    app[TIMER_KINDS] = TimerKinds()
    app.cleanup_ctx.append(workflow_ctx)
    setup_api(app)
    setup_openapi(app)
    setup_deadlines(app)
    setup_stats(app)
    setup_console(app)
    setup_checkins(app)
    setup_workspace(app)
    setup_admin(app)
    if settings.wecom is not None:
        setup_wecom(app)
    if settings.dingtalk is not None:
        setup_dingtalk(app)
    app.cleanup_ctx.append(timers_ctx)  # last: every kind is registered when it starts
