"""The approval engine: submit a request, act on it, and say what must be told to whom.

Every public function takes the current state, an action and `now`, and returns an
`Outcome`: the new state, the trail events it appends and the notices for the outbox.
It refuses illegal actions with an `ApprovalError` before changing anything (callers work on
a copy loaded from storage, so a refusal leaves nothing behind). Pure: no I/O, no clock.

It is the only writer of approval state: statuses change through `approvals.transitions`,
trail events are appended here (a person's action, an automatic decision by `system_act`, or a
note such as a reminder sent, by `system_note`), and the auto-approval policy that `preview`
shows is the one `open_task` applies (`auto_rule`). It does not word anything for people:
notices carry codes and parameters that `notifications` renders, and the few phrases stored in
the trail are rendered by the `Context.words` function the caller passes in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from approvals import transitions
from approvals.definitions import (
    CcMoment,
    ConsecutivePolicy,
    InitiatorPolicy,
    Permission,
    Progress,
    StepKind,
    StepMode,
    Template,
    WithdrawPolicy,
)
from approvals.errors import (
    ActionNotAllowed,
    ApprovalError,
    BadTarget,
    CommentTooLong,
    DelegationInvalid,
    NotAssignee,
    NotSupervisor,
    OpinionRequired,
    RateLimited,
    RequestArchived,
    RequestFinished,
    StaleTask,
    TaskAlreadyDecided,
    TaskNotFound,
    UnknownUser,
)
from approvals.forms import WorkingDays, validate_form
from approvals.model import (
    TASK_ACTIONS,
    ActionKind,
    Channel,
    Delegation,
    Notice,
    NoticeKind,
    Reader,
    ReaderReason,
    Request,
    RequestStatus,
    SignerPosition,
    Step,
    StepStatus,
    Task,
    TaskStatus,
    TrailEvent,
    Urgency,
)
from approvals.routing import PlannedStep, plan_route, resolve_approver
from approvals.trail import seal
from approvals.transitions import Move, transition
from org.model import Org, is_org_admin

SYSTEM = "system"
URGE_INTERVAL = timedelta(minutes=30)

# What each task permission (知会 / 协同 / 审批) lets its holder do.
PERMISSION_ACTIONS: dict[Permission, frozenset[ActionKind]] = {
    Permission.NOTIFY: frozenset({ActionKind.ACKNOWLEDGE, ActionKind.COMMENT}),
    Permission.COLLABORATE: frozenset(
        {
            ActionKind.APPROVE,
            ActionKind.REJECT,
            ActionKind.RETURN,
            ActionKind.ADD_SIGNER,
            ActionKind.COMMENT,
            ActionKind.TERMINATE,
            ActionKind.WITHDRAW,
        }
    ),
    Permission.APPROVE: frozenset(
        {
            ActionKind.APPROVE,
            ActionKind.REJECT,
            ActionKind.RETURN,
            ActionKind.ADD_SIGNER,
            ActionKind.TRANSFER,
            ActionKind.COMMENT,
            ActionKind.TERMINATE,
            ActionKind.WITHDRAW,
            ActionKind.ARCHIVE,
            ActionKind.NOTIFY_OTHERS,
        }
    ),
}
NOTIFY_OTHERS_MAX = 50  # people one 知会他人 may pick

DeadlineFn = Callable[[Request, Step, Task, datetime], datetime | None]


class Phrase(StrEnum):
    """Words the engine stores in the trail (a comment, where a return went): their codes."""

    INITIATOR_IS_APPROVER = "initiator_is_approver"  # auto-approved: the approver submitted it
    SAME_AS_PREVIOUS = "same_as_previous"  # auto-approved: merged with the previous step (step=)
    NOTHING_TO_APPROVE = "nothing_to_approve"  # approved at once: every step was skipped
    TO_INITIATOR = "to_initiator"  # where a return went
    TO_STEP = "to_step"  # where a return went (step=)
    HANDED_OVER = "handed_over"  # 离职交接: a leaver's task moved (leaver=, successor=)


# Renders a phrase and its parameters; `notifications.wording.phrase` is the real one.
Words = Callable[[Phrase, Mapping[str, str]], str]


def phrase_code(phrase: Phrase, params: Mapping[str, str]) -> str:
    """The default `Words`: the code and its parameters, for callers that word nothing."""
    return ":".join([phrase.value, *params.values()])


class CardOutcome(StrEnum):
    """Why a task card stops offering buttons; a closing notice carries it and its parameters."""

    APPROVED = "approved"  # label=, by=, acting_for=, at=
    REJECTED = "rejected"  # by=, acting_for=, at=
    RETURNED = "returned"  # to_step= (None: the initiator), by=, acting_for=, at=
    TRANSFERRED = "transferred"  # target=, by=, acting_for=, at=
    ACKNOWLEDGED = "acknowledged"  # by=, acting_for=, at=
    AUTO_APPROVED = "auto_approved"  # label=, comment=
    AUTO_REJECTED = "auto_rejected"  # comment=
    AUTO_TRANSFERRED = "auto_transferred"  # target=, comment=
    SIGNER_BEFORE = "signer_before"  # target=: the new signer decides first
    DELEGATED = "delegated"  # target=: the delegate
    HANDLED_BY = "handled_by"  # by=: a sibling of an any-sign 或签 step decided
    SENT_BACK = "sent_back"  # to_step=: the request returned past this task
    REQUEST_ENDED = "request_ended"  # status=
    TAKEN_OVER = "taken_over"  # by=: the assignee's manager took the task over 代为处理
    DEFAULTED = "defaulted"  # a 知会 task left unanswered past its deadline counts as read 默认已读
    ARCHIVED = "archived"  # by=: the request was archived 归档 with this 知会 task still open


# The longest opinion (comment) an action may carry, on every channel (API, pages, chat cards).
COMMENT_MAX = 500


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    actor: str
    task_id: str | None = None
    version: int | None = None
    comment: str | None = None
    target: str | None = None  # user id (transfer, add_signer) or "initiator"/step index (return)
    targets: tuple[str, ...] = ()  # user ids (知会他人 notify_others)
    position: SignerPosition | None = None
    form: dict[str, Any] | None = None  # resubmit with a corrected form
    channel: Channel = Channel.API
    is_admin: bool = False  # as the administrator (terminate any request): `act` checks the actor is one
    via: str | None = None  # the edge's name for how the actor came in, e.g. "integration erp"


@dataclass
class Outcome:
    request: Request
    events: list[TrailEvent] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    task: Task | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What the engine needs besides the request: the template, the org, the time, delegations."""

    template: Template
    org: Org
    now: datetime
    tz: ZoneInfo
    delegations: Sequence[Delegation] = ()
    deadline_fn: DeadlineFn | None = None
    words: Words = phrase_code
    working_days: WorkingDays | None = None  # the org's calendar, for `working_days_of` fields
    admin_roles: Collection[str] = ()  # who may act `as_admin`: `org.model.is_org_admin`
    # Who first opened the request, when (`withdraw: until_opened`, recall 收回 of documents).
    opened: Mapping[str, datetime] = field(default_factory=dict)


def _append_event(
    req: Request,
    now: datetime,
    kind: str,
    actor: str | None,
    channel: Channel,
    *,
    acting_for: str | None = None,
    task: Task | None = None,
    step: Step | None = None,
    before: str | None = None,
    after: str | None = None,
    comment: str | None = None,
    data: Mapping[str, Any],
) -> TrailEvent:
    """Seal one event onto the request's hash chain and move the chain head."""
    e = TrailEvent(
        request_id=req.id,
        seq=req.last_seq + 1,
        kind=kind,
        at=now,
        actor=actor,
        acting_for=acting_for,
        channel=channel if actor != SYSTEM else Channel.SYSTEM,
        task_id=task.id if task else None,
        step_index=step.index if step else (task.step_index if task else None),
        before=before,
        after=after,
        comment=comment,
        data={k: v for k, v in data.items() if v is not None},
    )
    e = seal(e, req.last_hash)
    req.last_seq, req.last_hash = e.seq, e.hash
    return e


def auto_rule(
    template: Template,
    *,
    step_key: str,
    kind: StepKind,
    permission: Permission,
    person: str,
    initiator: str,
    previous_approvers: Collection[str],
) -> Phrase | None:
    """Why `person`'s task in a step is approved without them, or None: the one policy that
    both the engine (when the task opens) and `preview` (before submitting) apply.

    `previous_approvers` are the people who personally approved the step before this one in
    the same round (skipped steps do not count; an automatic approval is not a person's)."""
    if permission == Permission.NOTIFY or kind != StepKind.APPROVE:
        return None
    spec = next((s for s in template.steps if s.key == step_key), None)
    initiator_policy = (
        spec.initiator_is_approver if spec else None
    ) or template.policies.initiator_is_approver
    if person == initiator and initiator_policy == InitiatorPolicy.AUTO_APPROVE:
        return Phrase.INITIATOR_IS_APPROVER
    if (
        template.policies.consecutive_same_approver == ConsecutivePolicy.MERGE
        and person in previous_approvers
    ):
        return Phrase.SAME_AS_PREVIOUS
    return None


class _Flow:
    """Working state of one engine call: the request being changed and what it produces."""

    def __init__(
        self,
        request: Request,
        ctx: Context,
        channel: Channel,
        *,
        by: str | None = None,
        via: str | None = None,
    ) -> None:
        self.req = request
        self.ctx = ctx
        self.channel = channel
        self.by = by  # the person who started this call; their events carry `via` in their data
        self.via = via
        self.out = Outcome(request=request)

    # -- recording -------------------------------------------------------------------------
    def event(
        self,
        kind: str,
        actor: str | None,
        *,
        acting_for: str | None = None,
        task: Task | None = None,
        step: Step | None = None,
        before: str | None = None,
        after: str | None = None,
        comment: str | None = None,
        **data: Any,
    ) -> None:
        if self.via is not None and actor == self.by:
            data["via"] = self.via
        e = _append_event(
            self.req,
            self.ctx.now,
            kind,
            actor,
            self.channel,
            acting_for=acting_for,
            task=task,
            step=step,
            before=before,
            after=after,
            comment=comment,
            data=data,
        )
        self.out.events.append(e)

    def notice(self, kind: NoticeKind, recipient: str, task: Task | None = None, **data: Any) -> None:
        self.out.notices.append(
            Notice(
                kind=kind,
                recipient=recipient,
                request_id=self.req.id,
                task_id=task.id if task else None,
                data=data,
            )
        )

    def card_closed(self, task: Task, outcome: CardOutcome, reason: str, **params: Any) -> None:
        """Tell the task's holder their card is closed; `notifications` words the outcome."""
        self.notice(
            NoticeKind.CARD_CLOSED, task.assignee, task, outcome=outcome.value, reason=reason, **params
        )

    def decided_card(
        self, task: Task, outcome: CardOutcome, action: Action, acting_for: str | None, **params: Any
    ) -> None:
        """The closing notice of a person's own decision: who decided, for whom, and when."""
        self.card_closed(
            task, outcome, "decided", by=action.actor, acting_for=acting_for, at=self.ctx.now, **params
        )

    def say(self, phrase: Phrase, **params: str) -> str:
        return self.ctx.words(phrase, params)

    def name(self, user: str | None) -> str:
        return self.ctx.org.display_name(user)

    # -- helpers ---------------------------------------------------------------------------
    def step_of(self, task: Task) -> Step:
        return self.req.steps[task.step_index]

    def new_task(
        self, step: Step, assignee: str, *, origin: str, after: str | None, added_by: str | None = None
    ) -> Task:
        acting_for = None
        delegation = find_delegation(self.ctx.delegations, assignee, self.req.template_key, self.ctx.now)
        if delegation is not None:
            acting_for, assignee = assignee, delegation.delegate
        task = Task(
            id=f"{self.req.id}-{len(self.req.tasks) + 1}",
            request_id=self.req.id,
            step_index=step.index,
            assignee=assignee,
            permission=step.permission,
            status=TaskStatus.QUEUED,
            created_at=self.ctx.now,
            acting_for=acting_for,
            after_task=after,
            origin=origin,
            added_by=added_by,
        )
        self.req.tasks.append(task)
        return task

    def close_task(self, task: Task, reason: str, outcome: CardOutcome, **params: Any) -> None:
        was_pending = task.status == TaskStatus.PENDING
        transition(task, Move.CLOSE)
        task.close_reason = reason
        task.bump()
        if was_pending:
            self.card_closed(task, outcome, reason, **params)

    # -- the flow --------------------------------------------------------------------------
    def activate_step(self, step: Step) -> None:
        transition(step, Move.OPEN)
        step.started_at = self.ctx.now
        self.event("step_started", SYSTEM, step=step, after=step.name, notes=step.notes or None)
        tasks: list[Task] = []
        previous: str | None = None
        for person in step.assignees:
            after = previous if step.mode == StepMode.SEQUENTIAL else None
            t = self.new_task(step, person, origin="route", after=after)
            tasks.append(t)
            previous = t.id
        for t in tasks:
            if t.status == TaskStatus.QUEUED and t.after_task is None:
                self.open_task(t)
        self.maybe_complete(step)

    def open_task(self, task: Task) -> None:
        """Make a queued task actionable: decide it automatically if a policy says so, else send a card."""
        if task.status != TaskStatus.QUEUED or self.req.is_final:
            return
        step = self.step_of(task)
        transition(task, Move.OPEN)
        task.activated_at = self.ctx.now
        task.bump()
        if self.ctx.deadline_fn is not None:
            task.due_at = self.ctx.deadline_fn(self.req, step, task, self.ctx.now)
        self.event(
            "task_assigned",
            SYSTEM,
            task=task,
            after=task.assignee,
            acting_for=task.acting_for,
            assignee=task.assignee,
            origin=task.origin,
        )
        reason = self.auto_approval_reason(task, step)
        if reason is not None:
            transition(task, Move.APPROVE)
            task.decided_at = self.ctx.now
            task.decided_by = SYSTEM
            task.comment = reason
            task.bump()
            self.event("auto_approved", SYSTEM, task=task, before="pending", after="approved", comment=reason)
            self.after_approved(task)
            return
        self.notice(NoticeKind.TASK_CARD, task.assignee, task, version=task.version)

    def auto_approval_reason(self, task: Task, step: Step) -> str | None:
        """The stored reason the policy approves this task by itself, or None."""
        prev = self.previous_step(step)
        rule = auto_rule(
            self.ctx.template,
            step_key=step.key,
            kind=step.kind,
            permission=task.permission,
            person=task.acting_for or task.assignee,
            initiator=self.req.initiator,
            previous_approvers=self.personal_approvers(prev) if prev is not None else (),
        )
        if rule is None:
            return None
        return self.say(rule, step=prev.name) if rule == Phrase.SAME_AS_PREVIOUS and prev else self.say(rule)

    def personal_approvers(self, step: Step) -> set[str]:
        """Who approved an approval step themselves (not by an automatic decision)."""
        if step.kind != StepKind.APPROVE:
            return set()
        return {
            person
            for t in self.req.live_step_tasks(step)
            if t.status == TaskStatus.APPROVED and t.decided_by != SYSTEM
            for person in (t.assignee, t.acting_for)
            if person
        }

    def previous_step(self, step: Step) -> Step | None:
        for s in reversed(self.req.steps[: step.index]):
            if s.round != step.round:
                return None
            if s.status == StepStatus.APPROVED:
                return s
            if s.status != StepStatus.SKIPPED:
                return None
        return None

    def after_approved(self, task: Task) -> None:
        step = self.step_of(task)
        waiters = [t for t in self.req.tasks if t.after_task == task.id and t.status == TaskStatus.QUEUED]
        if step.mode == StepMode.ANY and task.gates_step:
            chain = self.chain_of(task)
            decided_by = task.decided_by if task.decided_by != SYSTEM else task.assignee
            for other in self.req.live_step_tasks(step):
                if other.id not in chain and other.is_open and other.gates_step:
                    self.close_task(
                        other, f"decided_by:{task.assignee}", CardOutcome.HANDLED_BY, by=decided_by
                    )
        for w in waiters:
            self.open_task(w)
        self.maybe_complete(step)

    def chain_of(self, task: Task) -> set[str]:
        """Tasks that wait (directly or not) for `task`, plus itself."""
        chain = {task.id}
        grew = True
        while grew:
            grew = False
            for t in self.req.tasks:
                if t.after_task in chain and t.id not in chain:
                    chain.add(t.id)
                    grew = True
        return chain

    def maybe_complete(self, step: Step) -> None:
        if step.status != StepStatus.ACTIVE or self.req.is_final:
            return
        gating = [t for t in self.req.live_step_tasks(step) if t.gates_step and t.status != TaskStatus.CLOSED]
        if any(t.is_open for t in gating):
            return
        if gating and not all(t.status == TaskStatus.APPROVED for t in gating):
            return
        transition(step, Move.APPROVE)
        step.finished_at = self.ctx.now
        self.event("step_approved", SYSTEM, step=step, before="active", after="approved")
        nxt = next(
            (s for s in self.req.steps if s.round == self.req.round and s.status == StepStatus.WAITING), None
        )
        if nxt is None:
            self.finish(Move.APPROVE, SYSTEM)
        else:
            self.tell_progress(step, nxt)
            self.activate_step(nxt)

    def tell_progress(self, step: Step, nxt: Step) -> None:
        """Tell the initiator a step is done and which comes next (template `progress: each_step`).

        Only steps someone decided themselves: a step the policy approved by itself is no news."""
        if self.ctx.template.progress != Progress.EACH_STEP:
            return
        deciders = [
            t.decided_by
            for t in self.req.live_step_tasks(step)
            if t.status == TaskStatus.APPROVED and t.decided_by not in (None, SYSTEM)
        ]
        if deciders:
            self.notice(
                NoticeKind.PROGRESS,
                self.req.initiator,
                step=step.name,
                label=step.action_label,
                by=list(dict.fromkeys(deciders)),
                next_step=nxt.name,
            )

    def finish(
        self, move: Move, actor: str, *, acting_for: str | None = None, comment: str | None = None
    ) -> None:
        """End the request (or return it to its initiator) by `move`: close what is still open
        and tell the initiator, the cc list and, on approval, the template's on_approved people."""
        req = self.req
        before = req.status
        transition(req, move)
        status = req.status
        req.finished_at = self.ctx.now if status != RequestStatus.RETURNED else None
        for s in req.round_steps():
            if s.status == StepStatus.WAITING or (s.status == StepStatus.ACTIVE and move != Move.REJECT):
                transition(s, Move.CANCEL)
        for t in req.tasks:
            if not t.is_open:
                continue
            if t.permission == Permission.NOTIFY and status == RequestStatus.APPROVED:
                continue  # 知会 can still be acknowledged after approval
            self.close_task(t, f"request_{status.value}", CardOutcome.REQUEST_ENDED, status=status.value)
        self.event(
            f"request_{status.value}",
            actor,
            acting_for=acting_for,
            before=before.value,
            after=status.value,
            comment=comment,
        )
        if status == RequestStatus.RETURNED or self.ctx.template.progress != Progress.OFF:
            self.notice(NoticeKind.RESULT, req.initiator, status=status.value, by=actor, comment=comment)
        if status != RequestStatus.RETURNED:
            self.tell_watchers(status)

    def tell_watchers(self, status: RequestStatus) -> None:
        req, ctx = self.req, self.ctx
        if CcMoment.FINISH in ctx.template.cc_on:
            self.tell_cc(CcMoment.FINISH)
        if status == RequestStatus.APPROVED:
            for spec in ctx.template.on_approved:
                for person in resolve_approver(
                    spec, org=ctx.org, initiator=req.initiator, form=req.form, notes=[]
                ):
                    self.notice(NoticeKind.APPROVED_NOTICE, person, status=status.value)

    def tell_cc(self, moment: CcMoment) -> None:
        """Tell the template's CC 抄送 people (not the initiator, who hears anyway) and let them
        read the request from now on; the trail names who was told, and when."""
        people = cc_people(self.ctx, self.req)
        if not people:
            return
        for person in people:
            self.notice(NoticeKind.CC, person, status=self.req.status.value, moment=moment.value)
        self.add_readers(people, ReaderReason.CC, by=None)
        self.event("cc_sent", SYSTEM, recipients=people, moment=moment.value)

    def add_readers(self, people: Sequence[str], reason: ReaderReason, *, by: str | None) -> None:
        known = self.req.reader_ids()
        for person in people:
            if person not in known:
                known.add(person)
                self.req.readers.append(Reader(user=person, reason=reason, at=self.ctx.now, by=by))


def cc_people(ctx: Context, req: Request) -> list[str]:
    """The active people the template copies on `req` (people, roles, a form field of people),
    in the template's order, without the initiator."""
    found: list[str] = []
    for spec in ctx.template.cc:
        for person in resolve_approver(spec, org=ctx.org, initiator=req.initiator, form=req.form, notes=[]):
            if person != req.initiator and person not in found and ctx.org.is_active(person):
                found.append(person)
    return found


# -- delegation --------------------------------------------------------------------------
def find_delegation(
    delegations: Sequence[Delegation], user: str, template_key: str, at: datetime
) -> Delegation | None:
    for d in delegations:
        if d.covers(user, template_key, at):
            return d
    return None


# -- building requests -------------------------------------------------------------------
def build_steps(planned: list[PlannedStep], *, start_index: int, round_no: int) -> list[Step]:
    steps: list[Step] = []
    for offset, p in enumerate(planned):
        spec = p.spec
        steps.append(
            Step(
                index=start_index + offset,
                key=spec.key,
                name=spec.name,
                mode=spec.mode,
                kind=spec.kind,
                permission=spec.permission,
                action_label=spec.positive_label,
                can_reject=spec.rejectable,
                time_limit_hours=spec.time_limit_hours,
                assignees=list(p.assignees),
                status=StepStatus.SKIPPED if p.skipped else StepStatus.WAITING,
                round=round_no,
                notes=list(p.notes),
            )
        )
    return steps


def render_title(template: Template, form: dict[str, Any]) -> str:
    pattern = template.title or template.name
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "{":
            j = pattern.find("}", i)
            if j > i:
                value = form.get(pattern[i + 1 : j])
                out.append(
                    ""
                    if value is None
                    else (("、".join(map(str, value))) if isinstance(value, list) else str(value))
                )
                i = j + 1
                continue
        out.append(pattern[i])
        i += 1
    title = "".join(out).strip()
    return title[:200] or template.name


def submit(
    ctx: Context,
    *,
    request_id: str,
    initiator: str,
    form: dict[str, Any],
    urgency: Urgency = Urgency.NORMAL,
    channel: Channel = Channel.API,
    via: str | None = None,
) -> Outcome:
    """Validate the form, plan the route and start the first step (`via`: see `Action.via`)."""
    org, template = ctx.org, ctx.template
    if not org.is_active(initiator):
        raise UnknownUser("unknown_user.initiator", user=initiator)
    clean = validate_form(
        template, form, org=org, initiator=initiator, tz=ctx.tz, working_days=ctx.working_days
    )
    planned = plan_route(template, clean, initiator, org)
    req = Request(
        id=request_id,
        template_key=template.key,
        template_version=template.version,
        title=render_title(template, clean),
        form=clean,
        initiator=initiator,
        urgency=urgency,
        status=RequestStatus.RUNNING,
        created_at=ctx.now,
        updated_at=ctx.now,
        channel=channel,
    )
    req.steps = build_steps(planned, start_index=0, round_no=1)
    flow = _Flow(req, ctx, channel, by=initiator, via=via)
    _submitted(flow, template, urgency, clean)
    if CcMoment.SUBMIT in template.cc_on:
        flow.tell_cc(CcMoment.SUBMIT)
    _start_round(flow)
    return flow.out


def _submitted(flow: _Flow, template: Template, urgency: Urgency, clean: dict[str, Any]) -> None:
    req = flow.req
    flow.event(
        "submitted",
        req.initiator,
        after=RequestStatus.RUNNING.value,
        template=template.key,
        template_version=template.version,
        urgency=urgency.value,
        form=clean,
        route=[
            {"step": s.name, "assignees": s.assignees, "skipped": s.status == StepStatus.SKIPPED}
            for s in req.steps
        ],
    )


def _start_round(flow: _Flow) -> None:
    for s in flow.req.round_steps():
        if s.status == StepStatus.SKIPPED:
            flow.event("step_skipped", SYSTEM, step=s, after="skipped", notes=s.notes)
    first = next((s for s in flow.req.round_steps() if s.status == StepStatus.WAITING), None)
    if first is None:
        flow.finish(Move.APPROVE, SYSTEM, comment=flow.say(Phrase.NOTHING_TO_APPROVE))
    else:
        flow.activate_step(first)


# -- preview -----------------------------------------------------------------------------
@dataclass
class PreviewStep:
    key: str
    name: str
    mode: str
    kind: str
    assignees: list[str]
    skipped: bool
    auto_approved: list[str]
    notes: list[str]  # the route's own notes (conditions, empty steps)
    auto_rules: list[Phrase] = field(default_factory=list)  # why each of auto_approved is


def preview(
    ctx: Context, *, initiator: str, form: dict[str, Any]
) -> tuple[dict[str, Any], list[PreviewStep]]:
    """The route a submission would take, `auto_rule` applied, without creating anything.

    It assumes every person of a step approves it themselves (a delegation, transfer or
    add-signer later can change who did)."""
    org, template = ctx.org, ctx.template
    if not org.is_active(initiator):
        raise UnknownUser("unknown_user.initiator", user=initiator)
    clean = validate_form(
        template, form, org=org, initiator=initiator, tz=ctx.tz, working_days=ctx.working_days
    )
    out: list[PreviewStep] = []
    previous_approvers: list[str] = []
    for p in plan_route(template, clean, initiator, org):
        spec = p.spec
        step = PreviewStep(
            key=spec.key,
            name=spec.name,
            mode=spec.mode.value,
            kind=spec.kind.value,
            assignees=p.assignees,
            skipped=p.skipped,
            auto_approved=[],
            notes=list(p.notes),
        )
        out.append(step)
        if p.skipped:
            continue
        for person in p.assignees:
            rule = auto_rule(
                template,
                step_key=spec.key,
                kind=spec.kind,
                permission=spec.permission,
                person=person,
                initiator=initiator,
                previous_approvers=previous_approvers,
            )
            if rule is not None:
                step.auto_approved.append(person)
                step.auto_rules.append(rule)
        previous_approvers = [a for a in p.assignees if a not in step.auto_approved]
        if spec.kind != StepKind.APPROVE:
            previous_approvers = []
    return clean, out


# -- acting ------------------------------------------------------------------------------
def act(ctx: Context, request: Request, action: Action) -> Outcome:
    """Apply one action. Raises an ApprovalError (and changes nothing) when it is not allowed."""
    if action.actor != SYSTEM:
        if not ctx.org.is_active(action.actor):
            raise UnknownUser(user=action.actor)
        if action.is_admin and not is_org_admin(ctx.org.user(action.actor), ctx.admin_roles):
            raise ActionNotAllowed(
                "action_not_allowed.not_admin",
                shown={"role": " / ".join(sorted(ctx.admin_roles)) or "-"},
                action=action.kind.value,
                actor=action.actor,
            )
    _check_comment(action.comment)
    if request.is_archived:
        raise RequestArchived(request_id=request.id, action=action.kind.value)
    if _only_reads(ctx, request, action):
        raise NotAssignee("not_assignee.reader", request_id=request.id, actor=action.actor)
    flow = _Flow(request, ctx, action.channel, by=action.actor, via=action.via)
    handler = _HANDLERS[action.kind]
    handler(flow, action)
    request.version += 1
    request.updated_at = ctx.now
    return flow.out


def _only_reads(ctx: Context, req: Request, action: Action) -> bool:
    """Whether the actor may only read `req`: CC'd 抄送 or notified 知会他人, and nothing more
    (no task held or held for them, not its initiator, no delegation, not as an admin)."""
    actor = action.actor
    if actor == SYSTEM or action.is_admin or actor not in req.reader_ids() or actor in _involved(req):
        return False
    return not any(_delegate_of(ctx, req, t, actor) for t in req.tasks if t.is_open)


def _check_comment(comment: str | None) -> None:
    if comment is None:
        return
    if len(comment) > COMMENT_MAX:
        raise CommentTooLong(most=COMMENT_MAX, length=len(comment))
    if any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in comment):
        raise CommentTooLong("comment_too_long.unstorable")


def _task_for(flow: _Flow, action: Action) -> tuple[Task, str | None]:
    """The task named by the action, after every check; returns it and whom the actor acts for."""
    req = flow.req
    if action.task_id is None:
        raise TaskNotFound("task_not_found.unnamed", request_id=req.id)
    task = req.task(action.task_id)
    if task is None:
        raise TaskNotFound(request_id=req.id, task_id=action.task_id)
    acting_for = _acting_for(flow, task, action.actor)
    # A finished request takes only the acknowledgement of its 知会 tasks (see REQUEST_ACCEPTS).
    if not transitions.accepts(req.status, action.kind) or (
        req.is_final and task.permission != Permission.NOTIFY
    ):
        raise RequestFinished(request_id=req.id, status=req.status.value)
    if task.status != TaskStatus.PENDING:
        raise TaskAlreadyDecided(task_id=task.id, status=task.status.value, version=task.version)
    if action.version is None or action.version != task.version:
        raise StaleTask(
            task_id=task.id,
            expected=action.version,
            current=task.version,
        )
    allowed = PERMISSION_ACTIONS[task.permission]
    if action.kind not in allowed:
        raise ActionNotAllowed(
            "action_not_allowed.permission",
            task_id=task.id,
            permission=task.permission.value,
            action=action.kind.value,
        )
    return task, acting_for


def _delegate_of(ctx: Context, req: Request, task: Task, actor: str) -> bool:
    """Whether `actor` holds a live delegation from the task's assignee for this template."""
    d = find_delegation(ctx.delegations, task.assignee, req.template_key, ctx.now)
    return d is not None and d.delegate == actor


def _acting_for(flow: _Flow, task: Task, actor: str) -> str | None:
    if actor in (task.assignee, task.acting_for, SYSTEM):
        return None  # the delegator may still act on their own task; the system acts for nobody
    if _delegate_of(flow.ctx, flow.req, task, actor):
        return task.assignee
    raise NotAssignee(
        shown={"assignee_name": flow.name(task.assignee)},
        task_id=task.id,
        assignee=task.assignee,
        actor=actor,
    )


def _decide(flow: _Flow, task: Task, move: Move, action: Action) -> None:
    transition(task, move)
    task.decided_at = flow.ctx.now
    task.decided_by = action.actor
    task.comment = action.comment
    task.bump()
    flow.out.task = task


def _auto_decided(
    flow: _Flow, task: Task, action: Action, after: str, outcome: CardOutcome, **card: Any
) -> None:
    """A deadline's automatic decision (the ladder's auto approve/reject): its trail event and
    the card closed with an "auto" outcome."""
    flow.event(
        f"auto_{after}",
        SYSTEM,
        task=task,
        before="pending",
        after=after,
        comment=action.comment,
        rule="deadline",
    )
    flow.card_closed(task, outcome, "auto", **card, comment=action.comment)


def _approve(flow: _Flow, action: Action) -> None:
    task, acting_for = _task_for(flow, action)
    step = flow.step_of(task)
    spec = flow.ctx.template.step(step.key)
    if (
        spec is not None
        and spec.opinion_required
        and action.actor != SYSTEM
        and not (action.comment or "").strip()
    ):
        raise OpinionRequired(
            task_id=task.id,
            step=step.key,
            step_name=step.name,
        )
    _decide(flow, task, Move.APPROVE, action)
    if action.actor == SYSTEM:
        _auto_decided(flow, task, action, "approved", CardOutcome.AUTO_APPROVED, label=step.action_label)
    else:
        flow.event(
            "approved",
            action.actor,
            acting_for=acting_for or (task.acting_for if action.actor == task.assignee else None),
            task=task,
            before="pending",
            after="approved",
            comment=action.comment,
            label=step.action_label,
        )
        flow.decided_card(task, CardOutcome.APPROVED, action, acting_for, label=step.action_label)
    flow.after_approved(task)


def _reject(flow: _Flow, action: Action) -> None:
    task, acting_for = _task_for(flow, action)
    step = flow.step_of(task)
    if not step.can_reject:
        raise ActionNotAllowed(
            "action_not_allowed.handling_step", shown={"step": step.name}, task_id=task.id, action="reject"
        )
    _decide(flow, task, Move.REJECT, action)
    if action.actor == SYSTEM:
        _auto_decided(flow, task, action, "rejected", CardOutcome.AUTO_REJECTED)
    else:
        flow.event(
            "rejected",
            action.actor,
            acting_for=acting_for,
            task=task,
            before="pending",
            after="rejected",
            comment=action.comment,
        )
        flow.decided_card(task, CardOutcome.REJECTED, action, acting_for)
    transition(step, Move.REJECT)
    step.finished_at = flow.ctx.now
    flow.finish(Move.REJECT, action.actor, acting_for=acting_for, comment=action.comment)


def _return_target(flow: _Flow, step: Step, target: str) -> Step | None:
    """The earlier step of this round a return goes to, or None for the initiator."""
    if target == "initiator":
        return None
    try:
        idx = int(target)
    except ValueError:
        raise BadTarget("bad_target.return_target", target=target) from None
    candidates = return_steps(flow.req, step)
    target_step = next((s for s in candidates if s.index == idx), None)
    if target_step is None:
        raise BadTarget(
            "bad_target.return_step",
            target=target,
            allowed=[s.index for s in candidates],
        )
    return target_step


def return_steps(req: Request, step: Step) -> list[Step]:
    """The earlier steps of this round a return from `step` may go to (the initiator always may)."""
    return [s for s in req.round_steps() if s.index < step.index and s.status == StepStatus.APPROVED]


def _return(flow: _Flow, action: Action) -> None:
    task, acting_for = _task_for(flow, action)
    step = flow.step_of(task)
    target_step = _return_target(flow, step, action.target or "initiator")
    _decide(flow, task, Move.RETURN, action)
    to_step = target_step.name if target_step else None
    where = flow.say(Phrase.TO_STEP, step=to_step) if to_step else flow.say(Phrase.TO_INITIATOR)
    flow.event(
        "returned",
        action.actor,
        acting_for=acting_for,
        task=task,
        before="pending",
        after="returned",
        comment=action.comment,
        target=where,
    )
    flow.decided_card(task, CardOutcome.RETURNED, action, acting_for, to_step=to_step)
    if target_step is None:
        transition(step, Move.CANCEL)
        flow.finish(Move.RETURN, action.actor, acting_for=acting_for, comment=action.comment)
    else:
        _rerun_from(flow, target_step)


def _rerun_from(flow: _Flow, target_step: Step) -> None:
    """Close this round's open tasks and run the round again from `target_step`."""
    req = flow.req
    for t in req.tasks:
        if t.is_open and req.steps[t.step_index].round == req.round:
            flow.close_task(t, "returned", CardOutcome.SENT_BACK, to_step=target_step.name)
    for s in req.round_steps():
        if s.index >= target_step.index and s.status in (StepStatus.ACTIVE, StepStatus.APPROVED):
            transition(s, Move.REOPEN)
            s.finished_at = None
            s.superseded.extend(t.id for t in req.step_tasks(s) if t.id not in s.superseded)
    flow.activate_step(target_step)


def _transfer(flow: _Flow, action: Action) -> None:
    task, acting_for = _task_for(flow, action)
    target = _check_new_person(flow, task, action.target, ActionKind.TRANSFER)
    if action.actor != SYSTEM:
        _move_to(flow, task, target, action, acting_for)
        return
    step = flow.step_of(task)
    _decide(flow, task, Move.TRANSFER, action)
    task.close_reason = f"transferred_to:{target}"
    new = flow.new_task(step, target, origin="transfer", after=None, added_by=action.actor)
    for t in flow.req.tasks:
        if t.after_task == task.id:
            t.after_task = new.id
    flow.event(
        "auto_transferred",
        SYSTEM,
        task=task,
        before=task.assignee,
        after=target,
        comment=action.comment,
        new_task=new.id,
        rule="deadline",
    )
    flow.card_closed(task, CardOutcome.AUTO_TRANSFERRED, "transferred", target=target, comment=action.comment)
    flow.open_task(new)


def _move_to(
    flow: _Flow, task: Task, target: str, action: Action, acting_for: str | None, **data: Any
) -> None:
    """A person's 转交: close `task` for `target` and open a new one for them."""
    step = flow.step_of(task)
    _decide(flow, task, Move.TRANSFER, action)
    task.close_reason = f"transferred_to:{target}"
    new = flow.new_task(step, target, origin="transfer", after=None, added_by=action.actor)
    for t in flow.req.tasks:
        if t.after_task == task.id:
            t.after_task = new.id
    flow.event(
        "transferred",
        action.actor,
        acting_for=acting_for,
        task=task,
        before=task.assignee,
        after=target,
        comment=action.comment,
        new_task=new.id,
        **data,
    )
    flow.card_closed(
        task,
        CardOutcome.TRANSFERRED,
        "transferred",
        target=target,
        by=action.actor,
        acting_for=acting_for,
        at=flow.ctx.now,
    )
    flow.open_task(new)


def _add_signer(flow: _Flow, action: Action) -> None:
    task, acting_for = _task_for(flow, action)
    target = _check_new_person(flow, task, action.target, ActionKind.ADD_SIGNER)
    position = action.position or SignerPosition.AFTER
    step = flow.step_of(task)
    flow.out.task = task
    if position == SignerPosition.BEFORE:
        new = flow.new_task(step, target, origin="add_signer", after=None, added_by=action.actor)
        transition(task, Move.WAIT)
        task.after_task = new.id
        task.bump()
    elif position == SignerPosition.AFTER:
        new = flow.new_task(step, target, origin="add_signer", after=task.id, added_by=action.actor)
        for t in flow.req.tasks:
            if t.after_task == task.id and t.id != new.id:
                t.after_task = new.id
    else:
        new = flow.new_task(step, target, origin="add_signer", after=None, added_by=action.actor)
    flow.event(
        "signer_added",
        action.actor,
        acting_for=acting_for,
        task=task,
        after=target,
        comment=action.comment,
        position=position.value,
        new_task=new.id,
    )
    if position == SignerPosition.BEFORE:
        flow.card_closed(task, CardOutcome.SIGNER_BEFORE, "add_signer", target=target)
    if position != SignerPosition.AFTER:
        flow.open_task(new)


def _check_new_person(flow: _Flow, task: Task, target: str | None, verb: ActionKind) -> str:
    if not target:
        raise BadTarget("bad_target.missing", shown={"verb": verb.value}, target=target)
    if not flow.ctx.org.is_active(target):
        raise BadTarget("bad_target.inactive", shown={"verb": verb.value}, target=target)
    if target in (task.assignee, task.acting_for):
        raise BadTarget("bad_target.self", shown={"verb": verb.value}, target=target)
    for t in flow.req.live_step_tasks(flow.step_of(task)):
        if t.is_open and target in (t.assignee, t.acting_for):
            raise BadTarget("bad_target.in_step", shown={"target_name": flow.name(target)}, target=target)
    return target


def _holds_pending_with(req: Request, actor: str, kind: ActionKind) -> bool:
    """Whether `actor` holds (or has held for them) a pending task whose permission allows `kind`."""
    return any(
        actor in (t.assignee, t.acting_for) and kind in PERMISSION_ACTIONS[t.permission]
        for t in req.pending_tasks()
    )


def _participated_with(req: Request, actor: str, kind: ActionKind) -> bool:
    """Whether `actor` holds or held (or had held for them) a task that reached them, whose
    permission allows `kind`: the 审批 participants of a request, running or finished."""
    return any(
        actor in (t.assignee, t.acting_for)
        and t.activated_at is not None
        and kind in PERMISSION_ACTIONS[t.permission]
        for t in req.tasks
    )


def _withdraw_refusal(ctx: Context, req: Request, actor: str) -> ApprovalError | None:
    """Why `actor` may not withdraw `req` now, or None when they may: the initiator by the
    template's policy, a 协同 / 审批 participant (who holds a pending task) while it runs."""
    if actor != req.initiator:
        if not _holds_pending_with(req, actor, ActionKind.WITHDRAW):
            return NotAssignee("not_assignee.withdraw", actor=actor)
        if req.status != RequestStatus.RUNNING:
            return RequestFinished("request_finished.withdraw", request_id=req.id, status=req.status.value)
        if ctx.template.policies.withdraw == WithdrawPolicy.NEVER:
            return ActionNotAllowed("action_not_allowed.withdraw_never", action="withdraw")
        return None
    policy = ctx.template.policies.withdraw
    revoking = req.status == RequestStatus.APPROVED and policy == WithdrawPolicy.AFTER_APPROVAL
    if not transitions.accepts(req.status, ActionKind.WITHDRAW) or (req.is_final and not revoking):
        return RequestFinished("request_finished.withdraw", request_id=req.id, status=req.status.value)
    if req.status == RequestStatus.RETURNED:
        policy = WithdrawPolicy.ANY_TIME  # back with the initiator: they may drop it instead of resubmitting
    if policy == WithdrawPolicy.NEVER:
        return ActionNotAllowed("action_not_allowed.withdraw_never", action="withdraw")
    if policy == WithdrawPolicy.BEFORE_FIRST_DECISION and _someone_decided(req):
        return ActionNotAllowed("action_not_allowed.withdraw_decided", action="withdraw")
    if policy == WithdrawPolicy.UNTIL_OPENED:
        return _opened_refusal(ctx, req)
    return None


def _opened_refusal(ctx: Context, req: Request) -> ApprovalError | None:
    """A recall 收回 is refused once anyone the request went to (a task holder, now or before,
    or the person a task was held for) has opened it: naming who and when, first opener first."""
    recipients = ({t.assignee for t in req.tasks} | {t.acting_for for t in req.tasks if t.acting_for}) - {
        req.initiator
    }
    openers = sorted((at, p) for p, at in ctx.opened.items() if p in recipients)
    if not openers:
        return None
    return ActionNotAllowed(
        "action_not_allowed.recall_opened",
        action="withdraw",
        opened_by=[p for _, p in openers],
        shown={"openers": [(ctx.org.display_name(p), at.astimezone(ctx.tz)) for at, p in openers]},
    )


def _withdraw(flow: _Flow, action: Action) -> None:
    refusal = _withdraw_refusal(flow.ctx, flow.req, action.actor)
    if refusal is not None:
        raise refusal
    flow.finish(Move.WITHDRAW, action.actor, comment=action.comment)


def _archive_refusal(req: Request, actor: str, *, is_admin: bool) -> ApprovalError | None:
    """Why `actor` may not archive 归档 `req` now, or None: only a finished request (as DingTalk
    and WeCom archive finished approvals), by one of its 审批 participants or an admin."""
    if req.is_archived:
        return RequestArchived(request_id=req.id, action=ActionKind.ARCHIVE.value)
    if not is_admin and not _participated_with(req, actor, ActionKind.ARCHIVE):
        return ActionNotAllowed("action_not_allowed.archive", action=ActionKind.ARCHIVE.value)
    if not req.is_final:
        return ActionNotAllowed(
            "action_not_allowed.archive_running", action=ActionKind.ARCHIVE.value, status=req.status.value
        )
    return None


def _archive(flow: _Flow, action: Action) -> None:
    req = flow.req
    refusal = _archive_refusal(req, action.actor, is_admin=action.is_admin)
    if refusal is not None:
        raise refusal
    for t in req.tasks:
        if t.is_open:  # a 知会 task still unread after approval: nothing is left to read it for
            flow.close_task(t, "archived", CardOutcome.ARCHIVED, by=action.actor)
    req.archived_at, req.archived_by = flow.ctx.now, action.actor
    flow.event(
        "archived",
        action.actor,
        after=req.status.value,
        comment=action.comment,
        as_admin=True if action.is_admin else None,
    )


def _notify_refusal(req: Request, actor: str, *, is_admin: bool) -> ApprovalError | None:
    """Why `actor` may not notify others 知会他人 on `req`, or None: its 审批 participants and admins."""
    if req.is_archived:
        return RequestArchived(request_id=req.id, action=ActionKind.NOTIFY_OTHERS.value)
    if not is_admin and not _participated_with(req, actor, ActionKind.NOTIFY_OTHERS):
        return ActionNotAllowed("action_not_allowed.notify_others", action=ActionKind.NOTIFY_OTHERS.value)
    return None


def _notify_targets(flow: _Flow, action: Action) -> list[str]:
    picked = list(dict.fromkeys(t.strip() for t in (*action.targets, action.target or "") if t.strip()))
    if not picked:
        raise BadTarget("bad_target.missing", shown={"verb": ActionKind.NOTIFY_OTHERS.value}, target=None)
    if len(picked) > NOTIFY_OTHERS_MAX:
        raise BadTarget("bad_target.too_many", most=NOTIFY_OTHERS_MAX, count=len(picked))
    for person in picked:
        if not flow.ctx.org.is_active(person):
            raise BadTarget(
                "bad_target.inactive", shown={"verb": ActionKind.NOTIFY_OTHERS.value}, target=person
            )
        if person == action.actor:
            raise BadTarget("bad_target.self", shown={"verb": ActionKind.NOTIFY_OTHERS.value}, target=person)
    return picked


def _notify_others(flow: _Flow, action: Action) -> None:
    refusal = _notify_refusal(flow.req, action.actor, is_admin=action.is_admin)
    if refusal is not None:
        raise refusal
    picked = _notify_targets(flow, action)
    # Someone already copied or notified is not told again: a double tap changes nothing.
    people = [p for p in picked if p not in flow.req.reader_ids()]
    if not people:
        raise BadTarget("bad_target.already_told", target=",".join(picked))
    for person in people:
        flow.notice(NoticeKind.FYI, person, by=action.actor, comment=action.comment)
    flow.add_readers(people, ReaderReason.NOTIFIED, by=action.actor)
    flow.event(
        "others_notified",
        action.actor,
        after="、".join(people)[:120],
        comment=action.comment,
        recipients=people,
        as_admin=True if action.is_admin else None,
    )
    flow.out.info["notified"] = people


def _someone_decided(req: Request) -> bool:
    """Whether a person (not the system) decided a task of this round."""
    return any(
        t.decided_by not in (None, SYSTEM)
        and t.status in (TaskStatus.APPROVED, TaskStatus.REJECTED, TaskStatus.RETURNED)
        for t in req.tasks
        if req.steps[t.step_index].round == req.round
    )


def _terminate_refusal(req: Request, actor: str, *, is_admin: bool) -> ApprovalError | None:
    """Why `actor` may not terminate `req` now, or None when they may."""
    if not transitions.accepts(req.status, ActionKind.TERMINATE):
        return RequestFinished("request_finished.terminate", request_id=req.id, status=req.status.value)
    if not is_admin and not any(
        actor in (t.assignee, t.acting_for) and ActionKind.TERMINATE in PERMISSION_ACTIONS[t.permission]
        for t in req.pending_tasks()
    ):
        return ActionNotAllowed("action_not_allowed.terminate", action="terminate")
    return None


def _terminate(flow: _Flow, action: Action) -> None:
    req = flow.req
    refusal = _terminate_refusal(req, action.actor, is_admin=action.is_admin)
    if refusal is not None:
        raise refusal
    flow.finish(Move.TERMINATE, action.actor, comment=action.comment)


def _urge(flow: _Flow, action: Action) -> None:
    req = flow.req
    if action.actor != req.initiator:
        raise NotAssignee("not_assignee.urge", actor=action.actor)
    if not transitions.accepts(req.status, ActionKind.URGE):
        raise RequestFinished("request_finished.urge", request_id=req.id, status=req.status.value)
    waiting = [t for t in req.pending_tasks() if t.gates_step]
    now = flow.ctx.now
    urged: list[str] = []
    blocked_until: list[datetime] = []
    for t in waiting:
        last = req.urged_at.get(t.id)
        if last is not None and now - last < URGE_INTERVAL:
            blocked_until.append(last + URGE_INTERVAL)
            continue
        req.urged_at[t.id] = now
        urged.append(t.assignee)
        flow.notice(
            NoticeKind.URGE, t.assignee, t, by=action.actor, comment=action.comment, version=t.version
        )
        flow.event("urged", action.actor, task=t, after=t.assignee, comment=action.comment)
    if not urged:
        retry_at = min(blocked_until) if blocked_until else now + URGE_INTERVAL
        raise RateLimited(retry_at=retry_at, shown={"retry_local": retry_at.astimezone(flow.ctx.tz)})
    flow.out.info["urged"] = urged


def _comment(flow: _Flow, action: Action) -> None:
    req = flow.req
    if action.actor not in _involved(req) and not action.is_admin:
        raise NotAssignee("not_assignee.comment", actor=action.actor)
    if not action.comment or not action.comment.strip():
        raise BadTarget("bad_target.empty_comment", field="comment")
    flow.event("commented", action.actor, comment=action.comment.strip())


def _involved(req: Request) -> set[str]:
    """The initiator and everyone who holds or held a task, or for whom one was held."""
    return (
        {req.initiator} | {t.assignee for t in req.tasks} | {t.acting_for for t in req.tasks if t.acting_for}
    )


def _acknowledge(flow: _Flow, action: Action) -> None:
    task, acting_for = _task_for(flow, action)
    _decide(flow, task, Move.ACKNOWLEDGE, action)
    flow.event(
        "acknowledged",
        action.actor,
        acting_for=acting_for,
        task=task,
        before="pending",
        after="acknowledged",
        comment=action.comment,
    )
    flow.decided_card(task, CardOutcome.ACKNOWLEDGED, action, acting_for)


def _resubmit(flow: _Flow, action: Action) -> None:
    req, ctx = flow.req, flow.ctx
    if action.actor != req.initiator:
        raise NotAssignee("not_assignee.resubmit", actor=action.actor)
    if not transitions.accepts(req.status, ActionKind.RESUBMIT):
        raise ActionNotAllowed("action_not_allowed.resubmit", action="resubmit", status=req.status.value)
    form = (
        req.form
        if action.form is None
        else validate_form(
            ctx.template,
            action.form,
            org=ctx.org,
            initiator=req.initiator,
            tz=ctx.tz,
            working_days=ctx.working_days,
        )
    )
    planned = plan_route(ctx.template, form, req.initiator, ctx.org)
    req.form = form
    req.title = render_title(ctx.template, form)
    req.round += 1
    transition(req, Move.RESUBMIT)
    req.steps.extend(build_steps(planned, start_index=len(req.steps), round_no=req.round))
    flow.event(
        "resubmitted",
        action.actor,
        before="returned",
        after="running",
        comment=action.comment,
        form=form,
        round=req.round,
    )
    _start_round(flow)


_HANDLERS: dict[ActionKind, Callable[[_Flow, Action], None]] = {
    ActionKind.APPROVE: _approve,
    ActionKind.REJECT: _reject,
    ActionKind.RETURN: _return,
    ActionKind.TRANSFER: _transfer,
    ActionKind.ADD_SIGNER: _add_signer,
    ActionKind.WITHDRAW: _withdraw,
    ActionKind.TERMINATE: _terminate,
    ActionKind.URGE: _urge,
    ActionKind.COMMENT: _comment,
    ActionKind.ACKNOWLEDGE: _acknowledge,
    ActionKind.RESUBMIT: _resubmit,
    ActionKind.ARCHIVE: _archive,
    ActionKind.NOTIFY_OTHERS: _notify_others,
}
assert set(_HANDLERS) == set(ActionKind)
assert TASK_ACTIONS <= set(_HANDLERS)


@dataclass(frozen=True)
class Allowed:
    """What one person may do on a request now, by the same checks `act` makes.

    `tasks`: for each pending task they hold (themselves or as a delegate), the task actions its
    permission, the step and the request's status allow; the task's version is still checked
    when they act. `request`: the actions on the request as a whole (withdraw, terminate, urge,
    comment, resubmit). An urge may still be refused as too soon after the last one."""

    tasks: dict[str, frozenset[ActionKind]]
    request: frozenset[ActionKind]


def task_actions(req: Request, task: Task) -> frozenset[ActionKind]:
    """The task actions a pending `task` takes (see `_task_for`, `_reject`)."""
    if task.status != TaskStatus.PENDING or (req.is_final and task.permission != Permission.NOTIFY):
        return frozenset()
    kinds = {
        k
        for k in PERMISSION_ACTIONS[task.permission]
        if k in TASK_ACTIONS and transitions.accepts(req.status, k)
    }
    if not req.steps[task.step_index].can_reject:
        kinds.discard(ActionKind.REJECT)
    return frozenset(kinds)


def allowed_actions(ctx: Context, req: Request, actor: str, *, is_admin: bool = False) -> Allowed:
    """Every action `act` would take from `actor` on `req` now (pure: nothing changes)."""
    probe = Action(kind=ActionKind.COMMENT, actor=actor, is_admin=is_admin)
    if req.is_archived or _only_reads(ctx, req, probe):
        return Allowed(tasks={}, request=frozenset())
    tasks = {
        t.id: task_actions(req, t)
        for t in req.pending_tasks()
        if actor in (t.assignee, t.acting_for) or _delegate_of(ctx, req, t, actor)
    }
    kinds = _request_kinds(ctx, req, actor, is_admin=is_admin)
    return Allowed(tasks={k: v for k, v in tasks.items() if v}, request=frozenset(kinds))


def _request_kinds(ctx: Context, req: Request, actor: str, *, is_admin: bool) -> set[ActionKind]:
    """The actions on the request as a whole `actor` may take now (see `allowed_actions`)."""
    refusals = {
        ActionKind.WITHDRAW: _withdraw_refusal(ctx, req, actor),
        ActionKind.TERMINATE: _terminate_refusal(req, actor, is_admin=is_admin),
        ActionKind.ARCHIVE: _archive_refusal(req, actor, is_admin=is_admin),
        ActionKind.NOTIFY_OTHERS: _notify_refusal(req, actor, is_admin=is_admin),
    }
    kinds = {k for k, refusal in refusals.items() if refusal is None and transitions.accepts(req.status, k)}
    waiting = any(t.gates_step for t in req.pending_tasks())
    if actor == req.initiator and transitions.accepts(req.status, ActionKind.URGE) and waiting:
        kinds.add(ActionKind.URGE)
    if actor in _involved(req) or is_admin:
        kinds.add(ActionKind.COMMENT)
    if actor == req.initiator and transitions.accepts(req.status, ActionKind.RESUBMIT):
        kinds.add(ActionKind.RESUBMIT)
    return kinds


def apply_delegation(ctx: Context, request: Request, delegation: Delegation) -> Outcome:
    """Move the delegator's open tasks in `request` to the delegate (delegation with move_pending)."""
    flow = _Flow(request, ctx, Channel.SYSTEM)
    moved = False
    for t in request.tasks:
        if not t.is_open or t.assignee != delegation.delegator or t.acting_for is not None:
            continue
        was_pending = t.status == TaskStatus.PENDING
        t.acting_for, t.assignee = t.assignee, delegation.delegate
        t.bump()
        moved = True
        flow.event(
            "delegated", SYSTEM, task=t, before=t.acting_for, after=t.assignee, delegation=delegation.id
        )
        if was_pending:
            flow.notice(
                NoticeKind.CARD_CLOSED,
                delegation.delegator,
                t,
                outcome=CardOutcome.DELEGATED.value,
                reason="delegated",
                target=delegation.delegate,
            )
            flow.notice(NoticeKind.TASK_CARD, t.assignee, t, version=t.version)
    if moved:
        request.version += 1
        request.updated_at = ctx.now
    return flow.out


HANDED_OVER = "handed_over"  # the trail event of a leaver's task moved on 离职交接


def hand_over(ctx: Context, request: Request, leaver: str, successor: str) -> Outcome:
    """Move the open tasks `leaver` holds in `request` on 离职交接: a task they held for someone
    else goes back to that person while they are active, every other one to `successor`. Each
    move is a `handed_over` event; whoever gets a pending task gets its card. The leaver's own
    requests, and tasks they already decided, are left as they are (history keeps their name).
    """
    flow = _Flow(request, ctx, Channel.SYSTEM)
    moved = False
    for t in request.tasks:
        if not t.is_open or t.assignee != leaver:
            continue
        target = t.acting_for if t.acting_for and ctx.org.is_active(t.acting_for) else successor
        if not ctx.org.is_active(target):
            raise BadTarget("bad_target.inactive", shown={"verb": "hand_over"}, target=target)
        was_pending = t.status == TaskStatus.PENDING
        t.assignee, t.acting_for = target, None
        t.bump()
        moved = True
        comment = flow.say(Phrase.HANDED_OVER, leaver=flow.name(leaver), successor=flow.name(target))
        flow.event(HANDED_OVER, SYSTEM, task=t, before=leaver, after=target, comment=comment, leaver=leaver)
        if was_pending:
            flow.notice(NoticeKind.TASK_CARD, target, t, version=t.version)
    if moved:
        request.version += 1
        request.updated_at = ctx.now
    return flow.out


def validate_delegation(org: Org, d: Delegation) -> None:
    if not org.is_active(d.delegator):
        raise UnknownUser(user=d.delegator)
    if not org.is_active(d.delegate):
        raise DelegationInvalid("delegation_invalid.delegate", delegate=d.delegate)
    if d.delegate == d.delegator:
        raise DelegationInvalid("delegation_invalid.self")
    if d.ends_at <= d.starts_at:
        raise DelegationInvalid("delegation_invalid.period")


# -- the system's own actions (the deadline ladder, digests, leave delegations) -------------
SYSTEM_ACTIONS = frozenset({ActionKind.APPROVE, ActionKind.REJECT, ActionKind.TRANSFER})


def system_act(
    ctx: Context, request: Request, kind: ActionKind, task_id: str, reason: str, *, target: str | None = None
) -> Outcome:
    """Decide a pending task automatically as "system": approve it, reject it, or transfer it to
    `target`, recording `reason` in the trail. It is `act` with "system" as the actor, so the
    same refusals apply (the task must be pending, its permission and step must allow the
    action); "system" acts on any task it is asked to and never for anyone.
    """
    if kind not in SYSTEM_ACTIONS:
        raise ActionNotAllowed("action_not_allowed.system", action=kind.value)
    task = request.task(task_id)
    action = Action(
        kind=kind,
        actor=SYSTEM,
        task_id=task_id,
        version=task.version if task else None,
        comment=reason,
        target=target,
        channel=Channel.SYSTEM,
        is_admin=True,
    )
    return act(ctx, request, action)


class SystemNote(StrEnum):
    """What the system writes to a request's trail without deciding anything."""

    REMINDED = "reminded"  # a reminder rung told the assignee
    SUPERVISED = "supervised"  # 督办: the due rung told the assignee's manager
    ESCALATED = "escalated"  # a later rung told a manager further up
    DIGEST_SENT = "digest_sent"
    DELEGATION_CREATED = "delegation_created"  # by an approved leave request
    DELEGATION_NOT_CREATED = "delegation_not_created"
    DELEGATION_CANCELLED = "delegation_cancelled"
    DOC_NUMBER_ASSIGNED = "doc_number_assigned"  # 发文: the registrar's step gave the number (after=)
    DOC_NUMBER_VOIDED = "doc_number_voided"  # the document ended without going out: number void


# Notes about chasing a task: only while the task is pending on a running request.
_TASK_NOTES = frozenset({SystemNote.REMINDED, SystemNote.SUPERVISED, SystemNote.ESCALATED})


def system_note(
    request: Request,
    now: datetime,
    note: SystemNote,
    *,
    task_id: str | None = None,
    after: str | None = None,
    comment: str | None = None,
    **data: Any,
) -> TrailEvent:
    """Append one "system" event to the request's trail, the same way an action's events are.

    Reminders and supervision are refused (nothing changes) once their task is not pending.
    The request's version is bumped once per note, so that a concurrent writer who loaded the
    old version is refused; the caller saves the request with the returned event.
    """
    task = request.task(task_id) if task_id else None
    if task_id and task is None:
        raise TaskNotFound(request_id=request.id, task_id=task_id)
    if note in _TASK_NOTES:
        if task is None:
            raise TaskNotFound("task_not_found.unnamed_note", request_id=request.id)
        if request.status != RequestStatus.RUNNING:
            raise RequestFinished(
                "request_finished.note",
                request_id=request.id,
                status=request.status.value,
            )
        if task.status != TaskStatus.PENDING:
            raise TaskAlreadyDecided(
                "task_decided.note", task_id=task.id, status=task.status.value, version=task.version
            )
    e = _append_event(
        request, now, note.value, SYSTEM, Channel.SYSTEM, task=task, after=after, comment=comment, data=data
    )
    request.version += 1
    return e


# -- supervision 督办: what a manager does about a late task of someone in their team -----------
class SupervisorMove(StrEnum):
    URGE = "urge"  # 催办: chase the assignee (at most once per URGE_INTERVAL per task)
    TRANSFER = "transfer"  # 转交: give the task to someone in the manager's team
    TAKE_OVER = "take_over"  # 代为处理: the manager holds the task, acting for the assignee


@dataclass(frozen=True)
class SupervisorAction:
    """One manager's action on a task of their team, naming the task version the card showed."""

    kind: SupervisorMove
    actor: str
    task_id: str
    version: int | None
    target: str | None = None  # transfer: the new assignee
    comment: str | None = None
    channel: Channel = Channel.API
    is_admin: bool = False  # the edge vouches the actor is an org admin (acts on any task)


def supervisors_of(org: Org, task: Task) -> set[str]:
    """Who may act on `task` as its holder's manager: the managers, at every level, of the
    assignee and of the person the assignee acts for."""
    people = {task.assignee, *([task.acting_for] if task.acting_for else [])}
    return {m for p in people for m in org.manager_chain(p)} - people


def may_take_over(template: Template) -> bool:
    """Whether the template lets a manager act on a task in the assignee's place (代为处理)."""
    return template.policies.manager_may_act


def supervise(ctx: Context, request: Request, action: SupervisorAction) -> Outcome:
    """Apply one manager's action to a pending task. Refuses (changing nothing) when the task is
    no longer pending or not at the version the card showed, when the actor is not one of the
    holder's managers nor an admin, and per action: an urge within URGE_INTERVAL, a transfer to
    someone outside the actor's team, a take-over the template does not allow."""
    if not ctx.org.is_active(action.actor) and not action.is_admin:
        raise UnknownUser(user=action.actor)
    req = request
    task = req.task(action.task_id)
    if task is None:
        raise TaskNotFound(request_id=req.id, task_id=action.task_id)
    if req.status != RequestStatus.RUNNING:
        raise RequestFinished(request_id=req.id, status=req.status.value)
    if task.status != TaskStatus.PENDING:
        raise TaskAlreadyDecided(task_id=task.id, status=task.status.value, version=task.version)
    if action.version is None or action.version != task.version:
        raise StaleTask(task_id=task.id, expected=action.version, current=task.version)
    if task.permission == Permission.NOTIFY:  # 知会 holds nothing up: nothing to supervise
        raise ActionNotAllowed(
            "action_not_allowed.permission",
            task_id=task.id,
            permission=task.permission.value,
            action=ActionKind.URGE.value if action.kind == SupervisorMove.URGE else ActionKind.TRANSFER.value,
        )
    if not action.is_admin and action.actor not in supervisors_of(ctx.org, task):
        raise NotSupervisor(
            shown={"assignee_name": ctx.org.display_name(task.assignee)}, task_id=task.id, actor=action.actor
        )
    flow = _Flow(request, ctx, action.channel, by=action.actor)
    if action.kind == SupervisorMove.URGE:
        _supervisor_urge(flow, task, action)
    elif action.kind == SupervisorMove.TRANSFER:
        _supervisor_transfer(flow, task, action)
    else:
        _take_over(flow, task, action)
    request.version += 1
    request.updated_at = ctx.now
    return flow.out


def _admin_mark(action: SupervisorAction) -> dict[str, Any]:
    """An org admin's 督办 is recorded as an admin action (`as_admin`) as well."""
    return {"as_admin": True} if action.is_admin else {}


def _supervisor_urge(flow: _Flow, task: Task, action: SupervisorAction) -> None:
    now = flow.ctx.now
    last = flow.req.urged_at.get(task.id)
    if last is not None and now - last < URGE_INTERVAL:
        retry_at = last + URGE_INTERVAL
        raise RateLimited(retry_at=retry_at, shown={"retry_local": retry_at.astimezone(flow.ctx.tz)})
    flow.req.urged_at[task.id] = now
    flow.notice(
        NoticeKind.URGE, task.assignee, task, by=action.actor, comment=action.comment, version=task.version
    )
    flow.event(
        "urged", action.actor, task=task, after=task.assignee, comment=action.comment, as_manager=True,
        **_admin_mark(action),
    )  # fmt: skip
    flow.out.info["urged"] = [task.assignee]


def _supervisor_transfer(flow: _Flow, task: Task, action: SupervisorAction) -> None:
    target = _check_new_person(flow, task, action.target, ActionKind.TRANSFER)
    if not action.is_admin and action.actor not in flow.ctx.org.manager_chain(target):
        raise BadTarget("bad_target.not_in_team", shown={"target_name": flow.name(target)}, target=target)
    as_action = Action(
        kind=ActionKind.TRANSFER,
        actor=action.actor,
        task_id=task.id,
        version=task.version,
        comment=action.comment,
        target=target,
        channel=action.channel,
    )
    _move_to(flow, task, target, as_action, None, as_manager=True, **_admin_mark(action))


def _take_over(flow: _Flow, task: Task, action: SupervisorAction) -> None:
    if not may_take_over(flow.ctx.template):
        raise ActionNotAllowed("action_not_allowed.manager_may_act", task_id=task.id, action="take_over")
    if action.actor == task.assignee:
        raise BadTarget("bad_target.self", shown={"verb": ActionKind.TRANSFER.value}, target=action.actor)
    before = task.assignee
    task.acting_for = task.acting_for or task.assignee
    task.assignee = action.actor
    task.bump()
    flow.event(
        "taken_over",
        action.actor,
        acting_for=task.acting_for,
        task=task,
        before=before,
        after=action.actor,
        comment=action.comment,
    )
    flow.notice(
        NoticeKind.CARD_CLOSED,
        before,
        task,
        outcome=CardOutcome.TAKEN_OVER.value,
        reason="taken_over",
        by=action.actor,
        at=flow.ctx.now,
    )
    flow.notice(NoticeKind.TASK_CARD, task.assignee, task, version=task.version)


def replan_due(
    request: Request, now: datetime, task_id: str, due_at: datetime, *, comment: str, **data: Any
) -> TrailEvent:
    """Move a pending task's due time (the working calendar changed: a new holiday or 调休 day)
    and record it in the trail as "system", the old and new due times as before/after. The
    task keeps its version: its card stays valid, only its deadline moved."""
    task = request.task(task_id)
    if task is None:
        raise TaskNotFound(request_id=request.id, task_id=task_id)
    if request.status != RequestStatus.RUNNING or task.status != TaskStatus.PENDING:
        raise TaskAlreadyDecided(
            "task_decided.note", task_id=task.id, status=task.status.value, version=task.version
        )
    before = task.due_at
    task.due_at = due_at
    e = _append_event(
        request,
        now,
        "deadline_replanned",
        SYSTEM,
        Channel.SYSTEM,
        task=task,
        before=before.isoformat() if before else None,
        after=due_at.isoformat(),
        comment=comment,
        data=data,
    )
    request.version += 1
    request.updated_at = now
    return e


ACKNOWLEDGED_BY_DEFAULT = "acknowledged_by_default"  # the trail event of a 知会 task 默认已读


def default_acknowledge(ctx: Context, request: Request, task_id: str) -> Outcome:
    """A 知会 task nobody acknowledged by its deadline counts as read (the seed rule: no reply
    counts as received, and the record says it was defaulted). The task becomes acknowledged by
    "system", the trail says so (`acknowledged_by_default`, distinct from a person's 已收到) and
    its card closes as 默认已读. Refuses, changing nothing, when the task is not a pending 知会
    task any more (acknowledged meanwhile, closed with its request) or the request is archived."""
    task = request.task(task_id)
    if task is None:
        raise TaskNotFound(request_id=request.id, task_id=task_id)
    if request.is_archived:
        raise RequestArchived(request_id=request.id, action=ActionKind.ACKNOWLEDGE.value)
    if task.permission != Permission.NOTIFY:
        raise ActionNotAllowed(
            "action_not_allowed.permission",
            task_id=task.id,
            permission=task.permission.value,
            action=ActionKind.ACKNOWLEDGE.value,
        )
    if task.status != TaskStatus.PENDING:
        raise TaskAlreadyDecided(task_id=task.id, status=task.status.value, version=task.version)
    flow = _Flow(request, ctx, Channel.SYSTEM)
    transition(task, Move.ACKNOWLEDGE)
    task.decided_at = ctx.now
    task.decided_by = SYSTEM
    task.bump()
    flow.out.task = task
    flow.event(
        ACKNOWLEDGED_BY_DEFAULT,
        SYSTEM,
        task=task,
        before="pending",
        after="acknowledged",
        rule="deadline",
        due_at=task.due_at.isoformat() if task.due_at else None,
    )
    flow.card_closed(task, CardOutcome.DEFAULTED, "defaulted")
    request.version += 1
    request.updated_at = ctx.now
    return flow.out
