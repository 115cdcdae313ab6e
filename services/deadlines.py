"""The deadline service: writes timers with every state change, and fires its kinds of them.

- `DeadlineHooks` (run inside the transaction of every approval state change, so the workflow
  is built with them): a task that became pending gets its ladder's timer rows; tasks that are
  no longer pending lose theirs; an approved leave 请假 request creates its delegation, a
  withdrawn one cancels it; a delegation that moves pending tasks gets a timer for its start.
- `DeadlineService` (built with the workflow, after it) registers the handlers of its timer
  kinds on the registry (`deadlines.timer_kinds`): the reminder rungs and automatic decisions
  of a task, delegation starts and digest slots. The registry's one scan claims the due timers
  and calls them; before each scan the working calendar is refreshed if stale.
- Digests are a recurring kind: one row per slot with a unique key, so replicas never send a
  slot twice; firing a slot schedules the next one.

What is said and when is decided by the pure `deadlines.ladder` / `deadlines.digest` /
`deadlines.leave`; automatic decisions go through `approvals.engine.system_act` and every trail
event through the engine (`system_note`). This module only loads, calls them, and stores what
they return (a lost optimistic race is retried by `services.optimistic`); it neither claims nor
schedules scans.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from approvals import engine
from approvals.definitions import Permission, Template
from approvals.engine import Context, Outcome, SystemNote
from approvals.errors import ApprovalError
from approvals.model import ActionKind, Delegation, Request, RequestStatus, TaskStatus, Urgency
from approvals.trail import TrailKey
from deadlines import digest, ladder, leave, timers
from deadlines.ladder import DEFAULT_LADDER, AutoActionKind, LadderConfigError, Message, PlannedRung, RungKind
from deadlines.org_calendar import OrgCalendar
from deadlines.slots import slot_key
from deadlines.timer_kinds import FireResult, TimerKinds
from deadlines.timer_kinds import ids as _ids
from deadlines.timers import TASK_KINDS, Timer, TimerKind, TimerStatus
from notifications import wording
from notifications.compose import with_link
from notifications.messages import message_for
from org.model import Org
from services.approvals import DelegationHook, OutcomeHook, Workflow, request_page
from services.links import PersonalLinks
from services.optimistic import retry_on_conflict
from storage import approval_store as store
from storage.approval_models import DelegationRow, OutboxRow, RequestRow, TaskRow
from storage.db import Database

logger = logging.getLogger(__name__)

WORKSPACE_HOME = "/m/"  # 待我处理, where a digest's link opens

DEFAULT_DIGEST_TIMES = (time(10, 0), time(15, 30))

_AUTO_ACTIONS = {
    AutoActionKind.APPROVE: ActionKind.APPROVE,
    AutoActionKind.REJECT: ActionKind.REJECT,
    AutoActionKind.TRANSFER: ActionKind.TRANSFER,
}


class _Busy(Exception):
    """A firing kept losing optimistic-lock races; it is retried at a later scan."""


class DeadlineHooks:
    """Timers and leave delegations written with every state change. Needs no workflow."""

    def __init__(self, *, calendar: OrgCalendar, tz: ZoneInfo, trail_key: TrailKey | None) -> None:
        self.calendar = calendar
        self.tz = tz
        self.trail_key = trail_key  # seals the notes it adds to the trail

    @property
    def hooks(self) -> list[OutcomeHook]:
        return [self.on_outcome, self.on_leave_outcome]

    @property
    def delegation_hooks(self) -> list[DelegationHook]:
        return [self.on_delegation]

    # -- hooks: inside the transaction of the state change -------------------------------------
    async def on_outcome(
        self, session: AsyncSession, out: Outcome, template: Template, org: Org, now: datetime
    ) -> None:
        """Timers follow the tasks: new ones for tasks that became pending, none for the others."""
        if not out.events:
            return
        req = out.request
        activated = {e.task_id for e in out.events if e.kind == "task_assigned" and e.task_id}
        pending = [t for t in req.tasks if t.status == TaskStatus.PENDING]
        keep = [t.id for t in pending if t.id not in activated]
        await timers.cancel_task_timers(session, request_id=req.id, keep_task_ids=keep, now=now)
        for task in pending:
            if task.id not in activated or task.permission == Permission.NOTIFY:
                continue
            rungs = self.rungs_for(req, task.id, template)
            await timers.schedule_rungs(session, request_id=req.id, task_id=task.id, rungs=rungs, now=now)

    def rungs_for(self, request: Request, task_id: str, template: Template) -> list[PlannedRung]:
        """The ladder of one pending task. Never raises: a state change must not fail on it."""
        task = request.task(task_id)
        if task is None or task.due_at is None or task.activated_at is None:
            return []
        step = request.steps[task.step_index]
        try:
            chosen = ladder.ladder_for(template, step.key)
        except LadderConfigError as exc:
            logger.error(
                "bad deadlines in template %s; using the default ladder: %s",
                template.key,
                exc,
                extra={"request_id": request.id},
            )
            chosen = DEFAULT_LADDER
        try:
            return ladder.plan_rungs(
                chosen,
                activated_at=task.activated_at,
                due_at=task.due_at,
                step_limit=timedelta(hours=step.time_limit_hours),
                urgency=request.urgency,
                calendar=self.calendar,
            )
        except ValueError:
            logger.exception(
                "no reminder ladder for task %s",
                task.id,
                extra={"request_id": request.id, "task_id": task.id},
            )
            return []

    async def on_leave_outcome(
        self, session: AsyncSession, out: Outcome, template: Template, org: Org, now: datetime
    ) -> None:
        """An approved leave request sets up its delegation; a withdrawn or terminated one ends it."""
        req = out.request
        if req.template_key != leave.LEAVE_TEMPLATE:
            return
        kinds = {e.kind for e in out.events}
        if "request_approved" in kinds and req.status == RequestStatus.APPROVED:
            await self._start_leave_delegation(session, req, org, now)
        elif kinds & {"request_withdrawn", "request_terminated"}:
            await self._end_leave_delegations(session, req, now)

    async def _start_leave_delegation(
        self, session: AsyncSession, req: Request, org: Org, now: datetime
    ) -> None:
        plan = leave.leave_delegation(req, org=org, tz=self.tz, now=now)
        d = plan.delegation
        if d is None:
            problem = plan.problem if plan.refusal is None else f"未设置代理：{message_for(plan.refusal)}"
            logger.info("no delegation for leave: %s", problem, extra={"request_id": req.id})
            await self._append_trail(session, req, now, SystemNote.DELEGATION_NOT_CREATED, comment=problem)
            return
        if await session.get(DelegationRow, d.id) is not None:
            return
        await store.insert_delegation(session, delegation=d)
        await self.on_delegation(session, d, now, even_if_started=True)
        await self._append_trail(
            session,
            req,
            now,
            SystemNote.DELEGATION_CREATED,
            after=d.delegate,
            delegation=d.id,
            delegator=d.delegator,
            starts_at=d.starts_at.isoformat(),
            ends_at=d.ends_at.isoformat(),
        )
        logger.info(
            "leave delegation created",
            extra={"request_id": req.id, "delegation_id": d.id, "delegate": d.delegate},
        )

    async def _end_leave_delegations(self, session: AsyncSession, req: Request, now: datetime) -> None:
        rows = (
            (
                await session.execute(
                    select(DelegationRow)
                    .where(DelegationRow.source_request == req.id)  # type: ignore[arg-type]
                    .where(DelegationRow.cancelled_at.is_(None))  # type: ignore[union-attr]
                )
            )
            .scalars()
            .all()
        )
        for row in rows:
            await store.cancel_delegation(session, delegation_id=row.id, now=now)
            await timers.cancel_by_key(session, key=_delegation_key(row.id), now=now)
            await self._append_trail(
                session, req, now, SystemNote.DELEGATION_CANCELLED, after=row.delegate, delegation=row.id
            )
            logger.info("leave delegation cancelled", extra={"request_id": req.id, "delegation_id": row.id})

    async def _append_trail(
        self,
        session: AsyncSession,
        req: Request,
        now: datetime,
        note: SystemNote,
        *,
        after: str | None = None,
        comment: str | None = None,
        **data: Any,
    ) -> None:
        """Add one system note (through the engine) to a request this transaction already saved."""
        before = req.version
        event = engine.system_note(req, now, note, after=after, comment=comment, **data)
        await store.append_to_saved_request(
            session, request=req, loaded_version=before, events=[event], key=self.trail_key
        )

    async def on_delegation(
        self, session: AsyncSession, d: Delegation, now: datetime, *, even_if_started: bool = False
    ) -> None:
        """A delegation that moves pending tasks gets a timer for its start.

        (One created through the API that has already started moved them itself; one created
        by an approved leave lets the next scan move them.)"""
        if not d.move_pending or (d.starts_at <= now and not even_if_started):
            return
        await timers.schedule_once(
            session,
            kind=TimerKind.DELEGATION_START,
            key=_delegation_key(d.id),
            due_at=max(d.starts_at, now),
            now=now,
            ref=d.id,
        )


class DeadlineService:
    """Fires the deadline timers: task rungs, delegation starts, digest slots."""

    def __init__(
        self,
        *,
        db: Database,
        workflow: Workflow,
        kinds: TimerKinds,
        calendar: OrgCalendar,
        tz: ZoneInfo,
        now: Callable[[], datetime],
        public_url: str,
        digest_times: Sequence[time] = DEFAULT_DIGEST_TIMES,
        office_role: str = "hr_manager",
        escalate_to: str = "",
        notice_items: Callable[[], Awaitable[list[digest.NoticeItem]]] | None = None,
    ) -> None:
        self.db = db
        # the unanswered notices the digests also list (`services.notices.Notices.digest_items`)
        self.notice_items = notice_items
        self.office_role = office_role
        self.escalate_to = escalate_to
        self.workflow = workflow
        self.calendar = calendar
        self.tz = tz
        self.now = now
        self.public_url = public_url
        self.digest_times = tuple(sorted(digest_times))
        for kind in (TimerKind.REMIND, TimerKind.DUE, TimerKind.ESCALATE, TimerKind.AUTO):
            kinds.register(kind, self._fire_task_rung)
        kinds.register(TimerKind.DELEGATION_START, self._fire_delegation)
        kinds.register(TimerKind.CALENDAR_REPLAN, self._fire_replan)
        self._planner = DeadlineHooks(calendar=calendar, tz=tz, trail_key=workflow.trail_key)
        kinds.register(TimerKind.DIGEST, self._fire_digest, next_slot=self.schedule_next_digest)
        kinds.before_scan(self._refresh_calendar)

    async def start(self) -> None:
        """Load the calendar and name the templates whose deadlines fall back to the default ladder."""
        now = self.now()
        if self.calendar.loaded_at is None:
            await self.calendar.reload(self.db, now=now)
        for t in self.workflow.d.templates.values():
            for problem in ladder.template_problems(t):
                logger.error("%s (the default ladder is used instead)", problem)

    async def _refresh_calendar(self, now: datetime) -> None:
        await self.calendar.refresh_if_stale(self.db, now=now)

    async def _fire_task_rung(self, timer: Timer) -> FireResult:
        return await self._fire_rung(timer, await self.workflow.org())

    async def _fire_rung(self, timer: Timer, org: Org) -> FireResult:
        rung = PlannedRung.from_data(timer.kind, timer.due_at, timer.data)
        return await retry_on_conflict(
            functools.partial(self._fire_rung_once, timer, rung, org),
            busy=_Busy(f"timer {timer.id}: the request kept changing"),
        )

    async def _fire_rung_once(self, timer: Timer, rung: PlannedRung, org: Org) -> FireResult:
        """One attempt of a rung: claim, load, ping or decide, save, all in one transaction."""
        now = self.now()
        async with self.db.transaction() as session:
            # First: only the holder of the claim may fire, and the effects commit with it.
            if not await timers.finish(session, timer, now=now):
                return FireResult.LOST
            loaded = await store.load_request(session, request_id=timer.request_id or "")
            req = loaded.request if loaded else None
            task = req.task(timer.task_id) if req is not None and timer.task_id else None
            if (
                loaded is None
                or req is None
                or task is None
                or req.status != RequestStatus.RUNNING
                or task.status != TaskStatus.PENDING
            ):
                await timers.set_status(
                    session, timer.id, status=TimerStatus.CANCELLED, error="the task is no longer pending"
                )
                return FireResult.CANCELLED
            if rung.quiet and req.urgency != Urgency.URGENT and ladder.in_quiet_hours(self.calendar, now):
                await timers.reschedule(session, timer.id, due_at=self.calendar.next_working_start(now))
                return FireResult.DEFERRED
            template = self.workflow.template(req.template_key)
            if rung.kind == RungKind.AUTO:
                return await self._auto_action(session, timer, loaded, rung, template, org, now)
            ping = ladder.compose_ping(
                rung,
                request=req,
                task=task,
                template=template,
                org=org,
                tz=self.tz,
                now=now,
                public_url=self.public_url,
                office=self.office(org),
            )
            if not ping.messages:
                await timers.set_status(
                    session, timer.id, status=TimerStatus.DONE, error="nobody to tell at this level"
                )
                return FireResult.SKIPPED
            await store.save_request(session, loaded=loaded, events=ping.events, key=self.workflow.trail_key)
            await _enqueue(session, ping.messages, now, self.workflow.d.links)
        logger.info(
            "%s rung fired",
            rung.kind.value,
            extra={**_ids(timer), "recipients": [m.recipient for m in ping.messages]},
        )
        return FireResult.FIRED

    def office(self, org: Org) -> list[str]:
        """Who gets 督办 past the top of the manager chain: the configured person, else the
        office role's holders."""
        if self.escalate_to and org.is_active(self.escalate_to):
            return [self.escalate_to]
        return sorted(org.role_holders(self.office_role))

    async def _auto_action(
        self,
        session: AsyncSession,
        timer: Timer,
        loaded: store.Loaded,
        rung: PlannedRung,
        template: Template,
        org: Org,
        now: datetime,
    ) -> FireResult:
        req = loaded.request
        task = req.task(timer.task_id or "")
        assert task is not None
        action = rung.action or AutoActionKind.APPROVE
        target = org.manager_of(task.assignee) if action == AutoActionKind.TRANSFER else None
        delegations = await store.active_delegations(session, now=now)
        ctx = Context(
            template=template,
            org=org,
            now=now,
            tz=self.tz,
            delegations=delegations,
            deadline_fn=self.workflow.d.deadline_fn,
            words=wording.phrase,
        )
        try:
            out = engine.system_act(
                ctx,
                req,
                _AUTO_ACTIONS[action],
                task.id,
                ladder.auto_reason(rung, task=task, now=now),
                target=target,
            )
        except ApprovalError as exc:
            # The engine refused (e.g. nobody to transfer to): nothing changed; say so on the timer.
            await timers.set_status(session, timer.id, status=TimerStatus.FAILED, error=message_for(exc))
            logger.warning("automatic %s refused: %s", action.value, message_for(exc), extra=_ids(timer))
            return FireResult.SKIPPED
        await store.save_request(session, loaded=loaded, events=out.events, key=self.workflow.trail_key)
        await self.workflow.record(session, out, template, org, now)
        logger.info("automatic %s done", action.value, extra=_ids(timer))
        return FireResult.FIRED

    async def _fire_delegation(self, timer: Timer) -> FireResult:
        async with self.db.session() as session:
            row = await session.get(DelegationRow, timer.ref or "")
        d = store.delegation_from_row(row) if row is not None else None
        now = self.now()
        if d is None or d.cancelled_at is not None or d.ends_at <= now or not d.move_pending:
            async with self.db.transaction() as session:
                await timers.finish(
                    session,
                    timer,
                    now=now,
                    status=TimerStatus.CANCELLED,
                    error="the delegation is not active",
                )
            return FireResult.CANCELLED
        # Moving is idempotent (a moved task is no longer the delegator's), so it may run before
        # the claim is closed: a takeover after a crash moves nothing twice.
        moved = await self.workflow.move_pending_tasks(d)
        async with self.db.transaction() as session:
            if not await timers.finish(session, timer, now=self.now()):
                return FireResult.LOST
        logger.info(
            "delegation started", extra={**_ids(timer), "delegation_id": d.id, "moved_requests": moved}
        )
        return FireResult.FIRED

    # -- a calendar override changed: re-plan pending due times ---------------------------------
    async def _fire_replan(self, timer: Timer) -> FireResult:
        """Every pending task's due time again on the changed calendar; a task whose due time
        moves gets a trail entry (old and new due time, the day and the change) and its rungs
        re-planned. Running it twice changes nothing the second time."""
        await self.calendar.reload(self.db, now=self.now())
        q = (
            select(col(RequestRow.id))
            .join(TaskRow, col(TaskRow.request_id) == col(RequestRow.id))
            .where(col(TaskRow.status) == TaskStatus.PENDING.value)
            .where(col(RequestRow.status) == RequestStatus.RUNNING.value)
            .distinct()
        )
        async with self.db.session() as session:
            request_ids = sorted((await session.execute(q)).scalars().all())
        moved = 0
        for rid in request_ids:
            try:
                moved += await retry_on_conflict(
                    functools.partial(self._replan_request, rid, timer.data),
                    busy=_Busy(f"request {rid}: kept changing while re-planning"),
                )
            except _Busy:
                logger.warning(
                    "due times not re-planned: the request kept changing", extra={"request_id": rid}
                )
        async with self.db.transaction() as session:
            if not await timers.finish(session, timer, now=self.now()):
                return FireResult.LOST
        logger.info(
            "due times re-planned", extra={**_ids(timer), "requests": moved, "checked": len(request_ids)}
        )
        return FireResult.FIRED

    async def _replan_request(self, request_id: str, change: dict[str, Any]) -> int:
        """Re-plan one request's pending tasks in one transaction; 1 if any due time moved."""
        deadline_fn = self.workflow.d.deadline_fn
        now = self.now()
        day, what = str(change.get("day", "")), str(change.get("change", ""))
        async with self.db.transaction() as session:
            loaded = await store.load_request(session, request_id=request_id)
            if deadline_fn is None or loaded is None or loaded.request.status != RequestStatus.RUNNING:
                return 0
            req = loaded.request
            template = self.workflow.d.templates.get(req.template_key)
            if template is None:
                return 0
            events, moved = [], []
            for task in req.pending_tasks():
                if task.activated_at is None or task.due_at is None or task.permission == Permission.NOTIFY:
                    continue
                due = deadline_fn(req, req.steps[task.step_index], task, task.activated_at)
                if due is None or due == task.due_at:
                    continue
                words = wording.replanned_comment(day, what, before=task.due_at, after=due, tz=self.tz)
                events.append(engine.replan_due(req, now, task.id, due, comment=words, day=day, change=what))
                moved.append(task.id)
            if not events:
                return 0
            await store.save_request(session, loaded=loaded, events=events, key=self.workflow.trail_key)
            for task_id in moved:
                await self._replan_rungs(session, req, task_id, template, now)
        logger.info("due times moved by a calendar change", extra={"request_id": request_id, "tasks": moved})
        return 1

    async def _replan_rungs(
        self, session: AsyncSession, req: Request, task_id: str, template: Template, now: datetime
    ) -> None:
        """The task's rungs again from its new due time; a rung that already fired stays fired."""
        rows = await timers.timers_of(session, task_id=task_id)
        fired = {
            (r.kind, int((r.data or {}).get("level", 0)))
            for r in rows
            if r.kind in TASK_KINDS and r.status in (TimerStatus.DONE.value, TimerStatus.FIRING.value)
        }
        others = [t.id for t in req.pending_tasks() if t.id != task_id]
        await timers.cancel_task_timers(session, request_id=req.id, keep_task_ids=others, now=now)
        rungs = [
            replace(r, at=max(r.at, now))
            for r in self._planner.rungs_for(req, task_id, template)
            if (r.kind.value, r.level) not in fired
        ]
        await timers.schedule_rungs(session, request_id=req.id, task_id=task_id, rungs=rungs, now=now)

    # -- digests ------------------------------------------------------------------------------
    async def schedule_next_digest(
        self, session: AsyncSession, *, after: datetime, now: datetime
    ) -> datetime | None:
        if not self.digest_times:
            return None
        slot = digest.next_slot(self.calendar, self.digest_times, after=after, tz=self.tz)
        await timers.schedule_once(
            session,
            kind=TimerKind.DIGEST,
            key=slot_key("digest", slot),
            due_at=slot,
            now=now,
            data={"slot": slot.isoformat()},
        )
        return slot

    async def pending_items(self) -> list[digest.PendingItem]:
        q = (
            select(TaskRow, RequestRow)
            .join(RequestRow, RequestRow.id == TaskRow.request_id)  # type: ignore[arg-type]
            .where(TaskRow.status == TaskStatus.PENDING.value)  # type: ignore[arg-type]
            .where(RequestRow.status == RequestStatus.RUNNING.value)  # type: ignore[arg-type]
        )
        async with self.db.session() as session:
            rows = (await session.execute(q)).all()
        templates = self.workflow.d.templates
        return [
            digest.PendingItem(
                task_id=t.id,
                version=t.version,
                request_id=r.id,
                template_name=templates[r.template_key].name
                if r.template_key in templates
                else r.template_key,
                title=r.title,
                urgency=Urgency(r.urgency),
                initiator=r.initiator,
                assignee=t.assignee,
                activated_at=t.activated_at,
                due_at=t.due_at,
                acting_for=t.acting_for,
                gates=t.permission != Permission.NOTIFY.value,
                manager_may_act=r.template_key in templates
                and engine.may_take_over(templates[r.template_key]),
            )
            for t, r in rows
        ]

    async def _fire_digest(self, timer: Timer) -> FireResult:
        slot = timer.due_at
        now = self.now()
        result = FireResult.SKIPPED
        if self.calendar.is_working_day(slot.astimezone(self.tz).date()):
            org = await self.workflow.org()
            items = await self.pending_items()
            notes = await self.notice_items() if self.notice_items is not None else []
            messages = digest.person_digests(
                items, org=org, tz=self.tz, now=now, public_url=self.public_url, notices=notes
            )
            if digest.is_first_slot_of_day(slot, self.digest_times, self.tz):
                messages += digest.manager_digests(
                    items, org=org, tz=self.tz, now=now, public_url=self.public_url
                )
            for message in messages:
                await self._send_digest(message, slot)
            result = FireResult.FIRED
            logger.info(
                "digest sent", extra={**_ids(timer), "messages": len(messages), "pending": len(items)}
            )
        async with self.db.transaction() as session:
            if not await timers.finish(session, timer, now=self.now()):
                return FireResult.LOST
            await self.schedule_next_digest(session, after=max(now, slot), now=now)
        return result

    async def _send_digest(self, message: Message, slot: datetime) -> None:
        """One recipient's digest and its trail events, once per slot even if the slot re-fires."""
        await retry_on_conflict(
            functools.partial(self._send_digest_once, message, slot),
            busy=_Busy(f"digest for {message.recipient}: requests kept changing"),
        )

    async def _send_digest_once(self, message: Message, slot: datetime) -> None:
        role = str(message.payload.get("role", "assignee"))
        key = f"{slot_key('digest', slot)}:{message.recipient}:{role}"
        now = self.now()
        try:
            async with self.db.transaction() as session:
                if await store.idempotent_response(session, key=key) is not None:
                    return
                for rid in digest.request_ids(message):
                    loaded = await store.load_request(session, request_id=rid)
                    if loaded is None:
                        continue
                    task_ids = [i["task_id"] for i in _digest_items(message) if i["request_id"] == rid]
                    event = engine.system_note(
                        loaded.request,
                        now,
                        SystemNote.DIGEST_SENT,
                        after=message.recipient,
                        role=role,
                        slot=slot.isoformat(),
                        tasks=task_ids,
                    )
                    await store.save_request(
                        session, loaded=loaded, events=[event], key=self.workflow.trail_key
                    )
                await _enqueue(session, [message], now, self.workflow.d.links)
                await store.remember_response(
                    session, key=key, request_id=None, response={"kind": "digest"}, now=now
                )
        except store.IdempotencyConflict:
            return


# -- helpers ------------------------------------------------------------------------------------
def _delegation_key(delegation_id: str) -> str:
    return f"delegation:{delegation_id}"


def _digest_items(message: Message) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = list(message.payload.get("items", []))
    for person in message.payload.get("people", []):
        items += person["items"]
    return items


async def _enqueue(
    session: AsyncSession, messages: Sequence[Message], now: datetime, links: PersonalLinks
) -> None:
    """The ladder's and digests' messages, each linking through its recipient's personal link:
    to the request page, or for a digest to the workspace's to-do list."""
    for m in messages:
        path = request_page(m.request_id) if m.request_id else str(m.payload.get("path") or WORKSPACE_HOME)
        link = await links.url(m.recipient, path, session=session)
        payload = await _own_pages(with_link(m.payload, link), m.recipient, links, session)
        session.add(
            OutboxRow.due_now(
                kind=m.kind,
                recipient=m.recipient,
                request_id=m.request_id,
                task_id=m.task_id,
                payload=payload,
                now=now,
            )
        )


async def _own_pages(
    payload: dict[str, Any], recipient: str, links: PersonalLinks, session: AsyncSession
) -> dict[str, Any]:
    """Buttons that name a page of their own (`path`: a 督办 card's 转交, a digest item's
    actions) point at it through the recipient's own link."""

    async def fix(buttons: Any) -> Any:
        if not isinstance(buttons, list):
            return buttons
        return [
            {**b, "url": await links.url(recipient, str(b["path"]), session=session)}
            if isinstance(b, dict) and b.get("path")
            else b
            for b in buttons
        ]

    out = {**payload, "buttons": await fix(payload.get("buttons"))}
    if "buttons" not in payload:
        del out["buttons"]
    if isinstance(payload.get("card"), dict):
        out["card"] = {**payload["card"], "buttons": await fix(payload["card"].get("buttons"))}
    if isinstance(payload.get("items"), list):
        out["items"] = [
            {**i, "actions": await fix(i.get("actions"))} if isinstance(i, dict) and "actions" in i else i
            for i in payload["items"]
        ]
    if isinstance(payload.get("people"), list):
        out["people"] = [
            {**p, "items": [{**i, "actions": await fix(i.get("actions"))} for i in p.get("items", [])]}
            if isinstance(p, dict)
            else p
            for p in payload["people"]
        ]
    return out
