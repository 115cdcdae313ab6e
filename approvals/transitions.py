"""The status transition tables of requests, steps and tasks, and the one function that applies them.

Every status change the engine makes is a `Move` looked up here: `transition(obj, move)` sets
the new status or raises `IllegalTransition`, so an impossible change (approving a closed task,
reopening a finished request) fails loudly instead of silently corrupting state.
`REQUEST_ACCEPTS` says which actions a request in each status takes at all; the engine refuses
the others with its usual errors before it changes anything.

Pure data and one function: no I/O, no wording. Objects are created in their first status
(a request RUNNING, a step WAITING or SKIPPED, a task QUEUED); everything after goes through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from approvals.errors import ApprovalError
from approvals.model import ActionKind, Request, RequestStatus, Step, StepStatus, Task, TaskStatus


class Move(StrEnum):
    """What happens to a request, step or task; the tables say what each move does to each status."""

    OPEN = "open"  # a step starts, a queued task becomes actionable
    APPROVE = "approve"  # a task, a step or the whole request is approved
    REJECT = "reject"
    RETURN = "return"  # a task returns the request; the request goes back to its initiator
    TRANSFER = "transfer"
    ACKNOWLEDGE = "acknowledge"
    WAIT = "wait"  # a pending task waits again (前加签: the new signer decides first)
    CLOSE = "close"  # an open task is closed by something else (sibling decided, request ended)
    CANCEL = "cancel"  # a step the request no longer reaches
    REOPEN = "reopen"  # a step of this round runs again after a return to an earlier step
    WITHDRAW = "withdraw"
    TERMINATE = "terminate"
    RESUBMIT = "resubmit"


class IllegalTransition(ApprovalError):
    """A move the tables do not allow from the object's status (a bug in the caller)."""

    code = "illegal_transition"


R = RequestStatus
REQUEST_MOVES: Mapping[RequestStatus, Mapping[Move, RequestStatus]] = {
    R.RUNNING: {
        Move.APPROVE: R.APPROVED,
        Move.REJECT: R.REJECTED,
        Move.RETURN: R.RETURNED,
        Move.WITHDRAW: R.WITHDRAWN,
        Move.TERMINATE: R.TERMINATED,
    },
    R.RETURNED: {Move.RESUBMIT: R.RUNNING, Move.WITHDRAW: R.WITHDRAWN, Move.TERMINATE: R.TERMINATED},
    R.APPROVED: {Move.WITHDRAW: R.WITHDRAWN},  # only where the template allows revoking
    R.REJECTED: {},
    R.WITHDRAWN: {},
    R.TERMINATED: {},
}

S = StepStatus
STEP_MOVES: Mapping[StepStatus, Mapping[Move, StepStatus]] = {
    S.WAITING: {Move.OPEN: S.ACTIVE, Move.CANCEL: S.CANCELLED},
    S.ACTIVE: {
        Move.APPROVE: S.APPROVED,
        Move.REJECT: S.REJECTED,
        Move.CANCEL: S.CANCELLED,
        Move.REOPEN: S.WAITING,
    },
    S.APPROVED: {Move.REOPEN: S.WAITING},
    S.REJECTED: {},
    S.SKIPPED: {},
    S.CANCELLED: {},
}

T = TaskStatus
TASK_MOVES: Mapping[TaskStatus, Mapping[Move, TaskStatus]] = {
    T.QUEUED: {Move.OPEN: T.PENDING, Move.CLOSE: T.CLOSED},
    T.PENDING: {
        Move.APPROVE: T.APPROVED,
        Move.REJECT: T.REJECTED,
        Move.RETURN: T.RETURNED,
        Move.TRANSFER: T.TRANSFERRED,
        Move.ACKNOWLEDGE: T.ACKNOWLEDGED,
        Move.WAIT: T.QUEUED,
        Move.CLOSE: T.CLOSED,
    },
    T.APPROVED: {},
    T.REJECTED: {},
    T.RETURNED: {},
    T.TRANSFERRED: {},
    T.ACKNOWLEDGED: {},
    T.CLOSED: {},
}

_ALL_ACTIONS = frozenset(ActionKind)
# Which actions a request takes in each status; finished requests take comments, 归档 and
# 知会他人, an approved one also the acknowledgement of its 知会 tasks and, where the template
# allows, a withdrawal. (An archived request takes nothing: the engine refuses that first.)
_ENDED = frozenset({ActionKind.COMMENT, ActionKind.ARCHIVE, ActionKind.NOTIFY_OTHERS})
REQUEST_ACCEPTS: Mapping[RequestStatus, frozenset[ActionKind]] = {
    R.RUNNING: _ALL_ACTIONS - {ActionKind.RESUBMIT, ActionKind.ARCHIVE},
    R.RETURNED: frozenset(
        {
            ActionKind.RESUBMIT,
            ActionKind.WITHDRAW,
            ActionKind.TERMINATE,
            ActionKind.COMMENT,
            ActionKind.NOTIFY_OTHERS,
        }
    ),
    R.APPROVED: _ENDED | {ActionKind.ACKNOWLEDGE, ActionKind.WITHDRAW},
    R.REJECTED: _ENDED,
    R.WITHDRAWN: _ENDED,
    R.TERMINATED: _ENDED,
}

_Status = TypeVar("_Status", RequestStatus, StepStatus, TaskStatus)


def accepts(status: RequestStatus, action: ActionKind) -> bool:
    """Whether a request in `status` takes `action` at all (the engine checks the rest)."""
    return action in REQUEST_ACCEPTS[status]


def next_status(table: Mapping[_Status, Mapping[Move, _Status]], status: _Status, move: Move) -> _Status:
    """The status `move` leads to from `status`, or IllegalTransition."""
    after = table[status].get(move)
    if after is None:
        raise IllegalTransition(status=status.value, move=move.value)
    return after


def transition(obj: Request | Step | Task, move: Move) -> None:
    """Apply `move` to a request, step or task: its new status comes from the table."""
    if isinstance(obj, Request):
        obj.status = next_status(REQUEST_MOVES, obj.status, move)
    elif isinstance(obj, Step):
        obj.status = next_status(STEP_MOVES, obj.status, move)
    else:
        obj.status = next_status(TASK_MOVES, obj.status, move)
