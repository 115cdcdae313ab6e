"""The approval workflow service: load → core → one transaction (state, trail, outbox).

Every entry point (REST API, console, WeCom, DingTalk) calls this; it calls the pure engine
and storage, and never decides an approval rule itself. Concurrent writers are handled by
the store's optimistic version check: a lost race reloads and re-applies (`services.optimistic`),
and the engine's own task-version check then refuses a second decision on the same task.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from approvals import engine
from approvals.definitions import Permission, Template, WithdrawPolicy
from approvals.engine import Action, Context, DeadlineFn, Outcome
from approvals.errors import ApprovalError, DelegationNotFound, RequestNotFound, TemplateNotFound
from approvals.forms import WorkingDays
from approvals.model import (
    URGENCY_HOURS,
    ActionKind,
    Channel,
    Delegation,
    Request,
    RequestStatus,
    Task,
    TrailEvent,
    Urgency,
)
from approvals.replay import differences
from approvals.trail import LEGACY, TrailKey, TrailKeys, verify_chain, verify_sealed
from notifications import wording
from notifications.compose import compose
from org.errors import Category
from org.model import Org
from services.approval_views import (
    DelegationView,
    DocNumberView,
    PendingTaskView,
    RequestSummary,
    RequestView,
    StepView,
    TaskView,
    TrailEventView,
)
from services.directory import Directory
from services.documents import Documents, shown_number
from services.links import PersonalLinks
from services.optimistic import retry_on_conflict
from storage import approval_store as store
from storage import document_store
from storage.approval_models import OutboxRow
from storage.db import Database

logger = logging.getLogger(__name__)


class Busy(ApprovalError):
    code = "busy"
    category = Category.UNAVAILABLE


def request_page(request_id: str) -> str:
    """The workspace page of a request, the path every card and message links to."""
    return f"/m/r/{request_id}"


def new_request_id(now: datetime) -> str:
    """Sortable and unguessable enough: date + random (e.g. 20261123-3f9a1c2b)."""
    return f"{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"


# Called inside the transaction of every state change (deadline timers, leave delegations...).
OutcomeHook = Callable[[AsyncSession, Outcome, Template, Org, datetime], Awaitable[None]]
# Called inside the transaction that stores a new delegation (e.g. the timer for its start).
DelegationHook = Callable[[AsyncSession, Delegation, datetime], Awaitable[None]]
# Called inside the submit transaction before anything is written, with the new request as the
# engine built it (form validated): raise an ApprovalError to refuse it (e.g. the 补卡 quota).
SubmitValidator = Callable[[AsyncSession, Request, Template, Org, datetime], Awaitable[None]]


@dataclass
class WorkflowDeps:
    db: Database
    templates: dict[str, Template]
    tz: ZoneInfo
    now: Callable[[], datetime]
    directory: Directory
    links: PersonalLinks  # every card and message links to the request page as its recipient
    deadline_fn: DeadlineFn | None = None
    hooks: list[OutcomeHook] = field(default_factory=list)
    delegation_hooks: list[DelegationHook] = field(default_factory=list)
    validators: list[SubmitValidator] = field(default_factory=list)
    working_days: WorkingDays | None = None  # the org's calendar, for `working_days_of` fields
    # Seals the trail (`approvals.trail`); None writes unkeyed legacy rows (some tests).
    trail_keys: TrailKeys | None = None
    admin_roles: frozenset[str] = frozenset()  # who may act as_admin (`Settings.admin_roles`)
    # Templates only a service submits (`notice_publish`): not offered to people to start.
    system_templates: frozenset[str] = frozenset()
    # Documents 公文: numbers 文号, opens for recall 收回 (`services.documents`); None: no numbers.
    documents: Documents | None = None


class Workflow:
    def __init__(self, deps: WorkflowDeps) -> None:
        self.d = deps

    async def org(self, *, fresh: bool = False) -> Org:
        return await self.d.directory.org(fresh=fresh)

    @property
    def trail_key(self) -> TrailKey | None:
        """The key every trail write of this service is sealed with."""
        return self.d.trail_keys.current if self.d.trail_keys else None

    def templates(self) -> list[Template]:
        """Every template, by key."""
        return sorted(self.d.templates.values(), key=lambda t: t.key)

    def startable_templates(self) -> list[Template]:
        """The templates a person may start (every one but those only a service submits)."""
        return [t for t in self.templates() if t.key not in self.d.system_templates]

    def template(self, key: str) -> Template:
        t = self.d.templates.get(key)
        if t is None:
            raise TemplateNotFound(template=key, known=sorted(self.d.templates))
        return t

    def _ctx(
        self,
        template: Template,
        org: Org,
        delegations: list[Delegation],
        now: datetime,
        opened: Mapping[str, datetime] | None = None,
    ) -> Context:
        return Context(
            opened=opened or {},
            template=template,
            org=org,
            now=now,
            tz=self.d.tz,
            delegations=delegations,
            deadline_fn=self.d.deadline_fn,
            words=wording.phrase,
            working_days=self.d.working_days,
            admin_roles=self.d.admin_roles,
        )

    async def _record(
        self, session: AsyncSession, out: Outcome, template: Template, org: Org, now: datetime
    ) -> DocNumberView | None:
        """Everything a state change writes besides the state: the document's number (so its
        cards show it), outbox rows, then the hooks. Returns the document's number, if any."""
        number = None
        if self.d.documents is not None:
            number = await self.d.documents.on_outcome(session, out, template, now, key=self.trail_key)
        await self._enqueue(session, out, template, org, now, doc_number=shown_number(number))
        for hook in self.d.hooks:
            await hook(session, out, template, org, now)
        return DocNumberView.of(number) if number is not None else None

    async def record(
        self, session: AsyncSession, out: Outcome, template: Template, org: Org, now: datetime
    ) -> None:
        """`_record` for services that change requests outside `act` (the deadline ladder's auto actions)."""
        await self._record(session, out, template, org, now)

    # -- outbox ------------------------------------------------------------------------------
    async def _enqueue(
        self,
        session: AsyncSession,
        out: Outcome,
        template: Template,
        org: Org,
        now: datetime,
        *,
        doc_number: str | None = None,
    ) -> None:
        """One outbox row per notice, each linking to the request page through its recipient's
        own personal link (made here, so that every recipient signs in as themselves)."""
        for n in out.notices:
            link = await self.d.links.url(n.recipient, request_page(n.request_id), session=session)
            payload = compose(
                n, out.request, template=template, org=org, tz=self.d.tz, link=link, doc_number=doc_number
            )
            session.add(
                OutboxRow.due_now(
                    kind=n.kind.value,
                    recipient=n.recipient,
                    request_id=n.request_id,
                    task_id=n.task_id,
                    payload=store._jsonable(payload),
                    now=now,
                )
            )

    async def page_link(self, user: str, request_id: str) -> str:
        """`user`'s own link to the request page (for chat answers that send them there)."""
        return await self.d.links.url(user, request_page(request_id))

    async def tell(self, user: str, text: str, *, request_id: str | None = None) -> None:
        """Send a plain message to someone, through the outbox like everything else; one about a
        request carries their own link to its page."""
        now = self.d.now()
        payload: dict[str, Any] = {"text": text, "request_id": request_id}
        if request_id is not None:
            payload["link"] = await self.page_link(user, request_id)
        async with self.d.db.transaction() as s:
            s.add(
                OutboxRow.due_now(
                    kind="text", recipient=user, request_id=request_id, payload=payload, now=now
                )
            )

    async def tell_account(self, platform: str, account: str, text: str) -> None:
        """Reply to a platform account outside the directory: only that platform's delivery
        sends it (the dispatcher reads `platform` and `account` from the payload)."""
        now = self.d.now()
        async with self.d.db.transaction() as s:
            s.add(
                OutboxRow.due_now(
                    kind="text",
                    recipient=f"@{platform}:{account}",
                    payload={"text": text, "platform": platform, "account": account},
                    now=now,
                )
            )

    # -- submit / preview --------------------------------------------------------------------
    async def submit(
        self,
        *,
        template_key: str,
        initiator: str,
        form: dict[str, Any],
        urgency: Urgency = Urgency.NORMAL,
        idempotency_key: str | None = None,
        channel: str = "api",
        via: str | None = None,
    ) -> RequestView:
        template = self.template(template_key)
        org = await self.org()
        idem = f"submit:{initiator}:{idempotency_key}" if idempotency_key else None
        if idem:
            async with self.d.db.session() as s:
                stored = await store.idempotent_response(s, key=idem)
            if stored is not None:
                return RequestView.model_validate(stored)
        now = self.d.now()
        try:
            async with self.d.db.transaction() as s:
                delegations = await store.active_delegations(s, now=now)
                ctx = self._ctx(template, org, delegations, now)
                out = engine.submit(
                    ctx,
                    request_id=new_request_id(now),
                    initiator=initiator,
                    form=form,
                    urgency=urgency,
                    channel=Channel(channel),
                    via=via,
                )
                for validate in self.d.validators:
                    await validate(s, out.request, template, org, now)
                await store.insert_request(s, request=out.request, events=out.events, key=self.trail_key)
                await self._record(s, out, template, org, now)
                view = request_view(out.request, org=org, tz=self.d.tz)
                if idem:
                    await store.remember_response(
                        s, key=idem, request_id=out.request.id, response=view.model_dump(mode="json"), now=now
                    )
        except store.IdempotencyConflict:
            async with self.d.db.session() as s:
                stored = await store.idempotent_response(s, key=idem or "")
            assert stored is not None
            return RequestView.model_validate(stored)
        logger.info(
            "request submitted",
            extra={"request_id": out.request.id, "template": template_key, "initiator": initiator},
        )
        return view

    async def preview(
        self,
        *,
        template_key: str,
        initiator: str,
        form: dict[str, Any],
        urgency: Urgency = Urgency.NORMAL,
    ) -> dict[str, Any]:
        """The route a submission would take, with the engine's own auto-approval policy, and
        when the whole sign-off would be due at this urgency if submitted now."""
        template = self.template(template_key)
        org = await self.org()
        now = self.d.now()
        ctx = self._ctx(template, org, [], now)
        clean, steps = engine.preview(ctx, initiator=initiator, form=form)
        return {
            "template": template.key,
            "initiator": initiator,
            "form": clean,
            "urgency": urgency.value,
            "deadline": now + timedelta(hours=URGENCY_HOURS[urgency]),
            "steps": [_preview_step(s, org) for s in steps],
        }

    # -- act ---------------------------------------------------------------------------------
    async def act(
        self, *, request_id: str, action: Action, idempotency_key: str | None = None
    ) -> RequestView:
        idem = f"act:{request_id}:{action.actor}:{idempotency_key}" if idempotency_key else None
        if idem and (stored := await self._stored(idem)) is not None:
            return stored
        org = await self.org()

        async def attempt() -> RequestView:
            try:
                return await self._act_once(request_id, action, org, idem)
            except store.ConcurrentUpdate:
                if idem and (stored := await self._stored(idem)) is not None:
                    return stored  # the first call with this key won the race meanwhile
                raise
            except store.IdempotencyConflict:
                stored = await self._stored(idem or "")
                assert stored is not None
                return stored
            except ApprovalError:
                # A retry refused because its first call already acted: answer what that call answered.
                if idem and (stored := await self._stored(idem)) is not None:
                    return stored
                raise

        return await retry_on_conflict(attempt, busy=Busy(request_id=request_id))

    async def _act_once(self, request_id: str, action: Action, org: Org, idem: str | None) -> RequestView:
        """One attempt of `act`: load, apply, save, all in one transaction."""
        now = self.d.now()
        async with self.d.db.transaction() as s:
            loaded = await store.load_request(s, request_id=request_id)
            if loaded is None:
                raise RequestNotFound(request_id=request_id)
            template = self.template(loaded.request.template_key)
            delegations = await store.active_delegations(s, now=now)
            opened = (
                await self._opened(s, template, request_id) if action.kind == ActionKind.WITHDRAW else None
            )
            form_before = dict(loaded.request.form)
            out = engine.act(self._ctx(template, org, delegations, now, opened), loaded.request, action)
            if action.kind == ActionKind.RESUBMIT and out.request.form != form_before:
                for validate in self.d.validators:  # a corrected form is checked as a new one is
                    await validate(s, out.request, template, org, now)
            await store.save_request(s, loaded=loaded, events=out.events, key=self.trail_key)
            number = await self._record(s, out, template, org, now)
            view = request_view(out.request, org=org, tz=self.d.tz)
            view.doc_number = number
            if out.task is not None:
                view.acted_task = task_view(out.task, org)
            if out.info:
                view.info = out.info
            if idem:
                await store.remember_response(
                    s, key=idem, request_id=request_id, response=view.model_dump(mode="json"), now=now
                )
        logger.info(
            "action applied",
            extra={
                "request_id": request_id,
                "action": action.kind.value,
                "actor": action.actor,
                "task_id": action.task_id,
            },
        )
        return view

    # -- supervision 督办 ------------------------------------------------------------------------
    async def supervise(self, *, request_id: str, action: engine.SupervisorAction) -> RequestView:
        """A manager's 催办 / 转交 / 代为处理 on a task of their team (`engine.supervise`)."""
        org = await self.org()
        return await retry_on_conflict(
            functools.partial(self._supervise_once, request_id, action, org), busy=Busy(request_id=request_id)
        )

    async def _supervise_once(
        self, request_id: str, action: engine.SupervisorAction, org: Org
    ) -> RequestView:
        now = self.d.now()
        async with self.d.db.transaction() as s:
            loaded = await store.load_request(s, request_id=request_id)
            if loaded is None:
                raise RequestNotFound(request_id=request_id)
            template = self.template(loaded.request.template_key)
            delegations = await store.active_delegations(s, now=now)
            out = engine.supervise(self._ctx(template, org, delegations, now), loaded.request, action)
            await store.save_request(s, loaded=loaded, events=out.events, key=self.trail_key)
            await self._record(s, out, template, org, now)
            view = request_view(out.request, org=org, tz=self.d.tz)
            view.info = out.info
        logger.info(
            "supervisor action applied",
            extra={
                "request_id": request_id,
                "action": action.kind.value,
                "actor": action.actor,
                "task_id": action.task_id,
                "target": action.target,
            },
        )
        return view

    async def _stored(self, key: str) -> RequestView | None:
        async with self.d.db.session() as s:
            stored = await store.idempotent_response(s, key=key)
        return RequestView.model_validate(stored) if stored is not None else None

    # -- reads -------------------------------------------------------------------------------
    async def get(self, request_id: str, *, with_trail: bool = True) -> RequestView:
        org = await self.org()
        async with self.d.db.session() as s:
            loaded = await store.load_request(s, request_id=request_id)
            if loaded is None:
                raise RequestNotFound(request_id=request_id)
            view = request_view(loaded.request, org=org, tz=self.d.tz)
            template = self.d.templates.get(loaded.request.template_key)
            if template is not None and template.numbering is not None:
                found = await document_store.number_of(s, request_id=request_id)
                view.doc_number = DocNumberView.of(found) if found is not None else None
            if with_trail:
                view.trail = [trail_view(e, org) for e in await store.load_trail(s, request_id=request_id)]
        return view

    async def load(self, request_id: str) -> Request:
        async with self.d.db.session() as s:
            loaded = await store.load_request(s, request_id=request_id)
        if loaded is None:
            raise RequestNotFound(request_id=request_id)
        return loaded.request

    async def allowed(
        self, request_id: str, actor: str, *, is_admin: bool = False
    ) -> tuple[Request, list[Delegation], engine.Allowed]:
        """The request as stored, the live delegations, and what `actor` may do on it now
        (the engine's own checks, `engine.allowed_actions`)."""
        now = self.d.now()
        async with self.d.db.session() as s:
            loaded = await store.load_request(s, request_id=request_id)
            delegations = await store.active_delegations(s, now=now)
            if loaded is None:
                raise RequestNotFound(f"申请 {request_id} 不存在", request_id=request_id)
            template = self.template(loaded.request.template_key)
            opened = await self._opened(s, template, request_id)
        req = loaded.request
        ctx = self._ctx(template, await self.org(), delegations, now, opened)
        return req, delegations, engine.allowed_actions(ctx, req, actor, is_admin=is_admin)

    async def _opened(
        self, session: AsyncSession, template: Template, request_id: str
    ) -> dict[str, datetime]:
        """Who first opened the request, when: only a recall 收回 asks (`withdraw: until_opened`)."""
        if template.policies.withdraw != WithdrawPolicy.UNTIL_OPENED:
            return {}
        found = await document_store.first_opens(session, request_id=request_id)
        return {p: o.at for p, o in found.items()}

    async def record_open(self, request_id: str, person: str, *, channel: str) -> None:
        """`person` opened the request (its page): remembered the first time only."""
        async with self.d.db.session() as s:
            if await document_store.has_opened(s, request_id=request_id, person=person):
                return
        async with self.d.db.transaction() as s:
            await document_store.record_open(
                s, request_id=request_id, person=person, at=self.d.now(), channel=channel
            )

    async def list_requests(self, **filters: Any) -> list[RequestSummary]:
        async with self.d.db.session() as s:
            rows = await store.list_requests(s, **filters)
        return [
            RequestSummary(
                id=r.id,
                template=r.template_key,
                title=r.title,
                initiator=r.initiator,
                status=RequestStatus(r.status),
                urgency=Urgency(r.urgency),
                created_at=r.created_at,
                finished_at=r.finished_at,
            )
            for r in rows
        ]

    async def pending_tasks(self, assignee: str) -> list[PendingTaskView]:
        org = await self.org()
        async with self.d.db.session() as s:
            rows = await store.pending_tasks(s, assignee=assignee)
        out = []
        for t, r in rows:
            template = self.d.templates.get(r.template_key)
            out.append(
                PendingTaskView(
                    task_id=t.id,
                    version=t.version,
                    request_id=r.id,
                    template=r.template_key,
                    template_name=template.name if template else r.template_key,
                    title=r.title,
                    initiator=r.initiator,
                    initiator_name=org.display_name(r.initiator),
                    urgency=Urgency(r.urgency),
                    assignee=t.assignee,
                    acting_for=t.acting_for,
                    activated_at=t.activated_at,
                    due_at=t.due_at,
                    permission=Permission(t.permission),
                )
            )
        return out

    async def verify_trail(self, request_id: str | None = None) -> dict[str, list[str]]:
        return await verify_trails(self.d.db, keys=self.d.trail_keys, request_id=request_id)

    # -- delegations -------------------------------------------------------------------------
    async def create_delegation(
        self,
        *,
        delegator: str,
        delegate: str,
        starts_at: datetime,
        ends_at: datetime,
        templates: tuple[str, ...] = (),
        move_pending: bool = False,
        reason: str = "",
        source_request: str | None = None,
    ) -> DelegationView:
        org = await self.org()
        now = self.d.now()
        for key in templates:
            self.template(key)
        d = Delegation(
            id=f"d-{uuid.uuid4().hex[:12]}",
            delegator=delegator,
            delegate=delegate,
            starts_at=starts_at,
            ends_at=ends_at,
            templates=tuple(templates),
            move_pending=move_pending,
            reason=reason,
            created_at=now,
            source_request=source_request,
        )
        engine.validate_delegation(org, d)
        async with self.d.db.transaction() as s:
            await store.insert_delegation(s, delegation=d)
            for hook in self.d.delegation_hooks:
                await hook(s, d, now)
        logger.info(
            "delegation created", extra={"delegation_id": d.id, "delegator": delegator, "delegate": delegate}
        )
        if move_pending and starts_at <= now:
            await self.move_pending_tasks(d)
        return DelegationView.of(d)

    async def move_pending_tasks(self, d: Delegation) -> int:
        org = await self.org()
        async with self.d.db.session() as s:
            request_ids = await store.requests_with_open_tasks_of(s, user=d.delegator)
        moved = 0
        for rid in request_ids:
            try:
                moved += await retry_on_conflict(
                    functools.partial(self._move_pending_in, rid, d, org),
                    busy=Busy(request_id=rid),
                )
            except Busy:
                logger.warning(
                    "pending tasks not moved: the request kept changing",
                    extra={"request_id": rid, "delegation_id": d.id},
                )
        return moved

    async def _move_pending_in(self, request_id: str, d: Delegation, org: Org) -> int:
        """Move the delegator's open tasks of one request; 1 if any moved, else 0."""
        now = self.d.now()
        async with self.d.db.transaction() as s:
            loaded = await store.load_request(s, request_id=request_id)
            if loaded is None:
                return 0
            template = self.template(loaded.request.template_key)
            if d.templates and template.key not in d.templates:
                return 0
            out = engine.apply_delegation(self._ctx(template, org, [], now), loaded.request, d)
            if not out.events:
                return 0
            await store.save_request(s, loaded=loaded, events=out.events, key=self.trail_key)
            await self._record(s, out, template, org, now)
        return 1

    # -- people who leave (离职交接) ---------------------------------------------------------
    async def hand_over_in(self, session: AsyncSession, *, leaver: str, successor: str, org: Org) -> int:
        """Inside the caller's transaction (a directory sync's), move every open task `leaver`
        holds to `successor` (or back to whom they held it for) through the engine, and end the
        delegations they give or receive. Returns how many tasks moved. A request changed by
        someone else meanwhile raises `store.ConcurrentUpdate`: the caller retries it all."""
        now = self.d.now()
        moved = 0
        for rid in await store.requests_with_open_tasks_of(session, user=leaver, acting_too=True):
            loaded = await store.load_request(session, request_id=rid)
            if loaded is None:
                continue
            template = self.template(loaded.request.template_key)
            before = sum(1 for t in loaded.request.tasks if t.is_open and t.assignee == leaver)
            out = engine.hand_over(self._ctx(template, org, [], now), loaded.request, leaver, successor)
            if not out.events:
                continue
            await store.save_request(session, loaded=loaded, events=out.events, key=self.trail_key)
            await self._record(session, out, template, org, now)
            moved += before
            logger.info(
                "tasks handed over", extra={"request_id": rid, "leaver": leaver, "successor": successor}
            )
        for d in await store.list_delegations(session, user=leaver, now=now):
            await store.cancel_delegation(session, delegation_id=d.id, now=now)
        return moved

    async def open_task_count(self, user: str) -> int:
        """How many open tasks `user` holds (pending or waiting their turn)."""
        async with self.d.db.session() as s:
            return await store.open_task_count(s, user=user)

    async def list_delegations(
        self, *, user: str | None = None, include_past: bool = False
    ) -> list[DelegationView]:
        async with self.d.db.session() as s:
            found = await store.list_delegations(s, user=user, include_past=include_past, now=self.d.now())
        return [DelegationView.of(d) for d in found]

    async def cancel_delegation(self, delegation_id: str) -> DelegationView:
        async with self.d.db.transaction() as s:
            d = await store.cancel_delegation(s, delegation_id=delegation_id, now=self.d.now())
        if d is None:
            raise DelegationNotFound(delegation_id=delegation_id)
        return DelegationView.of(d)


VERIFY_BATCH = 200  # requests loaded at once by `verify_trails` (three queries per batch)


async def verify_trails(
    db: Database,
    *,
    keys: TrailKeys | None,
    request_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[str]]:
    """Every problem with the stored trails, per request: a broken hash chain or keyed seal
    (edited, reordered, rewritten or removed events), a chain head that does not match its
    anchor, and a request or task row that disagrees with its replayed trail (`approvals.replay`).
    Without `keys` only the unkeyed hash chain and the replay are checked."""
    problems: dict[str, list[str]] = {}
    async with db.session() as s:
        ids = [request_id] if request_id else await store.all_request_ids(s)
    for start in range(0, len(ids), VERIFY_BATCH):
        batch = ids[start : start + VERIFY_BATCH]
        async with db.session() as s:  # a session per batch: loaded rows do not pile up
            stored = await store.load_trails(s, request_ids=batch)
        for rid in batch:
            found = _trail_problems(stored[rid], keys) if rid in stored else ["no such request"]
            if found:
                problems[rid] = found
        if progress is not None:
            progress(start + len(batch), len(ids))
    return problems


def _trail_problems(stored: store.StoredTrail, keys: TrailKeys | None) -> list[str]:
    events, anchor = stored.events, stored.anchor
    if keys is None:
        last = events[-1] if events else None
        found = [f"#{p.seq}: {p.message}" for p in verify_chain(events)]
        if last is None or (anchor.count, anchor.last_hash) != (last.seq, last.hash):
            found.append("the request's last event does not match its trail (events removed?)")
    else:
        found = [f"#{p.seq}: {p.message}" for p in verify_sealed(events, anchor, keys)]
    return found + [f"replay: {d}" for d in differences(events, stored.request)]


@dataclass(frozen=True)
class Rekeyed:
    anchored: list[str]  # legacy trails now anchored with the current key
    refused: dict[str, list[str]]  # legacy trails left alone: what is wrong with them


async def rekey_trails(
    db: Database, *, keys: TrailKeys, progress: Callable[[int, int], None] | None = None
) -> Rekeyed:
    """Anchor each legacy trail (sealed before the trail key) with the current key, once its
    hash chain and its replay check out; a broken one is left unanchored and reported. Trail
    rows are not touched (the table is append-only): the anchored head covers every event,
    as each hash covers all before it. Already anchored trails are left as they are."""
    done = Rekeyed(anchored=[], refused={})
    async with db.session() as s:
        ids = await store.all_request_ids(s)
    for n, rid in enumerate(ids, 1):
        async with db.transaction() as s:
            stored = (await store.load_trails(s, request_ids=[rid])).get(rid)
            if stored is not None and stored.anchor.mac is None:
                found = [p for p in _trail_problems(stored, keys) if not p.endswith(LEGACY)]
                if found:
                    done.refused[rid] = found
                elif await store.anchor_head(s, anchor=stored.anchor, key=keys.current):
                    done.anchored.append(rid)
        if progress is not None:
            progress(n, len(ids))
    return done


# -- views ------------------------------------------------------------------------------------
def _preview_step(s: engine.PreviewStep, org: Org) -> dict[str, Any]:
    notes = s.notes + [
        wording.preview_note(rule, org.display_name(person))
        for person, rule in zip(s.auto_approved, s.auto_rules, strict=True)
    ]
    return {
        "key": s.key,
        "name": s.name,
        "mode": s.mode,
        "kind": s.kind,
        "assignees": s.assignees,
        "skipped": s.skipped,
        "auto_approved": s.auto_approved,
        "notes": notes,
        "assignee_names": [org.display_name(a) for a in s.assignees],
    }


def task_view(t: Task, org: Org) -> TaskView:
    return TaskView(
        id=t.id,
        step_index=t.step_index,
        assignee=t.assignee,
        assignee_name=org.display_name(t.assignee),
        acting_for=t.acting_for,
        permission=t.permission,
        status=t.status,
        version=t.version,
        origin=t.origin,
        activated_at=t.activated_at,
        decided_at=t.decided_at,
        decided_by=t.decided_by,
        comment=t.comment,
        close_reason=t.close_reason,
        due_at=t.due_at,
    )


def request_view(req: Request, *, org: Org, tz: ZoneInfo) -> RequestView:
    return RequestView(
        id=req.id,
        template=req.template_key,
        title=req.title,
        status=req.status,
        urgency=req.urgency,
        initiator=req.initiator,
        initiator_name=org.display_name(req.initiator),
        form=req.form,
        round=req.round,
        version=req.version,
        created_at=req.created_at,
        finished_at=req.finished_at,
        deadline=req.deadline(),
        archived_at=req.archived_at,
        archived_by=req.archived_by,
        readers=[r.user for r in req.readers],
        steps=[
            StepView(
                index=s.index,
                key=s.key,
                name=s.name,
                mode=s.mode,
                kind=s.kind,
                status=s.status,
                round=s.round,
                action_label=s.action_label,
                notes=s.notes,
                tasks=[task_view(t, org) for t in req.step_tasks(s)],
            )
            for s in req.steps
        ],
    )


def trail_view(e: TrailEvent, org: Org) -> TrailEventView:
    return TrailEventView(
        seq=e.seq,
        kind=e.kind,
        at=e.at,
        actor=e.actor,
        actor_name=org.display_name(e.actor) if e.actor and e.actor != "system" else e.actor,
        acting_for=e.acting_for,
        channel=e.channel,
        task_id=e.task_id,
        step_index=e.step_index,
        before=e.before,
        after=e.after,
        comment=e.comment,
        data=e.data,
        hash=e.hash,
    )
