"""The status transition tables, enumerated: every status × move either leads to one status or
is refused, finished requests take nothing but comments (and an approved one the acknowledgement
of its 知会 tasks and, where allowed, a withdrawal), and the engine refuses every action a
request's status does not take, changing nothing."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from approvals import engine
from approvals.definitions import Policies, WithdrawPolicy
from approvals.engine import Action, Context
from approvals.errors import ApprovalError
from approvals.model import (
    FINAL_STATUSES,
    TASK_ACTIONS,
    ActionKind,
    Request,
    RequestStatus,
    Step,
    StepStatus,
    Task,
    TaskStatus,
)
from approvals.transitions import (
    REQUEST_ACCEPTS,
    REQUEST_MOVES,
    STEP_MOVES,
    TASK_MOVES,
    IllegalTransition,
    Move,
    accepts,
    transition,
)
from tests.helpers import T0, TZ, demo_org, step, template, who

ORG = demo_org()
TPL = template(
    step("mgr", who("user", "u_sun")),
    step("cc", who("user", "u_li"), permission="notify"),
    step("gm", who("user", "u_zhang")),
    policies=Policies(withdraw=WithdrawPolicy.AFTER_APPROVAL),
)


def test_every_status_has_a_row_and_every_move_leads_to_a_known_status() -> None:
    for table, statuses in (
        (REQUEST_MOVES, RequestStatus),
        (STEP_MOVES, StepStatus),
        (TASK_MOVES, TaskStatus),
    ):
        assert set(table) == set(statuses)
        for moves in table.values():
            assert set(moves) <= set(Move)
            assert set(moves.values()) <= set(statuses)
    assert set(REQUEST_ACCEPTS) == set(RequestStatus)


def _request(status: RequestStatus) -> Request:
    out = engine.submit(
        Context(template=TPL, org=ORG, now=T0, tz=TZ), request_id="r1", initiator="u_wu", form={}
    )
    return replace(out.request, status=status)


def _step(status: StepStatus) -> Step:
    return replace(_request(RequestStatus.RUNNING).steps[0], status=status)


def _task(status: TaskStatus) -> Task:
    return replace(_request(RequestStatus.RUNNING).tasks[0], status=status)


@pytest.mark.parametrize("move", list(Move))
def test_each_request_status_and_move_is_one_status_or_refused(move: Move) -> None:
    for status in RequestStatus:
        req = _request(status)
        expected = REQUEST_MOVES[status].get(move)
        if expected is None:
            with pytest.raises(IllegalTransition):
                transition(req, move)
            assert req.status == status
        else:
            transition(req, move)
            assert req.status == expected


@pytest.mark.parametrize("move", list(Move))
def test_each_step_and_task_status_and_move_is_one_status_or_refused(move: Move) -> None:
    for step_status in StepStatus:
        s = _step(step_status)
        after = STEP_MOVES[step_status].get(move)
        if after is None:
            with pytest.raises(IllegalTransition):
                transition(s, move)
            assert s.status == step_status
        else:
            transition(s, move)
            assert s.status == after
    for task_status in TaskStatus:
        t = _task(task_status)
        done = TASK_MOVES[task_status].get(move)
        if done is None:
            with pytest.raises(IllegalTransition):
                transition(t, move)
            assert t.status == task_status
        else:
            transition(t, move)
            assert t.status == done


def test_finished_things_do_not_move_again() -> None:
    for status in FINAL_STATUSES - {RequestStatus.APPROVED}:
        assert REQUEST_MOVES[status] == {}
        assert REQUEST_ACCEPTS[status] == {ActionKind.COMMENT, ActionKind.ARCHIVE, ActionKind.NOTIFY_OTHERS}
    assert REQUEST_MOVES[RequestStatus.APPROVED] == {Move.WITHDRAW: RequestStatus.WITHDRAWN}
    assert REQUEST_ACCEPTS[RequestStatus.APPROVED] == {
        ActionKind.COMMENT,
        ActionKind.ARCHIVE,
        ActionKind.NOTIFY_OTHERS,
        ActionKind.ACKNOWLEDGE,
        ActionKind.WITHDRAW,
    }
    for task_status in set(TaskStatus) - {TaskStatus.QUEUED, TaskStatus.PENDING}:
        assert TASK_MOVES[task_status] == {}
    for step_status in (StepStatus.REJECTED, StepStatus.SKIPPED, StepStatus.CANCELLED):
        assert STEP_MOVES[step_status] == {}


# -- the engine keeps to the table ----------------------------------------------------------------
def _ctx() -> Context:
    return Context(template=TPL, org=ORG, now=T0, tz=TZ)


def _tap(req: Request, kind: ActionKind, actor: str) -> None:
    task = next((t for t in req.pending_tasks() if t.assignee == actor), None)
    action = Action(
        kind=kind, actor=actor, task_id=task.id if task else None, version=task.version if task else None
    )
    engine.act(_ctx(), req, action)


def _in_status(status: RequestStatus) -> Request:
    """A request the engine itself brought into `status`."""
    req = engine.submit(_ctx(), request_id="r1", initiator="u_wu", form={}).request
    if status == RequestStatus.APPROVED:
        _tap(req, ActionKind.APPROVE, "u_sun")
        _tap(req, ActionKind.APPROVE, "u_zhang")
    elif status == RequestStatus.REJECTED:
        _tap(req, ActionKind.REJECT, "u_sun")
    elif status == RequestStatus.RETURNED:
        _tap(req, ActionKind.RETURN, "u_sun")
    elif status == RequestStatus.WITHDRAWN:
        _tap(req, ActionKind.WITHDRAW, "u_wu")
    elif status == RequestStatus.TERMINATED:
        _tap(req, ActionKind.TERMINATE, "u_sun")
    assert req.status == status
    return req


def _attempt(req: Request, kind: ActionKind) -> Action:
    """The most plausible try at `kind`: on a task that was the person's, by the right person."""
    task = (
        next((t for t in req.tasks if t.assignee == "u_li"), None) if kind == ActionKind.ACKNOWLEDGE else None
    )
    task = task or req.tasks[-1]
    actor = task.assignee if kind in TASK_ACTIONS else "u_wu"
    return Action(
        kind=kind,
        actor=actor,
        task_id=task.id,
        version=task.version,
        comment="看一下",
        target="u_qian" if kind in (ActionKind.TRANSFER, ActionKind.ADD_SIGNER) else None,
        is_admin=kind == ActionKind.TERMINATE,
    )


@pytest.mark.parametrize("status", list(RequestStatus))
def test_the_engine_refuses_every_action_the_status_does_not_take_and_changes_nothing(
    status: RequestStatus,
) -> None:
    for kind in ActionKind:
        if accepts(status, kind):
            continue
        req = _in_status(status)
        before = copy.deepcopy(req)
        with pytest.raises(ApprovalError):
            engine.act(_ctx(), req, _attempt(req, kind))
        assert req == before, kind


@pytest.mark.parametrize("status", list(RequestStatus))
def test_every_request_takes_a_comment_from_its_initiator(status: RequestStatus) -> None:
    req = _in_status(status)
    out = engine.act(_ctx(), req, Action(kind=ActionKind.COMMENT, actor="u_wu", comment="备注"))
    assert [e.kind for e in out.events] == ["commented"] and req.status == status


def test_an_approved_request_still_takes_the_acknowledgement_of_its_notify_task_and_a_revocation() -> None:
    req = _in_status(RequestStatus.APPROVED)
    notify = next(t for t in req.tasks if t.assignee == "u_li")
    assert notify.status == TaskStatus.PENDING
    engine.act(
        _ctx(),
        req,
        Action(kind=ActionKind.ACKNOWLEDGE, actor="u_li", task_id=notify.id, version=notify.version),
    )
    assert notify.status == TaskStatus.ACKNOWLEDGED
    engine.act(_ctx(), req, Action(kind=ActionKind.WITHDRAW, actor="u_wu"))
    assert req.status == RequestStatus.WITHDRAWN
