"""Errors of the approval core. Each carries its context as attributes, a stable `code`, a
`reason` and a `category` (`org.errors.DomainError`), never words: `notifications.messages` says
them, and the HTTP error middleware and the chat handlers show them (nothing here knows about
either)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from org.errors import Category, DomainError


class ApprovalError(DomainError):
    """Base of every refusal by the approval core. Refusals change nothing."""

    code = "approval_error"


class TemplateNotFound(ApprovalError):
    code = "template_not_found"
    category = Category.NOT_FOUND


class RequestNotFound(ApprovalError):
    code = "request_not_found"
    category = Category.NOT_FOUND


class TaskNotFound(ApprovalError):
    code = "task_not_found"
    category = Category.NOT_FOUND


class UnknownUser(ApprovalError):
    code = "unknown_user"
    category = Category.INVALID


class NotAssignee(ApprovalError):
    """The actor is neither the task's assignee nor acting for them."""

    code = "not_assignee"
    category = Category.FORBIDDEN


class NotSupervisor(ApprovalError):
    """The actor is not a manager of the task's holder (nor an org admin): no 督办 actions."""

    code = "not_supervisor"
    category = Category.FORBIDDEN


class ActionNotAllowed(ApprovalError):
    """The task's permission or the template's policy does not allow this action."""

    code = "action_not_allowed"
    category = Category.FORBIDDEN


class TaskAlreadyDecided(ApprovalError):
    """The task was already handled (double tap, retry, or someone else decided)."""

    code = "task_decided"
    category = Category.CONFLICT


class RequestArchived(ApprovalError):
    """The request was archived 归档: it is read-only."""

    code = "request_archived"
    category = Category.CONFLICT


class StaleTask(ApprovalError):
    """The caller saw an older version of the task than the current one."""

    code = "stale_task"
    category = Category.CONFLICT


class RequestFinished(ApprovalError):
    code = "request_finished"
    category = Category.CONFLICT


class OpinionRequired(ApprovalError):
    """The step asks for a written opinion with an approval (template `opinion_required`)."""

    code = "opinion_required"
    category = Category.INVALID


class CommentTooLong(ApprovalError):
    """An opinion longer than the engine keeps (`approvals.engine.COMMENT_MAX`), or holding text
    that cannot be stored (NUL, a lone surrogate)."""

    code = "comment_too_long"
    category = Category.INVALID


class BadTarget(ApprovalError):
    """A transfer / add-signer / return target that cannot be used."""

    code = "bad_target"
    category = Category.INVALID


class NoApprover(ApprovalError):
    """Nobody could be found for a step and the template refuses to submit."""

    code = "no_approver"
    category = Category.INVALID


class RateLimited(ApprovalError):
    code = "rate_limited"
    category = Category.TOO_MANY

    def __init__(
        self,
        reason: str | None = None,
        /,
        *,
        retry_at: datetime,
        shown: Mapping[str, Any] | None = None,
        **context: Any,
    ) -> None:
        super().__init__(reason, shown=shown, retry_at=retry_at, **context)
        self.retry_at = retry_at


class DelegationInvalid(ApprovalError):
    code = "delegation_invalid"
    category = Category.INVALID


class DelegationNotFound(ApprovalError):
    code = "delegation_not_found"
    category = Category.NOT_FOUND
