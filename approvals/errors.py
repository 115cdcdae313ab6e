"""Errors of the approval core. Each carries its context as attributes and a stable `code`;
the HTTP middleware and the chat handlers translate them (nothing here knows about either)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class ApprovalError(Exception):
    """Base of every refusal by the approval core. Refusals change nothing."""

    code = "approval_error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class TemplateNotFound(ApprovalError):
    code = "template_not_found"


class RequestNotFound(ApprovalError):
    code = "request_not_found"


class TaskNotFound(ApprovalError):
    code = "task_not_found"


class UnknownUser(ApprovalError):
    code = "unknown_user"


class NotAssignee(ApprovalError):
    """The actor is neither the task's assignee nor acting for them."""

    code = "not_assignee"


class ActionNotAllowed(ApprovalError):
    """The task's permission or the template's policy does not allow this action."""

    code = "action_not_allowed"


class TaskAlreadyDecided(ApprovalError):
    """The task was already handled (double tap, retry, or someone else decided)."""

    code = "task_decided"


class StaleTask(ApprovalError):
    """The caller saw an older version of the task than the current one."""

    code = "stale_task"


class RequestFinished(ApprovalError):
    code = "request_finished"


class BadTarget(ApprovalError):
    """A transfer / add-signer / return target that cannot be used."""

    code = "bad_target"


class NoApprover(ApprovalError):
    """Nobody could be found for a step and the template refuses to submit."""

    code = "no_approver"


class RateLimited(ApprovalError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_at: datetime, **context: Any) -> None:
        super().__init__(message, retry_at=retry_at, **context)
        self.retry_at = retry_at


class DelegationInvalid(ApprovalError):
    code = "delegation_invalid"


class DelegationNotFound(ApprovalError):
    code = "delegation_not_found"
